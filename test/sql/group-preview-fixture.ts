// A config with two calculated groups, a manual group and two destinations, for the preview, history and CLI tests.
import type { Pool } from '../../lib/db.js';
import { applyYaml } from '../helpers/apply-yaml.js';

export function previewConfig(highValueRule: unknown): string {
  return `
apps:
  - key: files
    type: csv
  - key: crm_db
    type: postgres
    options: { host: 127.0.0.1, database: crm, user: roster }
sources:
  - key: people
    app: files
    path: ./people.csv
    identity: { column: email, property: email }
properties:
  - { key: email, type: email, unique: true, source: people, column: email }
  - { key: ltv, type: float, source: people, column: ltv }
  - { key: country, type: string, source: people, column: country }
  - { key: age, type: integer, source: people, column: age }
groups:
  - key: high_value
    rule: ${JSON.stringify(highValueRule)}
  - key: canadians
    rule: { "==": [{ "var": "country" }, "Canada"] }
  - key: vip
    type: manual
destinations:
  - key: crm
    app: crm_db
    options: { table: contacts }
    groups: [high_value, canadians]
    mapping: { email: email }
  - key: ads
    app: crm_db
    options: { table: audiences }
    groups: [high_value]
    mapping: { email: email }
`;
}

export interface SeedProfile {
  email: string;
  ltv?: number | null;
  country?: string | null;
  age?: number | null;
}

/** Inserts profiles with their email identities; returns their ids in order. */
export async function seedProfiles(pool: Pool, profiles: SeedProfile[]): Promise<number[]> {
  const ids: number[] = [];
  for (const profile of profiles) {
    const { rows } = await pool.query<{ id: number }>(
      'INSERT INTO roster_core.profiles (email, ltv, country, age) VALUES ($1, $2, $3, $4) RETURNING id',
      [profile.email, profile.ltv ?? null, profile.country ?? null, profile.age ?? null],
    );
    await pool.query(
      `INSERT INTO roster_core.identities (property_id, value, profile_id)
       SELECT id, $1, $2 FROM roster_core.properties WHERE key = 'email'`,
      [profile.email, rows[0].id],
    );
    ids.push(rows[0].id);
  }

  return ids;
}

/** Applies the config with the given high_value rule, as `roster apply` does. */
export async function applyHighValueRule(pool: Pool, rule: unknown): Promise<void> {
  await applyYaml(pool, previewConfig(rule));
}
