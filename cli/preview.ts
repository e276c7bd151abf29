import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { ConfigError } from '../lib/errors.js';
import { previewGroupRule, type GroupRulePreview, type PreviewSample } from '../sql/group-preview.js';
import { show } from '../sql/rules/rule-values.js';
import type { CliContext } from './context.js';

function parseRule(text: string, origin: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError('CDP_CLI_INVALID_ARGUMENT', `The rule in ${origin} is not valid JSON`, { cause: err });
  }
}

function formatSamples(samples: PreviewSample[]): string {
  return samples
    .map((sample) => {
      const values = Object.entries(sample.values).map(([key, value]) => `${key}=${value === null ? 'missing' : show(value)}`);

      return `    profile ${sample.profileId}${values.length > 0 ? `  ${values.join(' ')}` : ''}`;
    })
    .join('\n');
}

/** The preview as text: member counts, samples each way, then each destination's impact. */
export function formatPreview(preview: GroupRulePreview): string {
  const lines = [
    `Group ${preview.groupKey}: ${preview.members} members now, ${preview.membersAfter} with the new rule`,
    `  ${preview.entering} would enter`,
  ];
  if (preview.enteringSample.length > 0) lines.push(formatSamples(preview.enteringSample));
  lines.push(`  ${preview.leaving} would leave`);
  if (preview.leavingSample.length > 0) lines.push(formatSamples(preview.leavingSample));
  if (preview.isTimeRelative) lines.push('  The rule uses relative dates: members also change as time passes');
  if (preview.destinations.length === 0) {
    lines.push('No destination follows this group');
  }
  for (const destination of preview.destinations) {
    lines.push(`Destination ${destination.destinationKey}: ${destination.creates} creates, ${destination.updates} updates, ${destination.removes} removes`);
  }

  return `${lines.join('\n')}\n`;
}

export function registerPreviewCommand(program: Command, ctx: CliContext): void {
  program
    .command('preview')
    .description('Preview a rule edit for a calculated group: who would enter and leave, and what destinations would send; writes nothing')
    .argument('<group>', 'key of a calculated group')
    .option('--rule <json>', 'the new rule as JSON Logic')
    .option('--file <path>', 'a file holding the new rule as JSON')
    .option('--samples <n>', 'sample profiles to show each way', '5')
    .option('--json', 'print the preview as JSON')
    .action(async (groupKey: string, options: { rule?: string; file?: string; samples: string; json?: boolean }) => {
      if ((options.rule === undefined) === (options.file === undefined)) {
        throw new ConfigError('CDP_CLI_INVALID_ARGUMENT', 'Give the new rule with either --rule or --file');
      }
      const sampleSize = Number(options.samples);
      if (!Number.isSafeInteger(sampleSize) || sampleSize < 0) {
        throw new ConfigError('CDP_CLI_INVALID_ARGUMENT', `--samples "${options.samples.slice(0, 20)}" must be a whole number`);
      }
      const rule =
        options.rule !== undefined ? parseRule(options.rule, '--rule') : parseRule(await fs.readFile(options.file as string, 'utf8'), options.file as string);
      const db = await ctx.openDatabase();
      try {
        const preview = await previewGroupRule(db.pool, groupKey, rule, { sampleSize });
        process.stdout.write(options.json ? `${JSON.stringify(preview, null, 2)}\n` : formatPreview(preview));
      } finally {
        await db.close();
      }
    });
}
