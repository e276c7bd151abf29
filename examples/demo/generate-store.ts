/**
 * Builds the demo's store warehouse: customers, purchases, refunds and carts, generated with a
 * seeded faker so that the same seed gives the same people and orders. Dates are spread over
 * the two years before `now`, so relative-date groups ("no purchase in 90 days") have members.
 */
import { Faker, en, en_GB, de, fr, es, nl, base } from '@faker-js/faker';
import type { Pool } from '../../lib/db.js';

export interface GenerateStoreOptions {
  customers: number;
  seed: number;
  /** The end of the generated history; defaults to the start of the current UTC day. */
  now?: Date;
}

export interface StoreCounts {
  customers: number;
  purchases: number;
  refunds: number;
  carts: number;
}

const DAY_MS = 86_400_000;
const HISTORY_MS = 730 * DAY_MS;

// Locale of a customer, and how often it occurs: most of the store's buyers speak English.
const LOCALES: Array<{ weight: number; value: string }> = [
  { weight: 45, value: 'en-US' },
  { weight: 15, value: 'en-GB' },
  { weight: 12, value: 'de-DE' },
  { weight: 10, value: 'fr-FR' },
  { weight: 10, value: 'es-ES' },
  { weight: 8, value: 'nl-NL' },
];

// The store's own tables only: crm_contacts, which the demo exports into, is kept, because
// Roster's export state remembers what it already wrote there.
const STORE_TABLES = ['refunds', 'purchases', 'carts', 'customers'];

const CREATE_TABLES = `
CREATE TABLE customers (
  id integer PRIMARY KEY,
  first_name text NOT NULL,
  last_name text NOT NULL,
  email text NOT NULL CONSTRAINT customers_email_key UNIQUE,
  locale text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX customers_updated_at_idx ON customers (updated_at, id);

CREATE TABLE purchases (
  id integer PRIMARY KEY,
  customer_id integer NOT NULL CONSTRAINT purchases_customer_id_fkey REFERENCES customers (id),
  amount numeric(10, 2) NOT NULL,
  purchased_at timestamptz NOT NULL
);
CREATE INDEX purchases_customer_id_idx ON purchases (customer_id);
CREATE INDEX purchases_purchased_at_idx ON purchases (purchased_at, id);

CREATE TABLE refunds (
  id integer PRIMARY KEY,
  purchase_id integer NOT NULL CONSTRAINT refunds_purchase_id_fkey REFERENCES purchases (id),
  customer_id integer NOT NULL CONSTRAINT refunds_customer_id_fkey REFERENCES customers (id),
  amount numeric(10, 2) NOT NULL,
  refunded_at timestamptz NOT NULL
);
CREATE INDEX refunds_customer_id_idx ON refunds (customer_id);

CREATE TABLE carts (
  id integer PRIMARY KEY,
  customer_id integer NOT NULL CONSTRAINT carts_customer_id_fkey REFERENCES customers (id),
  created_at timestamptz NOT NULL,
  abandoned boolean NOT NULL
);
CREATE INDEX carts_customer_id_idx ON carts (customer_id);
`;

interface Columns {
  [column: string]: unknown[];
}

/** Loads whole columns in one statement: unnest keeps it to a handful of parameters. */
async function insertColumns(pool: Pool, table: string, columns: Columns, types: string[]): Promise<void> {
  const names = Object.keys(columns);
  const unnest = names.map((_, i) => `$${i + 1}::${types[i]}[]`).join(', ');
  await pool.query(`INSERT INTO ${table} (${names.join(', ')}) SELECT * FROM unnest(${unnest})`, Object.values(columns));
}

function between(faker: Faker, from: number, to: number): Date {
  return new Date(faker.number.int({ min: Math.floor(from), max: Math.max(Math.floor(from), Math.floor(to)) }));
}

/** A price in cents: most orders are small, a few are large, as in a real shop. */
function priceCents(faker: Faker): number {
  const base = faker.number.int({ min: 800, max: 9_000 });

  return faker.datatype.boolean(0.12) ? base * faker.number.int({ min: 3, max: 8 }) : base;
}

