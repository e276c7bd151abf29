// A profile schema applied through config, and N profiles written directly with generate_series
// (deterministic values, no identities: group and export work never reads them).
import type { Pool } from '../../lib/db.js';
import { quoteIdent } from '../../lib/db.js';
import { applyConfigText } from './apply-config-text.js';
import { analyze, propertyColumns } from './database.js';

export const PROFILE_PROPERTIES_YAML = `
properties:
  - { key: email, type: email, unique: true }
  - { key: country, type: string }
  - { key: ltv, type: float }
  - { key: age, type: integer }
  - { key: plan, type: string }
`;

/** The 3-rule group of the bar: about 8% of profiles match. */
export const THREE_RULE_GROUP = { and: [{ '>': [{ var: 'ltv' }, 500] }, { in: [{ var: 'country' }, ['DE', 'FR']] }, { '>=': [{ var: 'age' }, 30] }] };

export function groupsYaml(groups: Array<{ key: string; rule: unknown }>): string {
  return `groups:\n${groups.map((group) => `  - { key: ${group.key}, rule: ${JSON.stringify(group.rule)} }`).join('\n')}\n`;
}

export async function applyProfileSchema(pool: Pool, extraYaml = ''): Promise<void> {
  await applyConfigText(pool, `${PROFILE_PROPERTIES_YAML}${extraYaml}`);
}

/** Inserts profiles 1..count; values derive from the id, so every run is identical. */
export async function fillProfiles(pool: Pool, count: number): Promise<void> {
  const columns = await propertyColumns(pool);
  const c = (key: string): string => quoteIdent(columns[key]);
  await pool.query(
    `INSERT INTO roster_core.profiles (${c('email')}, ${c('country')}, ${c('ltv')}, ${c('age')}, ${c('plan')})
     SELECT
       'p' || g || '@example.com',
       (ARRAY['DE', 'FR', 'US', 'GB', 'CA', 'ES', 'IT', 'NL', 'SE', 'PL'])[1 + (g * 7) % 10],
       ((g::bigint * 7919) % 100000) / 100.0,
       18 + (g * 13) % 60,
       CASE WHEN g % 3 = 0 THEN 'pro' ELSE 'free' END
     FROM generate_series(1, $1::int) AS g`,
    [count],
  );
  await analyze(pool);
}
