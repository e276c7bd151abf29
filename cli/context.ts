import path from 'node:path';
import { closeConnectors } from '../connectors/index.js';
import { loadConfig, type RosterConfig } from '../lib/config.js';
import { createPool, type Pool } from '../lib/db.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../lib/embedded-postgres.js';
import { createLogger, type Logger } from '../lib/logger.js';
import { migrate } from '../sql/migrate.js';

/** What every command gets: validated config, a logger and a way to reach the database. */
export interface CliContext {
  config: RosterConfig;
  log: Logger;
  /** Opens (starting the embedded Postgres if needed) and migrates the database. */
  openDatabase(options?: { database?: string }): Promise<OpenDatabase>;
}

export interface OpenDatabase {
  url: string;
  pool: Pool;
  /** The embedded server, when DATABASE_URL is unset. */
  embedded?: EmbeddedDatabase;
  close(): Promise<void>;
}

export function createCliContext(env: NodeJS.ProcessEnv = process.env): CliContext {
  const config = loadConfig(env);
  const log = createLogger({ level: config.logLevel });

  return {
    config,
    log,
    async openDatabase(options = {}) {
      let url = config.databaseUrl;
      let embedded: EmbeddedDatabase | undefined;
      if (!url) {
        embedded = await startEmbeddedPostgres({ dataDir: path.join(config.dataDir, 'pgdata'), port: config.embeddedPort, log });
        const database = options.database ?? 'roster';
        await embedded.createDatabase(database);
        url = embedded.url(database);
      }
      await migrate(url, log);
      const pool = createPool(url);

      return {
        url,
        pool,
        embedded,
        async close() {
          await closeConnectors();
          await pool.end();
          await embedded?.stop();
        },
      };
    },
  };
}
