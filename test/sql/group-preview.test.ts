// Covers previewGroupRule: counts and samples match what applying the rule does, and destination impacts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, NotFoundError } from '../../lib/errors.js';
import { diffBase, findExportCandidates, loadExportMark, observeChangePoint, saveExportMark } from '../../sql/export-queries.js';
import { updateMembershipsForProfiles } from '../../sql/group-membership.js';
import { previewGroupRule } from '../../sql/group-preview.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { applyHighValueRule, seedProfiles } from './group-preview-fixture.js';

const OLD_RULE = { '>': [{ var: 'ltv' }, 100] };
const NEW_RULE = { and: [{ '>': [{ var: 'ltv' }, 50] }, { '!=': [{ var: 'country' }, 'Peru'] }] };

describe('previewGroupRule', () => {
  let db: TestDatabase;
  let ids: number[];

  async function members(groupKey: string): Promise<number[]> {
    const { rows } = await db.pool.query<{ id: number }>('SELECT profile_id AS id FROM roster.group_members WHERE group_key = $1 ORDER BY 1', [groupKey]);

    return rows.map((row) => row.id);
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    await applyHighValueRule(db.pool, { '==': [{ var: 'ltv' }, -1] });
    ids = await seedProfiles(db.pool, [
      { email: 'a@x.co', ltv: 200, country: 'Peru' }, // leaves high_value; not Canadian: removed from both
      { email: 'b@x.co', ltv: 200, country: 'Canada' }, // stays
      { email: 'c@x.co', ltv: 70, country: 'Canada' }, // enters; already held by crm as a Canadian
      { email: 'd@x.co', ltv: 70 }, // enters; new to both destinations
      { email: 'e@x.co', ltv: 20, country: 'Canada' }, // never in high_value
      { email: 'f@x.co', ltv: 150, country: 'Peru' }, // leaves high_value
      { email: 'g@x.co' }, // no values
    ]);
    await updateMembershipsForProfiles(db.pool, ids, 'data_change');
    // Apply the old rule, then mark every destination as fully in step with the memberships.
    await applyHighValueRule(db.pool, OLD_RULE);
    await db.pool.query(
      `INSERT INTO roster_core.export_state (destination_id, profile_id, revision, payload_hash, config_hash, is_removed)
       SELECT DISTINCT d.id, m.profile_id, p.revision, 'h', d.config_hash, false
       FROM roster_core.destinations AS d
       JOIN roster_core.destination_groups AS dg ON dg.destination_id = d.id
       JOIN roster_core.group_memberships AS m ON m.group_id = dg.group_id
       JOIN roster_core.profiles AS p ON p.id = m.profile_id`,
    );
    // ... as a successful export run leaves it: with its diff's mark at this point.
    const point = await observeChangePoint(db.pool);
    const { rows } = await db.pool.query<{ id: number; configHash: string }>('SELECT id, config_hash AS "configHash" FROM roster_core.destinations');
    for (const destination of rows) {
      await saveExportMark(db.pool, destination.id, { configHash: destination.configHash, revision: point.revision, historyId: point.historyId, pending: null });
    }
  });

  afterAll(async () => {
    await db.drop();
  });

  it('counts and samples the profiles that would enter and leave', async () => {
    const preview = await previewGroupRule(db.pool, 'high_value', NEW_RULE, { sampleSize: 1 });
    const [a, , c, d, , f] = ids;

    expect(preview).toMatchObject({ members: 3, entering: 2, leaving: 2, membersAfter: 3 });
    expect(preview.enteringSample).toEqual([{ profileId: c, values: { ltv: 70, country: 'Canada' } }]);
    expect(preview.leavingSample.map((sample) => sample.profileId)).toEqual([a]);
    expect((await previewGroupRule(db.pool, 'high_value', NEW_RULE, { sampleSize: 10 })).enteringSample.map((s) => s.profileId)).toEqual([c, d]);
    expect(await members('high_value')).toEqual([a, ids[1], f]);
  });

  it('derives destination impacts from the other followed groups', async () => {
    const preview = await previewGroupRule(db.pool, 'high_value', NEW_RULE);

    // crm: c is held (Canadian) so an update, d a create, a and f leave every followed group.
    // ads: c and d are creates, a and f removes.
    expect(preview.destinations).toEqual([
      { destinationKey: 'ads', creates: 2, updates: 0, removes: 2 },
      { destinationKey: 'crm', creates: 1, updates: 1, removes: 2 },
    ]);
  });

  it('refuses invalid rules with the compiler codes and unknown or manual groups', async () => {
    await expect(previewGroupRule(db.pool, 'high_value', { '>': [{ var: 'nope' }, 1] })).rejects.toMatchObject({ code: 'CDP_RULE_UNKNOWN_PROPERTY' });
    await expect(previewGroupRule(db.pool, 'high_value', { '>': [{ var: 'ltv' }, 'x'] })).rejects.toBeInstanceOf(ConfigError);
    await expect(previewGroupRule(db.pool, 'high_value', { in_group: 'nope' })).rejects.toMatchObject({ code: 'CDP_RULE_UNKNOWN_GROUP' });
    await expect(previewGroupRule(db.pool, 'missing', NEW_RULE)).rejects.toMatchObject({ code: 'CDP_GROUP_NOT_FOUND' });
    await expect(previewGroupRule(db.pool, 'missing', NEW_RULE)).rejects.toBeInstanceOf(NotFoundError);
    await expect(previewGroupRule(db.pool, 'vip', NEW_RULE)).rejects.toMatchObject({ code: 'CDP_GROUP_NOT_CALCULATED' });
  });

  it('predicts exactly what applying the rule then does, for members and exports', async () => {
    const preview = await previewGroupRule(db.pool, 'high_value', NEW_RULE, { sampleSize: 100 });
    await applyHighValueRule(db.pool, NEW_RULE);

    const { rows } = await db.pool.query<{ action: string; ids: number[] }>(
      `SELECT action, array_agg(profile_id ORDER BY profile_id) AS ids
       FROM roster.group_membership_history
       WHERE group_key = 'high_value' AND reason = 'rule_change' AND at = (SELECT max(at) FROM roster.group_membership_history)
       GROUP BY action`,
    );
    const moved = Object.fromEntries(rows.map((row) => [row.action, row.ids.map(Number)]));
    expect(moved.enter).toEqual(preview.enteringSample.map((s) => s.profileId));
    expect(moved.exit).toEqual(preview.leavingSample.map((s) => s.profileId));
    expect((await members('high_value')).length).toBe(preview.membersAfter);

    const { rows: destinations } = await db.pool.query<{ id: number; key: string; configHash: string }>(
      'SELECT id, key, config_hash AS "configHash" FROM roster_core.destinations ORDER BY key',
    );
    for (const destination of destinations) {
      const candidates = await findExportCandidates(db.pool, destination.id, diffBase(await loadExportMark(db.pool, destination.id), destination.configHash));
      const counts = { creates: 0, updates: 0, removes: 0 };
      for (const candidate of candidates) {
        if (candidate.groupKeys.length === 0) counts.removes += 1;
        else if (candidate.isExported) counts.updates += 1;
        else counts.creates += 1;
      }
      expect({ destinationKey: destination.key, ...counts }).toEqual(preview.destinations.find((impact) => impact.destinationKey === destination.key));
    }
  });
});
