// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by package.
import fs from 'node:fs/promises';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function packageOf(url: string): string {
  if (url === '') return '(native/gc/idle)';
  if (url.startsWith('node:')) return 'node core';
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (match) return match[1];

  return `roster ${url.replace(/^file:\/\//, '').replace(/^.*\/main\//, '')}`;
}

/** Top frames by self time, and self time per package, as text. */
export async function summariseCpuProfile(file: string, top = 15): Promise<string> {
  const profile = JSON.parse(await fs.readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfByFrame = new Map<string, number>();
  const selfByPackage = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const delta = profile.timeDeltas[i] ?? 0;
    if (!node) return;
    total += delta;
    const { functionName, url, lineNumber } = node.callFrame;
    const frame = `${functionName || '(anonymous)'} ${url ? `${path.basename(url)}:${lineNumber + 1}` : ''} [${packageOf(url)}]`;
    selfByFrame.set(frame, (selfByFrame.get(frame) ?? 0) + delta);
    selfByPackage.set(packageOf(url), (selfByPackage.get(packageOf(url)) ?? 0) + delta);
  });
  const pct = (value: number): string => `${((100 * value) / total).toFixed(1).padStart(5)}%`;
  const rank = (map: Map<string, number>, n: number): string[] =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, value]) => `${pct(value)}  ${name}`);

  return [`total sampled ${(total / 1e6).toFixed(1)} s`, 'self time by package:', ...rank(selfByPackage, 10), 'top frames by self time:', ...rank(selfByFrame, top)].join('\n');
}

/**
 * The main thread's .cpuprofile written into `dir` after `since` (ms epoch), if any: the
 * largest one, since tsx's loader thread writes a small profile of its own.
 */
export async function newestCpuProfile(dir: string, since: number): Promise<string | undefined> {
  const files = await fs.readdir(dir);
  const stats = await Promise.all(
    files.filter((name) => name.endsWith('.cpuprofile')).map(async (name) => {
      const stat = await fs.stat(path.join(dir, name));

      return { file: path.join(dir, name), mtime: stat.mtimeMs, size: stat.size };
    }),
  );

  return stats.filter((entry) => entry.mtime >= since).sort((a, b) => b.size - a.size)[0]?.file;
}
