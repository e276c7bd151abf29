// Covers incremental group evaluation by changed property, changed keys from writes and the hydration queue.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { updateMembershipsForProfiles } from '../../sql/group-membership.js';
import { queueHydration, writeProfileValues } from '../../sql/profile-values.js';
import type { PropertyDef } from '../../sql/property-types.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createGroup, defineProperties, insertProfiles, memberIds, type TestGroup } from './group-fixtures.js';

describe('incremental evaluation by changed property', () => {
  let db: TestDatabase;
  let properties: Map<string, PropertyDef>;
  let adults: TestGroup;
  let canadians: TestGroup;

  async function setKeys(group: TestGroup, keys: string[]): Promise<void> {
    await db.pool.query('UPDATE roster_core.groups SET property_keys = $2 WHERE id = $1', [group.id, keys]);
  }

  beforeEach(async () => {
    db = await createTestDatabase();
    properties = await defineProperties(db.pool, [
      { key: 'age', type: 'integer' },
      { key: 'country', type: 'string' },
      { key: 'nickname', type: 'string', columnName: 'nick_col' },
    ]);
    adults = await createGroup(db.pool, { key: 'adults', rule: { '>=': [{ var: 'age' }, 18] } }, properties);
    canadians = await createGroup(db.pool, { key: 'canadians', rule: { '==': [{ var: 'country' }, 'Canada'] } }, properties);
    await setKeys(adults, ['age']);
    await setKeys(canadians, ['country']);
  });

  afterEach(async () => {
    await db.drop();
  });

  it('reports the changed keys of each profile from the write itself', async () => {
    const [a, b] = await insertProfiles(db.pool, [{ age: 20, country: 'Peru' }, { age: 30 }]);
    const written = await writeProfileValues(db.pool, { properties, sourceId: null, runId: null }, [
      { profileId: a, values: { age: 20, country: 'Canada', nickname: 'Al' } },
      { profileId: b, values: { age: 30 } },
    ]);

    expect(written.changedProfileIds).toEqual([a]);
    expect([...(written.changedKeys.get(a) ?? [])].sort()).toEqual(['country', 'nickname']);
    expect(written.changedKeys.has(b)).toBe(false);
  });

  it('leaves a stale group alone after an unrelated change and fixes it when its property changes', async () => {
    const [id] = await insertProfiles(db.pool, [{ age: 30, country: 'Peru' }]);
    await updateMembershipsForProfiles(db.pool, [id], 'data_change');
    expect(await memberIds(db.pool, adults.id)).toEqual([id]);
    // Make the adults membership deliberately stale: the profile is an adult but not a member.
    await db.pool.query('DELETE FROM roster_core.group_memberships WHERE group_id = $1', [adults.id]);

    const unrelated = await writeProfileValues(db.pool, { properties, sourceId: null, runId: null }, [{ profileId: id, values: { country: 'Canada' } }]);
    await updateMembershipsForProfiles(db.pool, [id], 'data_change', { changedKeys: unrelated.changedKeys });
    expect(await memberIds(db.pool, canadians.id)).toEqual([id]);
    expect(await memberIds(db.pool, adults.id)).toEqual([]);

    const related = await writeProfileValues(db.pool, { properties, sourceId: null, runId: null }, [{ profileId: id, values: { age: 31 } }]);
    await updateMembershipsForProfiles(db.pool, [id], 'data_change', { changedKeys: related.changedKeys });
    expect(await memberIds(db.pool, adults.id)).toEqual([id]);
  });

  it('re-evaluates a group reading another group through in_group after that group moves', async () => {
    const follower = await createGroup(db.pool, { key: 'follows_adults', rule: { in_group: 'adults' } }, properties);
    await setKeys(follower, []);
    const [id] = await insertProfiles(db.pool, [{ age: 10 }]);
    await db.pool.query('UPDATE roster_core.profiles SET age = 40 WHERE id = $1', [id]);
    await updateMembershipsForProfiles(db.pool, [id], 'data_change', { changedKeys: new Map([[id, new Set(['age'])]]) });

    expect(await memberIds(db.pool, adults.id)).toEqual([id]);
    expect(await memberIds(db.pool, follower.id)).toEqual([id]);
  });

  it('evaluates every group for a profile whose changed keys are unknown', async () => {
    const [id] = await insertProfiles(db.pool, [{ age: 30, country: 'Canada' }]);
    await updateMembershipsForProfiles(db.pool, [id], 'data_change', { changedKeys: new Map([[id, null]]) });

    expect(await memberIds(db.pool, adults.id)).toEqual([id]);
    expect(await memberIds(db.pool, canadians.id)).toEqual([id]);
  });

  it('evaluates a group whose property keys are unknown for any changed profile', async () => {
    await db.pool.query('UPDATE roster_core.groups SET property_keys = NULL WHERE id = $1', [adults.id]);
    const [id] = await insertProfiles(db.pool, [{ age: 30 }]);
    await updateMembershipsForProfiles(db.pool, [id], 'data_change', { changedKeys: new Map([[id, new Set(['country'])]]) });

    expect(await memberIds(db.pool, adults.id)).toEqual([id]);
  });

  it('merges changed keys when a profile is queued twice, and unknown wins', async () => {
    const [a, b] = await insertProfiles(db.pool, [{}, {}]);
    await queueHydration(db.pool, [a, b], { changedKeys: new Map([[a, new Set(['age'])], [b, new Set(['age'])]]) });
    await queueHydration(db.pool, [a, b], { changedKeys: new Map([[a, new Set(['country'])]]) });
    const { rows } = await db.pool.query<{ profileId: number; keys: string[] | null }>(
      'SELECT profile_id AS "profileId", changed_keys AS keys FROM roster_core.hydration_queue ORDER BY profile_id',
    );

    expect(rows).toEqual([
      { profileId: a, keys: expect.arrayContaining(['age', 'country']) },
      { profileId: b, keys: null },
    ]);
  });

  it('re-evaluates 1,000 changed profiles against the groups of the changed property', async () => {
    const ids = await insertProfiles(db.pool, Array.from({ length: 1000 }, (_, i) => ({ age: i % 90, country: i % 2 ? 'Canada' : 'Peru' })));
    const changedKeys = new Map(ids.map((id) => [id, new Set(['age'])]));
    // Speed is measured in bench/ (group-incremental), not here.
    await updateMembershipsForProfiles(db.pool, ids, 'data_change', { changedKeys });

    expect((await memberIds(db.pool, adults.id)).length).toBe(ids.filter((_, i) => i % 90 >= 18).length);
    expect(await memberIds(db.pool, canadians.id)).toEqual([]);
  });
});
