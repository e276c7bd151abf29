// Covers the migration runner: a fresh database gets every table and view, and reruns are no-ops.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { migrate } from '../../sql/migrate.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

describe('migrate', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('creates the core tables and the BI views', async () => {
    const { rows } = await db.pool.query(
      `SELECT table_schema || '.' || table_name AS name FROM information_schema.tables WHERE table_schema IN ('roster', 'roster_core')`,
    );
    const names = rows.map((row) => row.name);
    expect(names).toContain('roster_core.profiles');
    expect(names).toContain('roster_core.export_state');
    expect(names).toContain('roster.group_members');
  });

  it('applies nothing the second time', async () => {
    const applied = await migrate(db.url, pino({ level: 'silent' }));
    expect(applied).toEqual([]);
  });
});

describe('migrate checksums', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('refuses to run when an applied migration file has changed', async () => {
    await migrate(db.url, pino({ level: 'silent' }));
    await db.pool.query(`UPDATE roster_core.migration_checksums SET checksum = 'edited' WHERE name = '0001_create_core_tables.sql'`);

    await expect(migrate(db.url, pino({ level: 'silent' }))).rejects.toMatchObject({ code: 'CDP_MIGRATION_CHECKSUM_MISMATCH' });
  });
});
