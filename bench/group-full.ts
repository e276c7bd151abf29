// Bar: full recompute of a 3-rule calculated group over N profiles: the first fill, a steady
// state (nothing changed) and a rule change applied through config.
// Reference: count(*) with the same predicate (one sequential scan of the profiles).
import type { Pool } from '../lib/db.js';
import { withTransaction } from '../lib/db.js';
import { recomputeGroup } from '../sql/group-membership.js';
import { scaled, type Benchmark } from './lib/context.js';
import { withBenchDatabase } from './lib/database.js';
import { saveEvidence } from './lib/evidence.js';
import { explainProductQueries } from './lib/explain.js';
import { applyProfileSchema, fillProfiles, groupsYaml, THREE_RULE_GROUP } from './lib/profiles-fixture.js';
import { judge, type BarResult } from './lib/result.js';
import { timeMs } from './lib/timing.js';

async function groupRow(pool: Pool, key: string): Promise<{ id: number; compiledSql: string }> {
  const { rows } = await pool.query<{ id: number; compiledSql: string }>('SELECT id, compiled_sql AS "compiledSql" FROM roster_core.groups WHERE key = $1', [key]);

  return rows[0];
}

export const groupFull: Benchmark = {
  name: 'group-full',
  async run(ctx) {
    const profiles = scaled(1_000_000, ctx.scale, 1000);
    const barS = 1 * Math.min(1, profiles / 1_000_000);

    return withBenchDatabase(ctx.adminUrl, 'group_full', async (db) => {
      // The group exists before the profiles, so its first fill is a recompute we can time.
      await applyProfileSchema(db.pool, groupsYaml([{ key: 'target', rule: THREE_RULE_GROUP }]));
      await fillProfiles(db.pool, profiles);
      const group = await groupRow(db.pool, 'target');

      const scan = async (): Promise<number> => (await timeMs(() => db.pool.query(`SELECT count(*) FROM roster_core.profiles AS p WHERE ${group.compiledSql}`))).ms;
      await scan();
      const scanMs = Math.min(await scan(), await scan());

      const first = await timeMs(() => withTransaction(db.pool, (client) => recomputeGroup(client, group.id, 'rule_change')));
      await db.pool.query('ANALYZE roster_core.group_memberships');
      const steady = await timeMs(() => withTransaction(db.pool, (client) => recomputeGroup(client, group.id, 'rule_change')));
      const changedRule = { ...THREE_RULE_GROUP, and: [{ '>': [{ var: 'ltv' }, 400] }, ...THREE_RULE_GROUP.and.slice(1)] };
      const ruleChange = await timeMs(() => applyProfileSchema(db.pool, groupsYaml([{ key: 'target', rule: changedRule }])));
      const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM roster_core.group_memberships');
      ctx.note(`group-full: first fill entered ${first.value.entered}, steady entered ${steady.value.entered} exited ${steady.value.exited}, after the rule change ${rows[0].n} members`);

      const reference = { label: 'seq-scan count(*)', figure: scanMs, unit: 'ms' };
      const size = profiles.toLocaleString('en-US');
      const results: BarResult[] = [
        judge('group-full', `group full first fill ${size}`, { figure: first.ms, unit: 'ms' }, { op: '<', value: barS * 1000 }, { reference, details: { profiles, ...first.value } }),
        judge('group-full', `group full steady ${size}`, { figure: steady.ms, unit: 'ms' }, { op: '<', value: barS * 1000 }, { reference, details: { profiles, ...steady.value } }),
        judge('group-full', `group full rule change (apply) ${size}`, { figure: ruleChange.ms, unit: 'ms' }, { op: '<', value: barS * 1000 }, { reference, details: { profiles, members: rows[0].n } }),
      ];

      if (results.some((result) => result.met === false) || ctx.evidenceDir) {
        // Plans of the recompute statement: a steady state (no changes), then a rule change.
        const plans = await explainProductQueries(db.pool, /WITH diff AS/, (client) => recomputeGroup(client, group.id, 'rule_change'));
        await db.pool.query(`UPDATE roster_core.groups SET compiled_sql = $2 WHERE id = $1`, [group.id, group.compiledSql]);
        const fillPlans = await explainProductQueries(db.pool, /WITH diff AS/, async (client) => {
          await client.query('DELETE FROM roster_core.group_memberships WHERE group_id = $1', [group.id]);
          await recomputeGroup(client, group.id, 'rule_change');
        });
        const text = `-- steady state after the rule change\n${plans.join('\n\n')}\n\n-- first fill (old rule, memberships emptied)\n${fillPlans.join('\n\n')}\n`;
        await saveEvidence(ctx, 'group-full-explain.txt', text);
        for (const result of results) result.details = { ...result.details, plans: text };
      }

      return results;
    });
  },
};
