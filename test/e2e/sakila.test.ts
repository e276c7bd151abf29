// Covers the Sakila example end to end: MariaDB source, the example config applied as is, imports, hydration, groups, warehouse export, incremental re-runs, C2 and C7.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runOnce, type RunOutcome } from '../../cli/run.js';
import { closeConnectors } from '../../connectors/index.js';
import { loadConfig } from '../../lib/config.js';
import { defaultSakilaDir, loadSakila, SAKILA_TABLES } from '../../examples/sakila/load-mariadb.js';
import { applyConfig } from '../../sql/config/apply-config.js';
import { loadConfigDir } from '../../sql/config/load-config-dir.js';
import { validateConfig } from '../../sql/config/validate-config.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createMariaDatabase, MARIADB, type TestMariaDatabase } from '../helpers/mariadb.js';

const DATASET_DIR = defaultSakilaDir();
const CONFIG_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/sakila/config');
const HAS_DATASET = fs.existsSync(path.join(DATASET_DIR, 'schema.mysql.sql'));
const SOURCES = ['customers', 'payments', 'rentals'];
const CUSTOMER_TABLES = ['country', 'city', 'address', 'customer'];
const CANADA = 'Canada';
const HIGH_VALUE_CENTS = 150_00;

type CsvRow = Record<string, string>;

function readCsv(table: string): CsvRow[] {
  return parse(fs.readFileSync(path.join(DATASET_DIR, `${table}.csv`)), { columns: true }) as CsvRow[];
}

/** A zone-less Sakila timestamp, which Roster reads as UTC. */
function utc(text: string): Date {
  return new Date(`${text.replace(' ', 'T')}Z`);
}

function toCents(amount: string): number {
  return Math.round(Number(amount) * 100);
}

interface ExpectedCustomer {
  customerId: number;
  firstName: string;
  lastName: string;
  email: string;
  country: string;
  ltvCents: number;
  rentalCount: number;
  lastRentalAt: Date | null;
}

/** What every profile should hold, computed from the CSV files without Roster. */
function expectedCustomers(): Map<number, ExpectedCustomer> {
  const countries = new Map(readCsv('country').map((row) => [row.country_id, row.country]));
  const cityCountry = new Map(readCsv('city').map((row) => [row.city_id, countries.get(row.country_id)!]));
  const addressCountry = new Map(readCsv('address').map((row) => [row.address_id, cityCountry.get(row.city_id)!]));
  const customers = new Map<number, ExpectedCustomer>();
  for (const row of readCsv('customer')) {
    customers.set(Number(row.customer_id), {
      customerId: Number(row.customer_id),
      firstName: row.first_name,
      lastName: row.last_name,
      email: row.email.toLowerCase(),
      country: addressCountry.get(row.address_id)!,
      ltvCents: 0,
      rentalCount: 0,
      lastRentalAt: null,
    });
  }
  for (const row of readCsv('payment')) {
    customers.get(Number(row.customer_id))!.ltvCents += toCents(row.amount);
  }
  for (const row of readCsv('rental')) {
    const customer = customers.get(Number(row.customer_id))!;
    customer.rentalCount += 1;
    const at = utc(row.rental_date);
    if (!customer.lastRentalAt || at > customer.lastRentalAt) customer.lastRentalAt = at;
  }

  return customers;
}

interface ProfileRow {
  profileId: number;
  customerId: number;
  email: string | null;
  firstName: string | null;
  lastName: string | null;
  country: string | null;
  ltv: number | null;
  rentalCount: number | null;
  lastRentalAt: Date | null;
}

interface Stack {
  maria: TestMariaDatabase;
  roster: TestDatabase;
  warehouse: TestDatabase;
  run(sources?: string[]): Promise<RunOutcome>;
  profiles(): Promise<Map<number, ProfileRow>>;
  drop(): Promise<void>;
}

