import { ConfigError } from '../lib/errors.js';
import type { ConfigPlan } from '../sql/config/apply-config.js';
import type { ConfigProblem, DesiredConfig } from '../sql/config/config-types.js';
import { loadConfigDir } from '../sql/config/load-config-dir.js';
import { validateConfig, type ValidateConfigOptions } from '../sql/config/validate-config.js';

/** `file: kind key field: [code] message`, leaving out the parts a problem does not have. */
export function formatProblem(problem: ConfigProblem): string {
  const where = [problem.kind, problem.key, problem.field].filter(Boolean).join(' ');
  const line = problem.line ? `:${problem.line}` : '';

  return `${problem.file}${line}:${where ? ` ${where}:` : ''} [${problem.code}] ${problem.message}`;
}

const KINDS = [
  ['app', 'apps'],
  ['source', 'sources'],
  ['property', 'properties'],
  ['group', 'groups'],
  ['destination', 'destinations'],
  ['setting', 'settings'],
  ['write key', 'writeKeys'],
] as const;

/** A plan as lines: `+` created, `~` updated, `-` deleted, then the impacts and a summary. */
export function formatPlan(plan: ConfigPlan): string {
  const lines: string[] = [];
  let created = 0;
  let updated = 0;
  let deleted = 0;
  let unchanged = 0;
  for (const [kind, list] of KINDS) {
    const changes = plan[list];
    lines.push(...changes.created.map((key) => `+ ${kind} ${key}`));
    lines.push(...changes.updated.map((key) => `~ ${kind} ${key}`));
    lines.push(...changes.deleted.map((key) => `- ${kind} ${key}`));
    created += changes.created.length;
    updated += changes.updated.length;
    deleted += changes.deleted.length;
    unchanged += changes.unchanged.length;
  }
  if (plan.impacts.length > 0) {
    lines.push('', 'Data impact:', ...plan.impacts.map((impact) => `  ${impact}`));
  }
  const verb = plan.dryRun ? 'Plan' : 'Applied';
  const summary = plan.hasChanges
    ? `${verb}: ${created} to create, ${updated} to update, ${deleted} to delete, ${unchanged} unchanged`
    : `No changes: ${unchanged} objects are up to date`;
  lines.push(...(lines.length > 0 ? [''] : []), summary);

  return `${lines.join('\n')}\n`;
}

/** Loads and validates a folder for plan and apply; prints problems and returns null if invalid. */
export async function loadValidConfig(dir: string, options: ValidateConfigOptions): Promise<DesiredConfig | null> {
  try {
    const { config, warnings } = validateConfig(await loadConfigDir(dir), options);
    for (const warning of warnings) {
      process.stdout.write(`warning ${formatProblem(warning)}\n`);
    }

    return config;
  } catch (err) {
    if (!(err instanceof ConfigError) || err.code !== 'CDP_CONFIG_INVALID') {
      throw err;
    }
    for (const problem of err.details.problems as ConfigProblem[]) {
      process.stdout.write(`${formatProblem(problem)}\n`);
    }
    process.stdout.write(`${err.message}\n`);
    process.exitCode = 1;

    return null;
  }
}
