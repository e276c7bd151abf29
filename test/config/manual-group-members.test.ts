// Covers adding and removing manual group members by unique values, as `roster group` does.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, NotFoundError } from '../../lib/errors.js';
import { applyConfig } from '../../sql/config/apply-config.js';
import { loadConfigDir } from '../../sql/config/load-config-dir.js';
import { validateConfig } from '../../sql/config/validate-config.js';
import { changeManualMembers } from '../../sql/manual-group-members.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { SECRET_ENV, VALID_FILES, writeConfigDir } from './config-fixture.js';

let db: TestDatabase;
let profileIds: number[];

async function members(groupKey: string): Promise<number[]> {
  const { rows } = await db.pool.query<{ id: number }>(
    `SELECT profile_id AS id FROM roster.group_members WHERE group_key = $1 ORDER BY profile_id`,
    [groupKey],
  );

  return rows.map((row) => row.id);
}

beforeAll(async () => {
  db = await createTestDatabase();
  const dir = await writeConfigDir(VALID_FILES);
  await applyConfig(db.pool, validateConfig(await loadConfigDir(dir), { env: SECRET_ENV }).config);
  const { rows } = await db.pool.query<{ id: number }>(
    `INSERT INTO roster_core.profiles (email, customer_id) VALUES ('ada@example.com', 1), ('grace@example.com', 2) RETURNING id`,
  );
  profileIds = rows.map((row) => row.id);
  await db.pool.query(
    `INSERT INTO roster_core.identities (property_id, value, profile_id)
     SELECT p.id, v.value, v.profile_id
     FROM (VALUES ('email', 'ada@example.com', $1::bigint), ('email', 'grace@example.com', $2::bigint), ('customer_id', '2', $2::bigint)) AS v (key, value, profile_id)
     JOIN roster_core.properties AS p ON p.key = v.key`,
    profileIds,
  );
});

afterAll(async () => {
  await db.drop();
});

describe('changeManualMembers', () => {
  it('adds and removes profiles named by unique values, matching emails case-insensitively', async () => {
    const added = await changeManualMembers(db.pool, {
      groupKey: 'vip',
      action: 'add',
      members: [
        { property: 'email', value: 'Ada@Example.com' },
        { property: 'customer_id', value: '2' },
      ],
    });

    expect(added.entered).toBe(2);
    expect(await members('vip')).toEqual(profileIds);

    const removed = await changeManualMembers(db.pool, { groupKey: 'vip', action: 'remove', members: [{ property: 'email', value: 'grace@example.com' }] });

    expect(removed.exited).toBe(1);
    expect(await members('vip')).toEqual([profileIds[0]]);
  });

  it('reports every unknown value and changes nothing', async () => {
    const before = await members('vip');

    const attempt = changeManualMembers(db.pool, {
      groupKey: 'vip',
      action: 'add',
      members: [
        { property: 'email', value: 'grace@example.com' },
        { property: 'email', value: 'nobody@example.com' },
        { property: 'customer_id', value: 'not-a-number' },
      ],
    });

    await expect(attempt).rejects.toBeInstanceOf(NotFoundError);
    await expect(attempt).rejects.toMatchObject({
      code: 'CDP_PROFILE_NOT_FOUND',
      details: { missing: [{ property: 'email', value: 'nobody@example.com' }, { property: 'customer_id', value: 'not-a-number' }] },
    });
    expect(await members('vip')).toEqual(before);
  });

  it('refuses a property that is not unique', async () => {
    const attempt = changeManualMembers(db.pool, { groupKey: 'vip', action: 'add', members: [{ property: 'first_name', value: 'Ada' }] });

    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    await expect(attempt).rejects.toMatchObject({ code: 'CDP_PROPERTY_NOT_UNIQUE' });
  });

  it('refuses a calculated group and an unknown group', async () => {
    // Each call is awaited where it starts: a second promise left pending while the first is
    // awaited could reject unobserved, which vitest counts as a failure under load.
    await expect(
      changeManualMembers(db.pool, { groupKey: 'high_value', action: 'add', members: [{ property: 'email', value: 'ada@example.com' }] }),
    ).rejects.toMatchObject({ code: 'CDP_GROUP_NOT_MANUAL' });
    const unknown = await changeManualMembers(db.pool, { groupKey: 'nope', action: 'add', members: [{ property: 'email', value: 'ada@example.com' }] }).catch((err: unknown) => err);
    expect(unknown).toBeInstanceOf(NotFoundError);
    expect(unknown).toMatchObject({ code: 'CDP_GROUP_NOT_FOUND' });
  });
});
