import type { Command } from 'commander';
import { createWriteKey, listWriteKeys, revokeWriteKey } from '../sql/write-keys.js';
import type { CliContext, OpenDatabase } from './context.js';

async function withDatabase(ctx: CliContext, fn: (db: OpenDatabase) => Promise<void>): Promise<void> {
  const db = await ctx.openDatabase();
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

export function registerWriteKeyCommand(program: Command, ctx: CliContext): void {
  const writeKey = program.command('write-key').description('Manage the write keys that event senders authenticate with');
  writeKey
    .command('create')
    .description('Create a write key and print it; it is shown only this once')
    .argument('<name>', 'a name to tell the key apart, e.g. the sending app')
    .action((name: string) =>
      withDatabase(ctx, async (db) => {
        const { key } = await createWriteKey(db.pool, name);
        process.stdout.write(`${key}\n`);
        process.stderr.write(`Write key "${name}" created. Store it now: Roster keeps only its hash.\n`);
      }),
    );
  writeKey
    .command('revoke')
    .description('Revoke a write key; running servers refuse it within 30 seconds')
    .argument('<name>', 'name of the key')
    .action((name: string) =>
      withDatabase(ctx, async (db) => {
        await revokeWriteKey(db.pool, name);
        process.stdout.write(`Write key "${name}" revoked\n`);
      }),
    );
  writeKey
    .command('list')
    .description('List write keys (name, first characters, origin, created, revoked)')
    .action(() =>
      withDatabase(ctx, async (db) => {
        for (const key of await listWriteKeys(db.pool)) {
          const state = key.revokedAt ? `revoked ${key.revokedAt.toISOString()}` : 'active';
          process.stdout.write(`${key.name}\t${key.keyPrefix}…\t${key.origin}\t${key.createdAt.toISOString()}\t${state}\n`);
        }
      }),
    );
}
