import type { Command } from 'commander';
import { applyConfig } from '../sql/config/apply-config.js';
import { formatPlan, loadValidConfig } from './config-output.js';
import type { CliContext } from './context.js';

export function registerPlanCommand(program: Command, ctx: CliContext): void {
  program
    .command('plan')
    .description('Show what `roster apply` would change, and its effect on data, without writing')
    .argument('<dir>', 'folder of .yml, .yaml and .json config files')
    .action(async (dir: string) => {
      // Secrets are not needed to compare definitions, so their absence is only a warning.
      const config = await loadValidConfig(dir, { requireSecretEnvs: false });
      if (!config) {
        return;
      }
      const db = await ctx.openDatabase();
      try {
        process.stdout.write(formatPlan(await applyConfig(db.pool, config, { dryRun: true })));
      } finally {
        await db.close();
      }
    });
}