/** Drops and recreates the store's tables in the warehouse, then fills them. */
export async function generateStore(pool: Pool, options: GenerateStoreOptions): Promise<StoreCounts> {
  const faker = new Faker({ locale: [en, base] });
  faker.seed(options.seed);
  const localeFakers: Record<string, Faker> = {
    'en-US': faker,
    'en-GB': new Faker({ locale: [en_GB, en, base] }),
    'de-DE': new Faker({ locale: [de, en, base] }),
    'fr-FR': new Faker({ locale: [fr, en, base] }),
    'es-ES': new Faker({ locale: [es, en, base] }),
    'nl-NL': new Faker({ locale: [nl, en, base] }),
  };
  Object.values(localeFakers).forEach((localeFaker, i) => localeFaker.seed(options.seed + i + 1));
  // Anchored to midnight so that runs on the same day build the very same store, and a repeated
  // demo shows incremental imports finding nothing new.
  const now = options.now?.getTime() ?? Math.floor(Date.now() / DAY_MS) * DAY_MS;
  const start = now - HISTORY_MS;

  const customers = { id: [] as number[], first_name: [] as string[], last_name: [] as string[], email: [] as string[], locale: [] as string[], created_at: [] as Date[], updated_at: [] as Date[] };
  const purchases = { id: [] as number[], customer_id: [] as number[], amount: [] as string[], purchased_at: [] as Date[] };
  const refunds = { id: [] as number[], purchase_id: [] as number[], customer_id: [] as number[], amount: [] as string[], refunded_at: [] as Date[] };
  const carts = { id: [] as number[], customer_id: [] as number[], created_at: [] as Date[], abandoned: [] as boolean[] };

  for (let id = 1; id <= options.customers; id++) {
    const locale = faker.helpers.weightedArrayElement(LOCALES);
    const people = localeFakers[locale];
    const firstName = people.person.firstName();
    const lastName = people.person.lastName();
    // The id in the address keeps emails unique however many namesakes the seed produces.
    const email = faker.internet
      .email({ firstName, lastName, provider: faker.helpers.arrayElement(['example.com', 'example.org', 'example.net']) })
      .replace('@', `.${id}@`)
      .toLowerCase();
    const createdAt = between(faker, start, now - DAY_MS);
    customers.id.push(id);
    customers.first_name.push(firstName);
    customers.last_name.push(lastName);
    customers.email.push(email);
    customers.locale.push(locale);
    customers.created_at.push(createdAt);
    customers.updated_at.push(faker.datatype.boolean(0.3) ? between(faker, createdAt.getTime(), now) : createdAt);

    // About one customer in six never buys; the rest buy a few times, some often.
    const orderCount = faker.datatype.boolean(0.17) ? 0 : faker.helpers.weightedArrayElement([
      { weight: 50, value: faker.number.int({ min: 1, max: 3 }) },
      { weight: 35, value: faker.number.int({ min: 4, max: 8 }) },
      { weight: 15, value: faker.number.int({ min: 9, max: 20 }) },
    ]);
    // Some customers stop buying: their orders end well before today.
    const lastActive = faker.datatype.boolean(0.35) ? between(faker, createdAt.getTime(), now - 91 * DAY_MS) : new Date(now);
    for (let n = 0; n < orderCount; n++) {
      const purchaseId = purchases.id.length + 1;
      const cents = priceCents(faker);
      const purchasedAt = between(faker, createdAt.getTime(), Math.max(createdAt.getTime(), lastActive.getTime()));
      purchases.id.push(purchaseId);
      purchases.customer_id.push(id);
      purchases.amount.push((cents / 100).toFixed(2));
      purchases.purchased_at.push(purchasedAt);
      if (faker.datatype.boolean(0.08)) {
        const refundCents = faker.datatype.boolean(0.6) ? cents : Math.round(cents * faker.number.float({ min: 0.1, max: 0.9 }));
        refunds.id.push(refunds.id.length + 1);
        refunds.purchase_id.push(purchaseId);
        refunds.customer_id.push(id);
        refunds.amount.push((refundCents / 100).toFixed(2));
        refunds.refunded_at.push(between(faker, purchasedAt.getTime(), Math.min(now, purchasedAt.getTime() + 30 * DAY_MS)));
      }
    }
    for (let n = faker.number.int({ min: 0, max: 3 }); n > 0; n--) {
      carts.id.push(carts.id.length + 1);
      carts.customer_id.push(id);
      carts.created_at.push(between(faker, createdAt.getTime(), now));
      carts.abandoned.push(faker.datatype.boolean(0.6));
    }
  }

  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`DROP TABLE IF EXISTS ${STORE_TABLES.join(', ')}`);
    await client.query(CREATE_TABLES);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  } finally {
    client.release();
  }
  await insertColumns(pool, 'customers', customers, ['integer', 'text', 'text', 'text', 'text', 'timestamptz', 'timestamptz']);
  await insertColumns(pool, 'purchases', purchases, ['integer', 'integer', 'numeric', 'timestamptz']);
  await insertColumns(pool, 'refunds', refunds, ['integer', 'integer', 'integer', 'numeric', 'timestamptz']);
  await insertColumns(pool, 'carts', carts, ['integer', 'integer', 'timestamptz', 'boolean']);
  await pool.query('ANALYZE customers, purchases, refunds, carts');

  return { customers: customers.id.length, purchases: purchases.id.length, refunds: refunds.id.length, carts: carts.id.length };
}
