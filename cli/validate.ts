import type { Command } from 'commander';
import { loadConfigDir } from '../sql/config/load-config-dir.js';
import { checkConfig } from '../sql/config/validate-config.js';
import { formatProblem } from './config-output.js';
import type { CliContext } from './context.js';

export function registerValidateCommand(program: Command, _ctx: CliContext): void {
  program
    .command('validate')
    .description('Check a config folder without touching the database; exits 1 on any problem')
    .argument('<dir>', 'folder of .yml, .yaml and .json config files')
    .option('--require-secrets', 'treat an unset secret environment variable as a problem, not a warning')
    .action(async (dir: string, options: { requireSecrets?: boolean }) => {
      const loaded = await loadConfigDir(dir);
      const { config, problems, warnings } = checkConfig(loaded, { requireSecretEnvs: options.requireSecrets ?? false });
      for (const warning of warnings) {
        process.stdout.write(`warning ${formatProblem(warning)}\n`);
      }
      for (const problem of problems) {
        process.stdout.write(`${formatProblem(problem)}\n`);
      }
      if (problems.length > 0) {
        process.stdout.write(`${problems.length} problem${problems.length === 1 ? '' : 's'} in ${loaded.documents.length + loaded.problems.length} files\n`);
        process.exitCode = 1;
        return;
      }
      const count = config.apps.length + config.sources.length + config.properties.length + config.groups.length + config.destinations.length;
      process.stdout.write(`Config is valid: ${count} objects in ${loaded.documents.length} files\n`);
    });
}
