// Covers group membership: incremental updates, full and time-relative recomputes, manual members, views.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, NotFoundError } from '../../lib/errors.js';
import {
  addManualMembers,
  dropGroupView,
  recomputeGroup,
  recomputeTimeRelativeGroups,
  removeManualMembers,
  syncGroupView,
  updateMembershipsForProfiles,
} from '../../sql/group-membership.js';
import type { PropertyDef } from '../../sql/property-types.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createGroup, defineProperties, insertProfiles, memberIds } from './group-fixtures.js';

const ADULTS = { '>=': [{ var: 'age' }, 18] };

describe('group membership', () => {
  let db: TestDatabase;
  let properties: Map<string, PropertyDef>;

  beforeEach(async () => {
    db = await createTestDatabase();
    properties = await defineProperties(db.pool, [
      { key: 'age', type: 'integer' },
      { key: 'country', type: 'string' },
      { key: 'seen', type: 'date' },
      { key: 'tags', type: 'string', isList: true },
    ]);
  });

  afterEach(async () => {
    await db.drop();
  });

  async function revisions(ids: number[]): Promise<number[]> {
    const { rows } = await db.pool.query<{ revision: number }>(
      'SELECT revision FROM roster_core.profiles WHERE id = ANY($1::bigint[]) ORDER BY id',
      [ids],
    );

    return rows.map((row) => row.revision);
  }

  async function history(groupId: number): Promise<Array<{ profileId: number; action: string; reason: string }>> {
    const { rows } = await db.pool.query(
      `SELECT moved.profile_id AS "profileId", c.action, c.reason
       FROM roster_core.group_membership_changes AS c
       CROSS JOIN LATERAL unnest(c.profile_ids) WITH ORDINALITY AS moved (profile_id, position)
       WHERE c.group_id = $1
       ORDER BY c.id, moved.position`,
      [groupId],
    );

    return rows;
  }

  it('enters and exits changed profiles with history rows and leaves the profile rows as they were', async () => {
    const group = await createGroup(db.pool, { key: 'adults', rule: ADULTS }, properties);
    const [adult, child, unknown] = await insertProfiles(db.pool, [{ age: 20 }, { age: 10 }, {}]);
    const before = await revisions([adult, child, unknown]);

    const first = await updateMembershipsForProfiles(db.pool, [adult, child, unknown], 'data_change');
    expect(first).toEqual({ entered: 1, exited: 0, changedProfileIds: [adult] });
    expect(await memberIds(db.pool, group.id)).toEqual([adult]);
    expect(await revisions([adult, child, unknown])).toEqual(before);

    await db.pool.query('UPDATE roster_core.profiles SET age = CASE id WHEN $1 THEN 5 ELSE 30 END WHERE id IN ($1, $2)', [adult, child]);
    const second = await updateMembershipsForProfiles(db.pool, [adult, child], 'data_change');
    expect(second).toEqual({ entered: 1, exited: 1, changedProfileIds: [adult, child] });
    expect(await memberIds(db.pool, group.id)).toEqual([child]);
    expect(await history(group.id)).toEqual([
      { profileId: adult, action: 'enter', reason: 'data_change' },
      { profileId: child, action: 'enter', reason: 'data_change' },
      { profileId: adult, action: 'exit', reason: 'data_change' },
    ]);
  });

  it('changes nothing and writes no history when membership is already right', async () => {
    await createGroup(db.pool, { key: 'adults', rule: ADULTS }, properties);
    const ids = await insertProfiles(db.pool, [{ age: 20 }, { age: 10 }]);
    const group = await updateMembershipsForProfiles(db.pool, ids, 'data_change');
    expect(group.entered).toBe(1);
    const historyBefore = await db.pool.query('SELECT count(*)::int AS n FROM roster_core.group_membership_changes');

    const again = await updateMembershipsForProfiles(db.pool, ids, 'data_change');
    expect(again).toEqual({ entered: 0, exited: 0, changedProfileIds: [] });
    const historyAfter = await db.pool.query('SELECT count(*)::int AS n FROM roster_core.group_membership_changes');
    expect(historyAfter.rows[0].n).toBe(historyBefore.rows[0].n);
  });

  it('evaluates only the given profiles', async () => {
    const group = await createGroup(db.pool, { key: 'adults', rule: ADULTS }, properties);
    const [given, other] = await insertProfiles(db.pool, [{ age: 40 }, { age: 40 }]);

    await updateMembershipsForProfiles(db.pool, [given], 'data_change');
    expect(await memberIds(db.pool, group.id)).toEqual([given]);
    expect(other).toBeGreaterThan(0);
  });

  it('reports a profile once when it changes in several groups, with a history row per group', async () => {
    await createGroup(db.pool, { key: 'adults', rule: ADULTS }, properties);
    await createGroup(db.pool, { key: 'canadians', rule: { '==': [{ var: 'country' }, 'Canada'] } }, properties);
    const [id] = await insertProfiles(db.pool, [{ age: 30, country: 'Canada' }]);
    const [before] = await revisions([id]);

    const result = await updateMembershipsForProfiles(db.pool, [id], 'data_change');
    expect(result).toEqual({ entered: 2, exited: 0, changedProfileIds: [id] });
    const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM roster.group_membership_history WHERE profile_id = $1', [id]);
    expect(rows[0].n).toBe(2);
    expect(await revisions([id])).toEqual([before]);
  });

  it('recomputes a group to the same members as incremental updates', async () => {
    const rule = { or: [{ and: [ADULTS, { in: [{ var: 'country' }, ['Canada', 'Mexico']] }] }, { in: ['vip', { var: 'tags' }] }] };
    const full = await createGroup(db.pool, { key: 'full', rule }, properties);
    const countries = ['Canada', 'Mexico', 'France', null];
    const ids = await insertProfiles(
      db.pool,
      Array.from({ length: 120 }, (_, i) => ({
        age: i % 7 === 0 ? null : (i * 13) % 60,
        country: countries[i % 4],
        tags: i % 5 === 0 ? ['vip'] : i % 3 === 0 ? [] : ['other'],
      })),
    );

    const recomputed = await recomputeGroup(db.pool, full.id, 'rule_change');
    const incremental = await createGroup(db.pool, { key: 'incremental', rule }, properties);
    const update = await updateMembershipsForProfiles(db.pool, ids, 'data_change');

    const members = await memberIds(db.pool, full.id);
    expect(members.length).toBeGreaterThan(0);
    expect(members.length).toBeLessThan(ids.length);
    expect(await memberIds(db.pool, incremental.id)).toEqual(members);
    expect(recomputed).toEqual({ entered: members.length, exited: 0 });
    expect(update.entered).toBe(members.length);
    expect(update.exited).toBe(0);
  });

  it('recomputes entries and exits together with the given reason', async () => {
    const group = await createGroup(db.pool, { key: 'adults', rule: ADULTS }, properties);
    const [leaving, staying, child] = await insertProfiles(db.pool, [{ age: 40 }, { age: 50 }, { age: 9 }]);
    await recomputeGroup(db.pool, group.id, 'rule_change');
    await db.pool.query('UPDATE roster_core.profiles SET age = 3 WHERE id = $1', [leaving]);
    await db.pool.query('UPDATE roster_core.profiles SET age = 19 WHERE id = $1', [child]);
    const before = await revisions([leaving, staying, child]);

    expect(await recomputeGroup(db.pool, group.id, 'rule_change')).toEqual({ entered: 1, exited: 1 });
    expect(await memberIds(db.pool, group.id)).toEqual([staying, child]);
    expect((await history(group.id)).slice(-2)).toEqual([
      { profileId: child, action: 'enter', reason: 'rule_change' },
      { profileId: leaving, action: 'exit', reason: 'rule_change' },
    ]);
    expect(await revisions([leaving, staying, child])).toEqual(before);
  });

  it('recomputes only time-relative groups as time passes', async () => {
    const recent = await createGroup(db.pool, { key: 'recent', rule: { '>': [{ var: 'seen' }, { ago: [7, 'days'] }] } }, properties);
    const adults = await createGroup(db.pool, { key: 'adults', rule: ADULTS }, properties);
    const [id] = await insertProfiles(db.pool, [{ seen: new Date(Date.now() - 6 * 86_400_000), age: 30 }]);
    await updateMembershipsForProfiles(db.pool, [id], 'data_change');
    // Time passes (backdated) and the age changes without an incremental update.
    await db.pool.query(`UPDATE roster_core.profiles SET seen = now() - interval '8 days', age = 1 WHERE id = $1`, [id]);

    const results = await recomputeTimeRelativeGroups(db.pool);
    expect(results).toEqual([{ groupId: recent.id, groupKey: 'recent', entered: 0, exited: 1 }]);
    expect(await memberIds(db.pool, recent.id)).toEqual([]);
    expect(await memberIds(db.pool, adults.id)).toEqual([id]);
    expect((await history(recent.id)).at(-1)).toEqual({ profileId: id, action: 'exit', reason: 'time_passing' });
  });

  it('adds and removes manual members with history', async () => {
    const group = await createGroup(db.pool, { key: 'hand_picked' }, properties);
    const [a, b] = await insertProfiles(db.pool, [{}, {}]);
    const before = await revisions([a, b]);

    expect(await addManualMembers(db.pool, group.id, [a, b, a])).toEqual({ entered: 2, exited: 0, changedProfileIds: [a, b] });
    expect(await addManualMembers(db.pool, group.id, [a])).toEqual({ entered: 0, exited: 0, changedProfileIds: [] });

    expect(await removeManualMembers(db.pool, group.id, [a])).toEqual({ entered: 0, exited: 1, changedProfileIds: [a] });
    expect(await memberIds(db.pool, group.id)).toEqual([b]);
    expect(await revisions([a, b])).toEqual(before);
    expect(await history(group.id)).toEqual([
      { profileId: a, action: 'enter', reason: 'manual' },
      { profileId: b, action: 'enter', reason: 'manual' },
      { profileId: a, action: 'exit', reason: 'manual' },
    ]);
  });

  it('leaves manual groups out of incremental updates', async () => {
    const group = await createGroup(db.pool, { key: 'hand_picked' }, properties);
    const [id] = await insertProfiles(db.pool, [{ age: 30 }]);
    await addManualMembers(db.pool, group.id, [id]);

    await updateMembershipsForProfiles(db.pool, [id], 'data_change');
    expect(await memberIds(db.pool, group.id)).toEqual([id]);
  });

  it('rejects manual changes to a calculated group and recomputes of a manual one', async () => {
    const calculated = await createGroup(db.pool, { key: 'adults', rule: ADULTS }, properties);
    const manual = await createGroup(db.pool, { key: 'hand_picked' }, properties);
    const [id] = await insertProfiles(db.pool, [{}]);

    await expect(addManualMembers(db.pool, calculated.id, [id])).rejects.toMatchObject({ code: 'CDP_GROUP_NOT_MANUAL' });
    await expect(removeManualMembers(db.pool, calculated.id, [id])).rejects.toBeInstanceOf(ConfigError);
    await expect(recomputeGroup(db.pool, manual.id, 'manual')).rejects.toMatchObject({ code: 'CDP_GROUP_NOT_CALCULATED' });
    await expect(recomputeGroup(db.pool, 999_999, 'manual')).rejects.toBeInstanceOf(NotFoundError);
    await expect(addManualMembers(db.pool, manual.id, [id, 999_999])).rejects.toMatchObject({ code: 'CDP_PROFILE_NOT_FOUND' });
  });

  it('creates views that follow the live rule or the manual members, and drops them', async () => {
    const calculated = await createGroup(db.pool, { key: 'adults', rule: ADULTS }, properties);
    const manual = await createGroup(db.pool, { key: 'hand_picked' }, properties);
    const [adult, child] = await insertProfiles(db.pool, [{ age: 30 }, { age: 3 }]);
    await addManualMembers(db.pool, manual.id, [child]);
    await syncGroupView(db.pool, calculated);
    await syncGroupView(db.pool, manual);

    const view = async (name: string) =>
      (await db.pool.query<{ profile_id: number }>(`SELECT profile_id FROM roster.${name} ORDER BY profile_id`)).rows.map(
        (row) => row.profile_id,
      );
    expect(await view('group_adults')).toEqual([adult]);
    expect(await view('group_hand_picked')).toEqual([child]);
    const { rows } = await db.pool.query<{ comment: string }>(`SELECT obj_description('roster.group_adults'::regclass) AS comment`);
    expect(rows[0].comment).toContain(JSON.stringify(ADULTS));

    await dropGroupView(db.pool, 'adults');
    const { rows: left } = await db.pool.query(
      `SELECT viewname FROM pg_views WHERE schemaname = 'roster' AND viewname IN ('group_adults', 'group_hand_picked')`,
    );
    expect(left.map((row) => row.viewname)).toEqual(['group_hand_picked']);
  });

  it('rejects a group key too long for a view name', async () => {
    const group = { id: 1, key: 'k'.repeat(80), compiledSql: null, type: 'manual' as const };
    await expect(syncGroupView(db.pool, group)).rejects.toMatchObject({ code: 'CDP_GROUP_KEY_TOO_LONG' });
  });

  it('re-evaluates 1,000 changed profiles in three groups to match their live views', async () => {
    await createGroup(db.pool, { key: 'adults', rule: ADULTS }, properties);
    await createGroup(db.pool, { key: 'canadians', rule: { '==': [{ var: 'country' }, 'Canada'] } }, properties);
    await createGroup(db.pool, { key: 'recent', rule: { '>': [{ var: 'seen' }, { ago: [30, 'days'] }] } }, properties);
    await db.pool.query(
      `INSERT INTO roster_core.profiles (age, country, seen)
       SELECT i % 90, (ARRAY['Canada', 'Mexico', 'France'])[i % 3 + 1], now() - (i % 60) * interval '1 day'
       FROM generate_series(1, 50000) AS i`,
    );
    const { rows } = await db.pool.query<{ id: number }>('SELECT id FROM roster_core.profiles ORDER BY random() LIMIT 1000');
    const ids = rows.map((row) => row.id);
    await updateMembershipsForProfiles(db.pool, ids, 'data_change');
    await db.pool.query('UPDATE roster_core.profiles SET age = 90 - age WHERE id = ANY($1::bigint[])', [ids]);

    const result = await updateMembershipsForProfiles(db.pool, ids, 'data_change');

    // Speed is measured in bench/ (group-incremental); here the result must equal the rules.
    expect(result.entered + result.exited).toBeGreaterThan(0);
    const groups = await db.pool.query<{ id: number; key: string; compiledSql: string }>(
      `SELECT id, key, compiled_sql AS "compiledSql" FROM roster_core.groups WHERE key IN ('adults', 'canadians', 'recent')`,
    );
    for (const group of groups.rows) {
      const expected = await db.pool.query(`SELECT p.id FROM roster_core.profiles AS p WHERE p.id = ANY($1::bigint[]) AND (${group.compiledSql}) ORDER BY p.id`, [ids]);
      const actual = await db.pool.query('SELECT profile_id AS id FROM roster_core.group_memberships WHERE group_id = $1 AND profile_id = ANY($2::bigint[]) ORDER BY profile_id', [group.id, ids]);
      expect(actual.rows, group.key).toEqual(expected.rows);
    }
  });
  it('writes one change set per action when a recompute moves many profiles', async () => {
    const group = await createGroup(db.pool, { key: 'adults', rule: ADULTS }, properties);
    const ids = await insertProfiles(db.pool, [{ age: 40 }, { age: 50 }, { age: 9 }, { age: 70 }]);

    await recomputeGroup(db.pool, group.id, 'rule_change');
    const { rows } = await db.pool.query<{ action: string; reason: string; profileIds: number[] }>(
      'SELECT action, reason, profile_ids AS "profileIds" FROM roster_core.group_membership_changes WHERE group_id = $1 ORDER BY id',
      [group.id],
    );
    expect(rows.map((row) => ({ ...row, profileIds: row.profileIds.map(Number) }))).toEqual([{ action: 'enter', reason: 'rule_change', profileIds: [ids[0], ids[1], ids[3]] }]);
    const view = await db.pool.query<{ profileId: number }>(
      `SELECT profile_id AS "profileId" FROM roster.group_membership_history WHERE group_key = 'adults' ORDER BY profile_id`,
    );
    expect(view.rows.map((row) => row.profileId)).toEqual([ids[0], ids[1], ids[3]]);
  });

  it('removes the memberships of deleted profiles and deleted groups', async () => {
    const adults = await createGroup(db.pool, { key: 'adults', rule: ADULTS }, properties);
    const picked = await createGroup(db.pool, { key: 'picked' }, properties);
    const [a, b, c] = await insertProfiles(db.pool, [{ age: 40 }, { age: 50 }, { age: 60 }]);
    await recomputeGroup(db.pool, adults.id, 'rule_change');
    await addManualMembers(db.pool, picked.id, [a, b, c]);

    await db.pool.query('DELETE FROM roster_core.profiles WHERE id = ANY($1::bigint[])', [[a, c]]);
    expect(await memberIds(db.pool, adults.id)).toEqual([b]);
    expect(await memberIds(db.pool, picked.id)).toEqual([b]);

    await db.pool.query('DELETE FROM roster_core.groups WHERE id = $1', [picked.id]);
    const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM roster_core.group_memberships WHERE group_id = $1', [picked.id]);
    expect(rows[0].n).toBe(0);
    expect(await memberIds(db.pool, adults.id)).toEqual([b]);
  });
});
