// Starts bench/server-process.ts as a child process and stops it again.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SERVER_SCRIPT = fileURLToPath(new URL('../server-process.ts', import.meta.url));

export interface ServerChild {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function startServerChild(options: { databaseUrl: string; pump?: boolean; cpuProfDir?: string; processes?: number }): Promise<ServerChild> {
  const nodeArgs = ['--import', 'tsx'];
  if (options.cpuProfDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`);
  const args = [...nodeArgs, SERVER_SCRIPT, '--database-url', options.databaseUrl];
  if (options.pump) args.push('--pump');
  if (options.processes) args.push('--processes', String(options.processes));
  const child = spawn(process.execPath, args, { cwd: path.dirname(path.dirname(SERVER_SCRIPT)), stdio: ['ignore', 'pipe', 'inherit'] });

  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error('Bench server did not start within 30 s')), 30_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const line = text.split('\n').find((candidate) => candidate.startsWith('{'));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Bench server exited with code ${code} before listening`));
    });
  }).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });

  return {
    url: `http://127.0.0.1:${port}`,
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
