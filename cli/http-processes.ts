/**
 * Serving HTTP from several processes (`ROSTER_HTTP_PROCESSES`). One Node process answers at
 * most a few thousand small requests a second, whatever the database does; with N processes
 * the primary (`roster start`) keeps the workers and the event pump and forks N HTTP processes
 * that share the listening port through node:cluster. Each HTTP process has its own pool and
 * event writer (commits still come before acknowledgements) and wakes the event pumps through
 * NOTIFY. An HTTP process that dies is replaced.
 */
import cluster, { type Worker } from 'node:cluster';
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { ConfigError, InternalError, describeError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

/** Set on forked HTTP processes: the database the primary opened (also the embedded one). */
const CHILD_DATABASE_ENV = 'ROSTER_HTTP_CHILD_DATABASE_URL';
const STOP_GRACE_MS = 10_000;
const RESTART_DELAY_MS = 1_000;

type ChildMessage = { type: 'listening'; port: number } | { type: 'failed'; code: string; message: string };

export function portInUseError(host: string, port: number, cause?: unknown): ConfigError {
  return new ConfigError('CDP_SERVER_PORT_IN_USE', `Port ${host}:${port} is already in use (is another roster start running? set ROSTER_PORT)`, {
    cause,
    details: { host, port },
  });
}

/**
 * Listens and returns the port (useful with port 0); a taken port is CDP_SERVER_PORT_IN_USE,
 * and a server that could not listen is closed.
 */
export async function listenServer(server: FastifyInstance, host: string, port: number): Promise<number> {
  try {
    await server.listen({ host, port });
  } catch (err) {
    await server.close();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw portInUseError(host, port, err);
    throw err;
  }
  const address = server.server.address();

  return typeof address === 'object' && address ? address.port : port;
}

/**
 * Fails fast when the HTTP port is taken, before the database is migrated or any job is taken
 * (port 0 always finds one). Another process may still take it before the server listens.
 */
export async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const probe = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(port, host, () => resolve());
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw portInUseError(host, port, err);
    throw err;
  }
  await new Promise((resolve) => probe.close(resolve));
}

/** True in a process forked by `forkHttpProcesses`. */
export function isHttpChild(): boolean {
  return cluster.isWorker && process.env[CHILD_DATABASE_ENV] !== undefined;
}

export function httpChildDatabaseUrl(): string {
  return process.env[CHILD_DATABASE_ENV] as string;
}

export interface HttpProcesses {
  /** The port the processes listen on (useful with port 0). */
  port: number;
  /** Stops every HTTP process: SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>;
}

function stopWorker(worker: Worker): Promise<void> {
  return new Promise((resolve) => {
    if (worker.isDead()) {
      resolve();

      return;
    }
    const timer = setTimeout(() => worker.process.kill('SIGKILL'), STOP_GRACE_MS);
    worker.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    worker.process.kill('SIGTERM');
  });
}

/**
 * Forks `count` HTTP processes running this same command and resolves once all of them listen.
 * If one fails to start, the others are stopped and the error (CDP_SERVER_PORT_IN_USE for a
 * taken port) is thrown.
 */
export async function forkHttpProcesses(options: { count: number; databaseUrl: string; host: string; port: number; log: Logger }): Promise<HttpProcesses> {
  const { log } = options;
  const workers = new Set<Worker>();
  let isStopping = false;

  const fork = (): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      const worker = cluster.fork({ [CHILD_DATABASE_ENV]: options.databaseUrl });
      workers.add(worker);
      let isListening = false;
      worker.on('message', (message: ChildMessage) => {
        if (message.type === 'listening') {
          isListening = true;
          resolve(message.port);
        } else if (message.code === 'CDP_SERVER_PORT_IN_USE') {
          reject(portInUseError(options.host, options.port));
        } else {
          reject(new InternalError(message.code, message.message));
        }
      });
      worker.on('exit', (code, signal) => {
        workers.delete(worker);
        if (!isListening) {
          reject(new InternalError('CDP_SERVER_START_FAILED', `An HTTP process exited (${signal ?? code}) before it listened`));

          return;
        }
        if (isStopping) return;
        log.error({ pid: worker.process.pid, code, signal }, 'HTTP process exited; starting another');
        setTimeout(() => {
          if (!isStopping) fork().catch((err: unknown) => log.error({ err }, 'could not start a replacement HTTP process'));
        }, RESTART_DELAY_MS);
      });
    });

  const stop = async (): Promise<void> => {
    isStopping = true;
    await Promise.all([...workers].map(stopWorker));
  };
  try {
    const ports = await Promise.all(Array.from({ length: options.count }, fork));
    log.info({ processes: options.count, port: ports[0] }, 'HTTP processes listening');

    return { port: ports[0], stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * In an HTTP process: starts the server, tells the primary it listens (or why it could not,
 * then resolves with exit code 1), and resolves once SIGTERM or SIGINT has closed it again.
 */
export async function runHttpChild(start: () => Promise<{ port: number; close(): Promise<void> }>): Promise<void> {
  let server: { port: number; close(): Promise<void> };
  try {
    server = await start();
  } catch (err) {
    const { code, message } = describeError(err);
    // The primary reports it (once, for every process); this process only ends with a failure.
    process.send?.({ type: 'failed', code, message } satisfies ChildMessage);
    process.exitCode = 1;

    return;
  }
  process.send?.({ type: 'listening', port: server.port } satisfies ChildMessage);
  await new Promise<void>((resolve) => {
    let isClosing = false;
    const close = () => {
      if (isClosing) return;
      isClosing = true;
      server.close().finally(resolve);
    };
    process.once('SIGTERM', close);
    process.once('SIGINT', close);
  });
}
