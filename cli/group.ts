import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { parse } from 'csv-parse/sync';
import { ConfigError, NotFoundError } from '../lib/errors.js';
import { changeManualMembers, type MemberRef } from '../sql/manual-group-members.js';
import type { CliContext } from './context.js';

function parseMemberArgument(argument: string): MemberRef {
  const at = argument.indexOf('=');
  if (at <= 0 || at === argument.length - 1) {
    throw new ConfigError('CDP_CLI_INVALID_ARGUMENT', `Member "${argument}" must be written as <property>=<value>`);
  }

  return { property: argument.slice(0, at), value: argument.slice(at + 1) };
}

/** Members from a CSV file whose header's first column names a unique property. */
async function readMembersFile(file: string): Promise<MemberRef[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') {
      throw new ConfigError('CDP_FILE_NOT_FOUND', `File "${file}" does not exist or is not a file`, { cause: err, details: { file } });
    }
    throw err;
  }
  const rows = parse(text, { skip_empty_lines: true, trim: true, bom: true }) as string[][];
  const property = rows[0]?.[0];
  if (!property) {
    throw new ConfigError('CDP_CLI_INVALID_ARGUMENT', `File "${file}" needs a header naming a unique property`);
  }

  return rows.slice(1).filter((row) => row[0]).map((row) => ({ property, value: row[0] }));
}

function registerMembersCommand(group: Command, ctx: CliContext, action: 'add' | 'remove'): void {
  group
    .command(action)
    .description(`${action === 'add' ? 'Add profiles to' : 'Remove profiles from'} a manual group by unique values`)
    .argument('<group>', 'key of a manual group')
    .argument('[members...]', 'profiles as <property>=<value>, e.g. email=ada@example.com')
    .option('--file <csv>', 'CSV file whose header names a unique property, one value per row')
    .action(async (groupKey: string, args: string[], options: { file?: string }) => {
      const members = args.map(parseMemberArgument);
      if (options.file) {
        members.push(...(await readMembersFile(options.file)));
      }
      if (members.length === 0) {
        throw new ConfigError('CDP_CLI_INVALID_ARGUMENT', 'Name at least one member or a --file');
      }
      const db = await ctx.openDatabase();
      try {
        const change = await changeManualMembers(db.pool, { groupKey, action, members });
        const count = action === 'add' ? change.entered : change.exited;
        process.stdout.write(`Group "${groupKey}": ${count} ${action === 'add' ? 'added' : 'removed'} of ${members.length} named\n`);
      } catch (err) {
        if (!(err instanceof NotFoundError) || err.code !== 'CDP_PROFILE_NOT_FOUND') {
          throw err;
        }
        for (const member of err.details.missing as MemberRef[]) {
          process.stderr.write(`[CDP_PROFILE_NOT_FOUND] No profile has ${member.property}=${member.value}\n`);
        }
        process.stderr.write(`Nothing changed: ${err.message}\n`);
        process.exitCode = 1;
      } finally {
        await db.close();
      }
    });
}

export function registerGroupCommand(program: Command, ctx: CliContext): void {
  const group = program.command('group').description('Manage the members of manual groups');
  registerMembersCommand(group, ctx, 'add');
  registerMembersCommand(group, ctx, 'remove');
}
