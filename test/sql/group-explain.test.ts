// Covers explainGroup: the rule tree with each node's values and pass or fail, including missing values.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NotFoundError } from '../../lib/errors.js';
import { explainGroup } from '../../sql/group-explain.js';
import { updateMembershipsForProfiles } from '../../sql/group-membership.js';
import type { PropertyDef } from '../../sql/property-types.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createGroup, defineProperties, insertProfiles } from './group-fixtures.js';

const RULE = {
  and: [
    { '>=': [{ var: 'age' }, 18] },
    { or: [{ in: [{ var: 'country' }, ['Canada', 'Mexico']] }, { '!': { '<': [{ var: 'score' }, 5] } }] },
  ],
};

describe('explainGroup', () => {
  let db: TestDatabase;
  let properties: Map<string, PropertyDef>;

  beforeEach(async () => {
    db = await createTestDatabase();
    properties = await defineProperties(db.pool, [
      { key: 'age', type: 'integer' },
      { key: 'country', type: 'string' },
      { key: 'score', type: 'float', columnName: 'score_col' },
    ]);
    await createGroup(db.pool, { key: 'adults', rule: RULE }, properties);
    await createGroup(db.pool, { key: 'vip' }, properties);
  });

  afterEach(async () => {
    await db.drop();
  });

  it('shows each node with the values it read and whether it passed', async () => {
    const [id] = await insertProfiles(db.pool, [{ age: 20, country: 'Peru', score_col: 7 }]);
    await updateMembershipsForProfiles(db.pool, [id], 'data_change');
    const explanation = await explainGroup(db.pool, 'adults', id);

    expect(explanation).toMatchObject({ groupKey: 'adults', groupType: 'calculated', profileId: id, isMember: true, passes: true });
    const tree = explanation.tree!;
    expect(tree).toMatchObject({ path: 'and', operator: 'and', passed: true, values: { age: 20, country: 'Peru', score: 7 } });
    expect(tree.children.map((child) => [child.path, child.passed, child.values])).toEqual([
      ['and[0].>=', true, { age: 20 }],
      ['and[1].or', true, { country: 'Peru', score: 7 }],
    ]);
    const or = tree.children[1];
    expect(or.children.map((child) => [child.operator, child.passed, child.values])).toEqual([
      ['in', false, { country: 'Peru' }],
      ['!', true, { score: 7 }],
    ]);
    expect(or.children[1].children[0]).toMatchObject({ path: 'and[1].or[1].![0].<', passed: false });
  });

  it('treats missing values as the group does and flags a membership not yet updated', async () => {
    const [id] = await insertProfiles(db.pool, [{ age: null, country: null, score_col: null }]);
    const explanation = await explainGroup(db.pool, 'adults', id);

    expect(explanation).toMatchObject({ isMember: false, passes: false });
    const [age, or] = explanation.tree!.children;
    expect(age).toMatchObject({ passed: false, values: { age: null } });
    // `!` of a comparison with a missing value is true, so the `or` passes.
    expect(or.children.map((child) => child.passed)).toEqual([false, true]);
    expect(or.passed).toBe(true);

    await db.pool.query('UPDATE roster_core.profiles SET age = 40 WHERE id = $1', [id]);
    expect(await explainGroup(db.pool, 'adults', id)).toMatchObject({ isMember: false, passes: true });
  });

  it('explains a manual group by membership only', async () => {
    const [id] = await insertProfiles(db.pool, [{}]);

    expect(await explainGroup(db.pool, 'vip', id)).toMatchObject({ groupType: 'manual', isMember: false, passes: null, tree: null });
  });

  it('refuses unknown groups and profiles', async () => {
    const [id] = await insertProfiles(db.pool, [{}]);

    await expect(explainGroup(db.pool, 'nope', id)).rejects.toMatchObject({ code: 'CDP_GROUP_NOT_FOUND' });
    await expect(explainGroup(db.pool, 'adults', id + 1000)).rejects.toMatchObject({ code: 'CDP_PROFILE_NOT_FOUND' });
    await expect(explainGroup(db.pool, 'adults', id + 1000)).rejects.toBeInstanceOf(NotFoundError);
  });
});
