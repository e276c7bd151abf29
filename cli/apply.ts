import type { Command } from 'commander';
import { applyConfig } from '../sql/config/apply-config.js';
import { formatPlan, loadValidConfig } from './config-output.js';
import type { CliContext } from './context.js';

export function registerApplyCommand(program: Command, ctx: CliContext): void {
  program
    .command('apply')
    .description('Make the database match a config folder, in one transaction')
    .argument('<dir>', 'folder of .yml, .yaml and .json config files')
    .action(async (dir: string) => {
      const config = await loadValidConfig(dir, { requireSecretEnvs: true });
      if (!config) {
        return;
      }
      const db = await ctx.openDatabase();
      try {
        process.stdout.write(formatPlan(await applyConfig(db.pool, config)));
      } finally {
        await db.close();
      }
    });
}
