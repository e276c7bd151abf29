// Applies a config given as YAML text through the same load, validate and apply path as the CLI.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Pool } from '../../lib/db.js';
import { applyConfig } from '../../sql/config/apply-config.js';
import { loadConfigDir } from '../../sql/config/load-config-dir.js';
import { validateConfig } from '../../sql/config/validate-config.js';

export async function applyConfigText(pool: Pool, yaml: string): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'roster-bench-config-'));
  try {
    await fs.writeFile(path.join(dir, 'roster.yml'), yaml);
    const { config } = validateConfig(await loadConfigDir(dir));
    await applyConfig(pool, config);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
