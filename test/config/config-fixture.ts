// Writes config folders for the config-as-code tests into a temporary directory.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';

export const SECRET_ENV = { WAREHOUSE_PASSWORD: 'not-a-real-password' };

export const VALID_FILES: Record<string, string> = {
  'apps.yml': `
apps:
  - key: warehouse
    type: postgres
    options:
      host: 127.0.0.1
      database: store
      user: roster
      password: { env: WAREHOUSE_PASSWORD }
  - key: crm_db
    type: postgres
    options: { host: 127.0.0.1, database: crm, user: roster }
  - key: files
    type: csv
`,
  'sources.yml': `
sources:
  - key: customers
    app: warehouse
    table: customers
    identity: { column: id, property: customer_id }
    incremental: { column: updated_at, tieBreaker: id }
    schedule: { every: 10m }
  - key: leads
    app: files
    path: ./data/leads.csv
    identity: { column: email, property: email }
    createsProfiles: false
    schedule: { cron: "*/5 * * * *" }
`,
  'model/properties.yml': `
properties:
  - key: customer_id
    type: integer
    unique: true
    source: customers
    column: id
  - key: email
    type: email
    unique: true
    source: customers
    column: email
  - key: first_name
    type: string
    source: customers
    column: first_name
  - key: ltv
    type: float
    source: customers
    aggregate: { table: payment, matchColumn: customer_id, function: sum, column: amount }
  - key: country
    type: string
    source: customers
    query: "SELECT country FROM addresses WHERE customer_id = {{profile.customer_id}}"
  - key: tags
    type: string
    list: true
`,
  'model/groups.json': JSON.stringify({
    groups: [
      { key: 'high_value', rule: { '>': [{ var: 'ltv' }, 150] } },
      { key: 'vip', type: 'manual' },
    ],
  }),
  'destinations.yml': `
destinations:
  - key: crm
    app: crm_db
    options: { table: crm_contacts }
    groups: [high_value, vip]
    mapping: { email: email, first_name: first_name }
`,
};

// Folders written by writeConfigDir, removed once the test file is done with them.
const writtenDirs: string[] = [];
afterAll(async () => {
  await Promise.all(writtenDirs.splice(0).map((dir) => fs.rm(dir, { recursive: true, force: true })));
});

/** Writes `files` (relative path -> text) into a new temporary folder and returns its path. */
export async function writeConfigDir(files: Record<string, string | undefined>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'roster-config-'));
  writtenDirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    if (text === undefined) {
      continue;
    }
    await fs.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await fs.writeFile(path.join(dir, name), text);
  }

  return dir;
}

export const WRITE_KEY_ENV = { ...SECRET_ENV, SITE_WRITE_KEY: 'wk_site_secret_value' };

/** Added to VALID_FILES: events settings, a write key, event properties and an event destination. */
export const EVENT_FILES: Record<string, string> = {
  'events.yml': `
events:
  userIdProperty: customer_id
  anonymousIdsPerProfile: 20
  retentionDays: 90
writeKeys:
  - name: site
    key: { env: SITE_WRITE_KEY }
properties:
  - key: rentals
    type: integer
    event: { name: Film Rented, function: count }
  - key: spend_last_30_days
    type: float
    event: { name: Film Rented, function: sum, field: properties.amount, days: 30 }
  - key: last_page_at
    type: date
    event: { type: page, function: last, field: occurred_at }
apps:
  - key: hooks
    type: webhook
    options: { url: "https://example.com/hook" }
destinations:
  - key: rentals_hook
    app: hooks
    events: [Film Rented, Checkout]
`,
};