/**
 * Fresh MariaDB, Roster and warehouse databases, the dataset loaded, and the example config
 * applied with only its database name pointed at the test's MariaDB database.
 */
async function createStack(tables: readonly string[] = SAKILA_TABLES): Promise<Stack> {
  const maria = await createMariaDatabase();
  const roster = await createTestDatabase();
  const warehouse = await createTestDatabase();
  await loadSakila({ connection: maria.connection, datasetDir: DATASET_DIR, tables });

  process.env.SAKILA_MYSQL_PASSWORD = MARIADB.password;
  process.env.SAKILA_WAREHOUSE_URL = warehouse.url;
  const loaded = await loadConfigDir(CONFIG_DIR);
  for (const doc of loaded.documents) {
    const apps = (doc.data as { apps?: Array<{ key: string; options: Record<string, unknown> }> }).apps ?? [];
    for (const app of apps.filter((item) => item.key === 'sakila')) {
      Object.assign(app.options, { host: MARIADB.host, port: MARIADB.port, user: MARIADB.user, database: maria.database });
    }
  }
  const { config } = validateConfig(loaded);
  await applyConfig(roster.pool, config);

  const ctx = { config: loadConfig({ DATABASE_URL: roster.url }), log: pino({ level: 'silent' }) };

  return {
    maria,
    roster,
    warehouse,
    run: (sources = SOURCES) => runOnce(ctx, { pool: roster.pool, url: roster.url }, { sources }),
    async profiles() {
      const { rows } = await roster.pool.query<ProfileRow>(
        `SELECT
           profile_id AS "profileId",
           customer_id AS "customerId",
           email,
           first_name AS "firstName",
           last_name AS "lastName",
           country,
           ltv,
           rental_count AS "rentalCount",
           last_rental_at AS "lastRentalAt"
         FROM roster.profiles`,
      );

      return new Map(rows.map((row) => [row.customerId, row]));
    },
    async drop() {
      await Promise.allSettled([maria.drop(), roster.drop(), warehouse.drop()]);
    },
  };
}

function exportRunIds(outcome: RunOutcome): number[] {
  return outcome.runs.filter((run) => run.kind === 'export').map((run) => run.runId);
}

async function groupMembers(db: TestDatabase, group: string): Promise<Set<number>> {
  const { rows } = await db.pool.query<{ profileId: number }>('SELECT profile_id AS "profileId" FROM roster.group_members WHERE group_key = $1', [group]);

  return new Set(rows.map((row) => row.profileId));
}

async function revisions(db: TestDatabase): Promise<Map<number, number>> {
  const { rows } = await db.pool.query<{ id: number; revision: number }>('SELECT id, revision FROM roster_core.profiles');

  return new Map(rows.map((row) => [row.id, row.revision]));
}

function expectNoFailedRun(outcome: RunOutcome): void {
  expect(outcome.runs.filter((run) => run.status !== 'succeeded')).toEqual([]);
  expect(outcome.failed).toBe(false);
}

const SUITE = HAS_DATASET ? 'the Sakila example' : `the Sakila example (skipped: no dataset in ${DATASET_DIR}; set SAKILA_DIR)`;
if (!HAS_DATASET) {
  process.stderr.write(`test/e2e/sakila.test.ts is skipped: no Sakila dataset in ${DATASET_DIR} (set SAKILA_DIR)\n`);
}

