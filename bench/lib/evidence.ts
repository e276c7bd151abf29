// Keeps evidence (plans, profiles) in the evidence folder when one was asked for.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { BenchContext } from './context.js';

export async function saveEvidence(ctx: BenchContext, name: string, text: string): Promise<void> {
  if (!ctx.evidenceDir) return;
  await fs.writeFile(path.join(ctx.evidenceDir, name), text);
}
