// Covers membership history: reasons for every kind of change, members as of past times, recent entries.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InternalError, NotFoundError } from '../../lib/errors.js';
import { listGroupHistory, listGroupMembersAsOf } from '../../sql/group-history.js';
import { addManualMembers, recomputeGroup, recomputeTimeRelativeGroups, removeManualMembers, updateMembershipsForProfiles } from '../../sql/group-membership.js';
import type { PropertyDef } from '../../sql/property-types.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createGroup, defineProperties, insertProfiles } from './group-fixtures.js';

describe('membership history', () => {
  let db: TestDatabase;
  let properties: Map<string, PropertyDef>;

  beforeEach(async () => {
    db = await createTestDatabase();
    properties = await defineProperties(db.pool, [
      { key: 'age', type: 'integer' },
      { key: 'seen', type: 'date' },
    ]);
  });

  afterEach(async () => {
    await db.drop();
  });

  // History rows of one transaction share its time, so each step is moved to a fixed day.
  async function stampLatest(groupId: number, day: string): Promise<void> {
    await db.pool.query(
      `UPDATE roster_core.group_membership_changes SET at = $2::timestamptz
       WHERE group_id = $1 AND at > '2001-01-01' AND at > now() - interval '1 hour'`,
      [groupId, day],
    );
  }

  it('rebuilds the members of a group at several past times', async () => {
    const group = await createGroup(db.pool, { key: 'adults', rule: { '>=': [{ var: 'age' }, 18] } }, properties);
    const [a, b, c] = await insertProfiles(db.pool, [{ age: 20 }, { age: 30 }, { age: 10 }]);
    await updateMembershipsForProfiles(db.pool, [a, b, c], 'data_change');
    await stampLatest(group.id, '2024-01-01');

    await db.pool.query('UPDATE roster_core.profiles SET age = CASE id WHEN $1 THEN 5 ELSE 40 END WHERE id IN ($1, $2)', [a, c]);
    await updateMembershipsForProfiles(db.pool, [a, c], 'data_change');
    await stampLatest(group.id, '2024-02-01');

    await db.pool.query('UPDATE roster_core.profiles SET age = 50 WHERE id = $1', [a]);
    await updateMembershipsForProfiles(db.pool, [a], 'data_change');
    await stampLatest(group.id, '2024-03-01');

    const asOf = async (at: string) => (await listGroupMembersAsOf(db.pool, 'adults', new Date(at))).map((m) => m.profileId);
    expect(await asOf('2023-12-31')).toEqual([]);
    expect(await asOf('2024-01-15')).toEqual([a, b]);
    expect(await asOf('2024-02-01')).toEqual([b, c]);
    expect(await asOf('2024-03-02')).toEqual([a, b, c]);
    expect((await listGroupMembersAsOf(db.pool, 'adults', new Date('2024-03-02')))[0].enteredAt).toEqual(new Date('2024-03-01'));

    const { rows } = await db.pool.query<{ id: number }>(
      `SELECT profile_id AS id FROM roster.group_members_as_of('adults', '2024-02-15') ORDER BY 1`,
    );
    expect(rows.map((row) => row.id)).toEqual([b, c]);
    const february = await listGroupHistory(db.pool, 'adults', { since: new Date('2024-02-01'), until: new Date('2024-03-01') });
    expect(february.map((h) => `${h.action}:${h.profileId}`).sort()).toEqual([`enter:${c}`, `exit:${a}`]);
  });

  it('records data, rule, manual and time changes with their reasons', async () => {
    const recent = await createGroup(db.pool, { key: 'recent', rule: { '>': [{ var: 'seen' }, { ago: [7, 'days'] }] } }, properties);
    const manual = await createGroup(db.pool, { key: 'vip' }, properties);
    const [id] = await insertProfiles(db.pool, [{ seen: new Date() }]);
    await updateMembershipsForProfiles(db.pool, [id], 'data_change');
    await db.pool.query(`UPDATE roster_core.profiles SET seen = now() - interval '30 days'`);
    await recomputeTimeRelativeGroups(db.pool);
    await db.pool.query(`UPDATE roster_core.groups SET compiled_sql = 'TRUE' WHERE id = $1`, [recent.id]);
    await recomputeGroup(db.pool, recent.id, 'rule_change');
    await addManualMembers(db.pool, manual.id, [id]);
    await removeManualMembers(db.pool, manual.id, [id]);

    const { rows } = await db.pool.query(
      `SELECT group_key AS "group", action, reason FROM roster.group_membership_history WHERE profile_id = $1 ORDER BY at, group_key, action`,
      [id],
    );
    expect(rows).toEqual([
      { group: 'recent', action: 'enter', reason: 'data_change' },
      { group: 'recent', action: 'exit', reason: 'time_passing' },
      { group: 'recent', action: 'enter', reason: 'rule_change' },
      { group: 'vip', action: 'enter', reason: 'manual' },
      { group: 'vip', action: 'exit', reason: 'manual' },
    ]);
  });

  it('lists who entered in the last week with whether they are still members', async () => {
    const group = await createGroup(db.pool, { key: 'adults', rule: { '>=': [{ var: 'age' }, 18] } }, properties);
    const [a, b, old] = await insertProfiles(db.pool, [{ age: 20 }, { age: 30 }, { age: 40 }]);
    await updateMembershipsForProfiles(db.pool, [old], 'data_change');
    await stampLatest(group.id, '2020-01-01');
    await updateMembershipsForProfiles(db.pool, [a, b], 'data_change');
    await db.pool.query('UPDATE roster_core.profiles SET age = 1 WHERE id = $1', [b]);
    await updateMembershipsForProfiles(db.pool, [b], 'data_change');

    const { rows } = await db.pool.query(
      `SELECT profile_id AS "profileId", reason, is_member AS "isMember" FROM roster.group_entries_recent WHERE group_key = 'adults' ORDER BY profile_id`,
    );
    expect(rows).toEqual([
      { profileId: a, reason: 'data_change', isMember: true },
      { profileId: b, reason: 'data_change', isMember: false },
    ]);
  });

  it('refuses unknown reasons and unknown groups', async () => {
    await expect(updateMembershipsForProfiles(db.pool, [1], 'because' as never)).rejects.toBeInstanceOf(InternalError);
    await expect(updateMembershipsForProfiles(db.pool, [1], 'because' as never)).rejects.toMatchObject({ code: 'CDP_GROUP_INVALID_REASON' });
    await expect(
      db.pool.query(`INSERT INTO roster_core.group_membership_changes (group_id, action, reason, profile_ids) VALUES (1, 'enter', 'because', '{1}')`),
    ).rejects.toMatchObject({ code: '23514' });
    await expect(listGroupMembersAsOf(db.pool, 'nope', new Date())).rejects.toBeInstanceOf(NotFoundError);
  });
});
