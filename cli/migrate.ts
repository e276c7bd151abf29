import type { Command } from 'commander';
import type { CliContext } from './context.js';

export function registerMigrateCommand(program: Command, ctx: CliContext): void {
  program
    .command('migrate')
    .description('Bring the database schema up to date (also done on every start)')
    .action(async () => {
      const db = await ctx.openDatabase();
      await db.close();
      process.stdout.write('Database is up to date\n');
    });
}
