import type { Command } from 'commander';
import { ConfigError, NotFoundError } from '../lib/errors.js';
import { explainGroup, type ExplainNode, type GroupExplanation } from '../sql/group-explain.js';
import { findMemberProfiles } from '../sql/manual-group-members.js';
import { show } from '../sql/rules/rule-values.js';
import type { CliContext } from './context.js';

const BRANCHES = new Set(['and', 'or', '!', '!!']);

function describeValues(values: Record<string, unknown>): string {
  const parts = Object.entries(values).map(([key, value]) => `${key} = ${value === null ? 'missing' : show(value)}`);

  return parts.length === 0 ? '' : `  (${parts.join(', ')})`;
}

function renderNode(node: ExplainNode, depth: number, lines: string[]): void {
  const mark = node.passed ? '✓' : '✗';
  const label = BRANCHES.has(node.operator) ? node.operator : show(node.rule);
  lines.push(`${'  '.repeat(depth)}${mark} ${label}${BRANCHES.has(node.operator) ? '' : describeValues(node.values)}`);
  node.children.forEach((child) => renderNode(child, depth + 1, lines));
}

/** The explanation as text: a membership line, then the rule as an indented ✓/✗ tree. */
export function formatExplanation(explanation: GroupExplanation): string {
  const { groupKey, profileId, isMember, passes } = explanation;
  const lines = [`Group ${groupKey}: profile ${profileId} is ${isMember ? 'a member' : 'not a member'}`];
  if (explanation.tree === null) {
    lines.push('Manual group: members are added and removed by hand');
  } else {
    lines.push(`Rule ${passes ? 'passes' : 'fails'} on the current values${passes === isMember ? '' : ' (membership not yet updated)'}`);
    renderNode(explanation.tree, 0, lines);
  }

  return `${lines.join('\n')}\n`;
}

async function resolveProfile(db: Parameters<typeof findMemberProfiles>[0], member: string | undefined, profile: string | undefined): Promise<number> {
  if (profile !== undefined) {
    const id = Number(profile);
    if (!Number.isSafeInteger(id) || id <= 0) {
      throw new ConfigError('CDP_CLI_INVALID_ARGUMENT', `Profile id "${profile.slice(0, 40)}" must be a positive whole number`);
    }

    return id;
  }
  const at = member?.indexOf('=') ?? -1;
  if (member === undefined || at <= 0 || at === member.length - 1) {
    throw new ConfigError('CDP_CLI_INVALID_ARGUMENT', 'Name the profile as <property>=<value> or with --profile <id>');
  }
  const ref = { property: member.slice(0, at), value: member.slice(at + 1) };
  const { profileIds } = await findMemberProfiles(db, [ref]);
  if (profileIds.length === 0) {
    throw new NotFoundError('CDP_PROFILE_NOT_FOUND', `No profile has ${ref.property}=${ref.value.slice(0, 60)}`, { details: { property: ref.property } });
  }

  return profileIds[0];
}

export function registerExplainCommand(program: Command, ctx: CliContext): void {
  program
    .command('explain')
    .description("Explain a profile's membership of a group: each rule node, the values it saw, pass or fail")
    .argument('<group>', 'group key')
    .argument('[profile]', 'the profile as <property>=<value> of a unique property, e.g. email=ada@example.com')
    .option('--profile <id>', 'the profile by id')
    .option('--json', 'print the explanation as JSON')
    .action(async (groupKey: string, member: string | undefined, options: { profile?: string; json?: boolean }) => {
      const db = await ctx.openDatabase();
      try {
        const profileId = await resolveProfile(db.pool, member, options.profile);
        const explanation = await explainGroup(db.pool, groupKey, profileId);
        process.stdout.write(options.json ? `${JSON.stringify(explanation, null, 2)}\n` : formatExplanation(explanation));
      } finally {
        await db.close();
      }
    });
}