describe.skipIf(!HAS_DATASET)(SUITE, () => {
  afterAll(closeConnectors);

  // The phases below share one stack on purpose: each builds on the state the previous run left.
  describe.sequential('a store imported, changed and imported again', () => {
    let stack: Stack;
    let expected: Map<number, ExpectedCustomer>;

    beforeAll(async () => {
      expected = expectedCustomers();
      stack = await createStack();
    });

    afterAll(async () => {
      await stack?.drop();
    });

    it('imports every customer with values that match the CSV files', async () => {
      const outcome = await stack.run();

      expectNoFailedRun(outcome);
      expect(outcome.profiles).toBe(599);
      const profiles = await stack.profiles();
      expect(profiles.size).toBe(599);
      for (const customerId of [1, 148, 526, 599]) {
        const want = expected.get(customerId)!;
        const got = profiles.get(customerId)!;
        expect(got.firstName).toBe(want.firstName);
        expect(got.lastName).toBe(want.lastName);
        expect(got.email).toBe(want.email);
        expect(got.country).toBe(want.country);
        expect(Math.round(got.ltv! * 100)).toBe(want.ltvCents);
        expect(got.rentalCount).toBe(want.rentalCount);
        expect(got.lastRentalAt?.getTime()).toBe(want.lastRentalAt?.getTime());
      }
      const mismatched = [...expected.values()].filter((want) => {
        const got = profiles.get(want.customerId);

        return !got || got.email !== want.email || got.country !== want.country || Math.round((got.ltv ?? 0) * 100) !== want.ltvCents || got.rentalCount !== want.rentalCount;
      });
      expect(mismatched.map((want) => want.customerId)).toEqual([]);
    });

    it('totals a lifetime value of 67,416.51 over all profiles', async () => {
      const { rows } = await stack.roster.pool.query<{ total: string }>('SELECT round(sum(ltv)::numeric, 2)::text AS total FROM roster.profiles');

      expect(rows[0].total).toBe('67416.51');
    });

    it('puts the same customers in each group as the CSV files do', async () => {
      const profiles = await stack.profiles();
      const profileOf = (want: ExpectedCustomer) => profiles.get(want.customerId)!.profileId;
      const highValue = new Set([...expected.values()].filter((want) => want.ltvCents > HIGH_VALUE_CENTS).map(profileOf));
      const canada = new Set([...expected.values()].filter((want) => want.country === CANADA).map(profileOf));

      expect(highValue.size).toBeGreaterThan(0);
      expect(canada.size).toBeGreaterThan(0);
      expect(await groupMembers(stack.roster, 'high_value')).toEqual(highValue);
      expect(await groupMembers(stack.roster, 'canada')).toEqual(canada);
      const { rows } = await stack.roster.pool.query<{ groupKey: string; count: number }>(
        `SELECT g.key AS "groupKey", count(m.profile_id)::int AS count
         FROM roster_core.groups AS g
         LEFT JOIN roster_core.group_memberships AS m ON m.group_id = g.id
         GROUP BY g.key`,
      );
      expect(Object.fromEntries(rows.map((row) => [row.groupKey, row.count]))).toEqual({ high_value: highValue.size, canada: canada.size });
    });

    it('writes exactly the members of both groups to the warehouse table', async () => {
      const members = new Set([...(await groupMembers(stack.roster, 'high_value')), ...(await groupMembers(stack.roster, 'canada'))]);
      const byProfile = new Map([...(await stack.profiles()).values()].map((row) => [row.profileId, row]));
      const { rows } = await stack.warehouse.pool.query<Record<string, unknown>>(
        'SELECT profile_id, groups, email, first_name, last_name, country, ltv, rental_count, last_rental_at FROM sakila_customers',
      );

      expect(new Set(rows.map((row) => Number(row.profile_id)))).toEqual(members);
      for (const row of rows) {
        const profile = byProfile.get(Number(row.profile_id))!;
        expect(row.email).toBe(profile.email);
        expect(row.first_name).toBe(profile.firstName);
        expect(row.last_name).toBe(profile.lastName);
        expect(row.country).toBe(profile.country);
        expect(row.ltv).toBe(profile.ltv);
        expect(Number(row.rental_count)).toBe(profile.rentalCount);
        expect((row.last_rental_at as Date | null)?.getTime()).toBe(profile.lastRentalAt?.getTime());
      }
    });

    it('carries only new payments, a changed e-mail and a new customer through a second run', async () => {
      const profilesBefore = await stack.profiles();
      const revisionsBefore = await revisions(stack.roster);
      const { rows: lastHistory } = await stack.roster.pool.query<{ id: number }>('SELECT COALESCE(max(id), 0) AS id FROM roster_core.group_membership_changes');
      const customers = [...expected.values()];
      // Crosses the threshold: the richest customer still under it, outside Canada.
      const crossing = customers
        .filter((want) => want.ltvCents <= HIGH_VALUE_CENTS && want.country !== CANADA)
        .sort((a, b) => b.ltvCents - a.ltvCents)[0];
      const alreadyHigh = expected.get(148)!;
      const renamed = customers.find((want) => want.country === CANADA && want.ltvCents <= HIGH_VALUE_CENTS)!;
      const newEmail = `${renamed.firstName}.${renamed.lastName}@example.org`;
      const topUpCents = HIGH_VALUE_CENTS - crossing.ltvCents + 500;
      const db = stack.maria.connection;

      await db.query(
        `INSERT INTO payment (payment_id, customer_id, staff_id, rental_id, amount, payment_date)
         SELECT max(payment_id) + 1, ?, 1, NULL, ?, NOW() FROM payment`,
        [crossing.customerId, (topUpCents / 100).toFixed(2)],
      );
      await db.query(
        `INSERT INTO payment (payment_id, customer_id, staff_id, rental_id, amount, payment_date)
         SELECT max(payment_id) + 1, ?, 2, NULL, 10.00, NOW() FROM payment`,
        [alreadyHigh.customerId],
      );
      await db.query('UPDATE customer SET email = ?, last_update = NOW() WHERE customer_id = ?', [newEmail.toUpperCase(), renamed.customerId]);
      await db.query(`INSERT INTO city (city_id, city, country_id, last_update) SELECT 1000, 'Roster Falls', country_id, NOW() FROM country WHERE country = 'Canada'`);
      await db.query(`INSERT INTO address (address_id, address, district, city_id, phone, last_update) VALUES (1000, '1 Export Street', 'Ontario', 1000, '5550100', NOW())`);
      await db.query(
        `INSERT INTO customer (customer_id, store_id, first_name, last_name, email, address_id, activebool, create_date, last_update, active)
         VALUES (600, 1, 'ADA', 'NEWCOMER', 'ADA.NEWCOMER@sakilacustomer.org', 1000, 1, CURDATE(), NOW(), 1)`,
      );

      const outcome = await stack.run();

      expectNoFailedRun(outcome);
      const profiles = await stack.profiles();
      expect(profiles.size).toBe(600);
      const newcomer = profiles.get(600)!;
      expect(newcomer).toMatchObject({ firstName: 'ADA', lastName: 'NEWCOMER', email: 'ada.newcomer@sakilacustomer.org', country: CANADA, ltv: null, rentalCount: 0, lastRentalAt: null });

      const idOf = (customerId: number) => profiles.get(customerId)!.profileId;
      const revisionsAfter = await revisions(stack.roster);
      const changed = [...revisionsAfter].filter(([id, revision]) => revisionsBefore.get(id) !== revision).map(([id]) => id);
      expect(new Set(changed)).toEqual(new Set([idOf(crossing.customerId), idOf(alreadyHigh.customerId), idOf(renamed.customerId), idOf(600)]));
      expect(Math.round(profiles.get(crossing.customerId)!.ltv! * 100)).toBe(crossing.ltvCents + topUpCents);
      expect(Math.round(profiles.get(alreadyHigh.customerId)!.ltv! * 100)).toBe(alreadyHigh.ltvCents + 10_00);
      expect(profilesBefore.get(alreadyHigh.customerId)!.ltv).not.toBe(profiles.get(alreadyHigh.customerId)!.ltv);

      expect(profiles.get(renamed.customerId)!.email).toBe(newEmail.toLowerCase());
      const { rows: identities } = await stack.roster.pool.query<{ value: string; profileId: number }>(
        `SELECT i.value, i.profile_id AS "profileId"
         FROM roster_core.identities AS i
         JOIN roster_core.properties AS p ON p.id = i.property_id
         WHERE p.key = 'email' AND i.value = ANY ($1::text[])`,
        [[renamed.email, newEmail.toLowerCase()]],
      );
      expect(identities).toEqual([{ value: newEmail.toLowerCase(), profileId: idOf(renamed.customerId) }]);

      const { rows: history } = await stack.roster.pool.query<{ groupKey: string; profileId: number; action: string; reason: string }>(
        `SELECT g.key AS "groupKey", moved.profile_id AS "profileId", h.action, h.reason
         FROM roster_core.group_membership_changes AS h
         JOIN roster_core.groups AS g ON g.id = h.group_id
         CROSS JOIN LATERAL unnest(h.profile_ids) AS moved (profile_id)
         WHERE h.id > $1
         ORDER BY g.key, moved.profile_id`,
        [lastHistory[0].id],
      );
      expect(history).toEqual(
        [
          { groupKey: 'canada', profileId: idOf(600), action: 'enter', reason: 'data_change' },
          { groupKey: 'high_value', profileId: idOf(crossing.customerId), action: 'enter', reason: 'data_change' },
        ].sort((a, b) => a.groupKey.localeCompare(b.groupKey) || a.profileId - b.profileId),
      );
      expect(await groupMembers(stack.roster, 'high_value')).toContain(idOf(crossing.customerId));
      expect(await groupMembers(stack.roster, 'canada')).toContain(idOf(600));

      const { rows: records } = await stack.roster.pool.query<{ profileId: number; action: string; status: string }>(
        `SELECT profile_id AS "profileId", action, status
         FROM roster.export_records
         WHERE run_id = ANY ($1::bigint[])
         ORDER BY profile_id`,
        [exportRunIds(outcome)],
      );
      expect(records).toEqual(
        [
          { profileId: idOf(crossing.customerId), action: 'create', status: 'sent' },
          { profileId: idOf(alreadyHigh.customerId), action: 'update', status: 'sent' },
          { profileId: idOf(renamed.customerId), action: 'update', status: 'sent' },
          { profileId: idOf(600), action: 'create', status: 'sent' },
        ].sort((a, b) => a.profileId - b.profileId),
      );
      const { rows: warehouseRows } = await stack.warehouse.pool.query<{ email: string; country: string }>(
        'SELECT email, country FROM sakila_customers WHERE profile_id::text = $1',
        [String(idOf(600))],
      );
      expect(warehouseRows).toEqual([{ email: 'ada.newcomer@sakilacustomer.org', country: CANADA }]);
    });

    it('exports nothing on a third run when no source row changed', async () => {
      const revisionsBefore = await revisions(stack.roster);
      const outcome = await stack.run();

      expectNoFailedRun(outcome);
      expect(outcome.runs.filter((run) => run.kind === 'import').map((run) => run.counts.rowsRead ?? 0)).toEqual([0, 0, 0]);
      const { rows } = await stack.roster.pool.query<{ count: number }>('SELECT count(*)::int AS count FROM roster.export_records WHERE run_id = ANY ($1::bigint[])', [
        exportRunIds(outcome),
      ]);
      expect(rows[0].count).toBe(0);
      expect(await revisions(stack.roster)).toEqual(revisionsBefore);
    });
  });

  describe('identity on the store data', () => {
    let stack: Stack | undefined;

    afterEach(async () => {
      await stack?.drop();
      stack = undefined;
    });

    it('keeps two customers that share an e-mail apart and records the conflict (C7)', async () => {
      stack = await createStack(CUSTOMER_TABLES);
      const db = stack.maria.connection;
      // Customer 2 arrives in the same batch as customer 1, carrying customer 1's e-mail.
      await db.query(`UPDATE customer SET email = 'mary.smith@SAKILACUSTOMER.org' WHERE customer_id = 2`);

      const first = await stack.run();

      expectNoFailedRun(first);
      let profiles = await stack.profiles();
      expect(profiles.size).toBe(599);
      expect(profiles.get(1)!.email).toBe('mary.smith@sakilacustomer.org');
      expect(profiles.get(2)!.email).toBeNull();
      expect(profiles.get(2)!.firstName).toBe('PATRICIA');

      // Later, customer 3 takes customer 1's e-mail in an update.
      await db.query(`UPDATE customer SET email = 'MARY.SMITH@sakilacustomer.org', last_update = NOW() WHERE customer_id = 3`);
      const second = await stack.run();

      expectNoFailedRun(second);
      profiles = await stack.profiles();
      expect(profiles.get(1)!.email).toBe('mary.smith@sakilacustomer.org');
      expect(profiles.get(3)!.email).toBe('linda.williams@sakilacustomer.org');
      const { rows } = await stack.roster.pool.query<{ sourceKey: string; propertyKey: string; value: string; profileId: number; otherProfileId: number; resolution: string }>(
        `SELECT source_key AS "sourceKey", property_key AS "propertyKey", value, profile_id AS "profileId",
           other_profile_id AS "otherProfileId", resolution
         FROM roster.identity_conflicts
         WHERE source_key = 'customers'
         ORDER BY conflict_id`,
      );
      const mary = profiles.get(1)!.profileId;
      expect(rows).toEqual([
        { sourceKey: 'customers', propertyKey: 'email', value: 'mary.smith@sakilacustomer.org', profileId: profiles.get(2)!.profileId, otherProfileId: mary, resolution: 'kept_apart' },
        { sourceKey: 'customers', propertyKey: 'email', value: 'mary.smith@sakilacustomer.org', profileId: profiles.get(3)!.profileId, otherProfileId: mary, resolution: 'kept_apart' },
      ]);
      const { rows: owners } = await stack.roster.pool.query<{ profileId: number }>(
        `SELECT i.profile_id AS "profileId" FROM roster_core.identities AS i JOIN roster_core.properties AS p ON p.id = i.property_id
         WHERE p.key = 'email' AND i.value = 'mary.smith@sakilacustomer.org'`,
      );
      expect(owners).toEqual([{ profileId: mary }]);
    });

    it('creates no duplicate profiles or values when the same import runs twice (C2)', async () => {
      stack = await createStack();
      const first = await stack.run();
      expectNoFailedRun(first);
      const profilesBefore = await stack.profiles();
      const revisionsBefore = await revisions(stack.roster);
      const { rows: identitiesBefore } = await stack.roster.pool.query<{ count: number }>('SELECT count(*)::int AS count FROM roster_core.identities');

      // As if the worker died after writing its rows but before saving the high-water marks.
      await stack.roster.pool.query('UPDATE roster_core.sources SET cursor = NULL');
      const second = await stack.run();

      expectNoFailedRun(second);
      const imports = second.runs.filter((run) => run.kind === 'import');
      expect(imports.map((run) => run.counts.rowsRead).sort((a, b) => a - b)).toEqual([599, 16_044, 16_049]);
      expect(imports.every((run) => (run.counts.profilesCreated ?? 0) === 0 && (run.counts.identityConflicts ?? 0) === 0)).toBe(true);
      expect(second.profiles).toBe(599);
      expect(await stack.profiles()).toEqual(profilesBefore);
      expect(await revisions(stack.roster)).toEqual(revisionsBefore);
      const { rows: identitiesAfter } = await stack.roster.pool.query<{ count: number }>('SELECT count(*)::int AS count FROM roster_core.identities');
      expect(identitiesAfter).toEqual(identitiesBefore);
      const { rows: records } = await stack.roster.pool.query<{ count: number }>('SELECT count(*)::int AS count FROM roster.export_records WHERE run_id = ANY ($1::bigint[])', [
        exportRunIds(second),
      ]);
      expect(records[0].count).toBe(0);
    });
  });
});
