import { Command, CommanderError } from 'commander';
import { isAppError } from '../lib/errors.js';
import { registerApplyCommand } from './apply.js';
import { createCliContext } from './context.js';
import { registerDemoCommand } from './demo.js';
import { registerGroupCommand } from './group.js';
import { registerMigrateCommand } from './migrate.js';
import { registerPlanCommand } from './plan.js';
import { registerRunCommand } from './run.js';
import { registerValidateCommand } from './validate.js';
import { registerWorkerCommands } from './worker.js';

async function main(): Promise<void> {
  const ctx = createCliContext();
  const program = new Command('roster')
    .description('Customer data platform on PostgreSQL')
    .showHelpAfterError()
    .exitOverride();

  registerMigrateCommand(program, ctx);
  registerValidateCommand(program, ctx);
  registerPlanCommand(program, ctx);
  registerApplyCommand(program, ctx);
  registerGroupCommand(program, ctx);
  registerRunCommand(program, ctx);
  registerWorkerCommands(program, ctx);
  registerDemoCommand(program, ctx);

  await program.parseAsync(process.argv);
}

main().catch((err: unknown) => {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
    return;
  }
  if (isAppError(err)) {
    process.stderr.write(`error ${err.code}: ${err.message}\n`);
    process.exitCode = 2;
    return;
  }
  process.stderr.write(`error CDP_INTERNAL: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
