// Bar: after 1,000 profiles change, re-evaluating 3 calculated groups for just them.
// Reference: a primary-key lookup of the same 1,000 ids.
import { quoteIdent, withTransaction } from '../lib/db.js';
import { recomputeGroup, updateMembershipsForProfiles } from '../sql/group-membership.js';
import { scaled, type Benchmark } from './lib/context.js';
import { propertyColumns, withBenchDatabase } from './lib/database.js';
import { saveEvidence } from './lib/evidence.js';
import { explainProductQueries } from './lib/explain.js';
import { applyProfileSchema, fillProfiles, groupsYaml, THREE_RULE_GROUP } from './lib/profiles-fixture.js';
import { judge } from './lib/result.js';
import { percentile, timeMs } from './lib/timing.js';

const CHANGED = 1000;
const ROUNDS = 5;

const GROUPS = [
  { key: 'target', rule: THREE_RULE_GROUP },
  { key: 'pro_plan', rule: { '==': [{ var: 'plan' }, 'pro'] } },
  { key: 'young_big_spenders', rule: { and: [{ '<': [{ var: 'age' }, 30] }, { '>=': [{ var: 'ltv' }, 800] }] } },
];

export const groupIncremental: Benchmark = {
  name: 'group-incremental',
  async run(ctx) {
    const profiles = scaled(1_000_000, ctx.scale, 10_000);

    return withBenchDatabase(ctx.adminUrl, 'group_incr', async (db) => {
      await applyProfileSchema(db.pool, groupsYaml(GROUPS));
      await fillProfiles(db.pool, profiles);
      const { rows: groups } = await db.pool.query<{ id: number }>(`SELECT id FROM roster_core.groups ORDER BY id`);
      for (const group of groups) await withTransaction(db.pool, (client) => recomputeGroup(client, group.id, 'rule_change'));
      await db.pool.query('ANALYZE');
      const columns = await propertyColumns(db.pool);

      const updateMs: number[] = [];
      const lookupMs: number[] = [];
      let lastIds: number[] = [];
      let moved = 0;
      for (let round = 0; round < ROUNDS; round += 1) {
        // Ids spread over the whole table, different each round.
        const ids = Array.from({ length: CHANGED }, (_, i) => 1 + ((i * 997 + round * 7919) % profiles));
        await db.pool.query(
          `UPDATE roster_core.profiles
           SET ${quoteIdent(columns.ltv)} = ((${quoteIdent(columns.ltv)}::numeric + 371) % 1000)::float8,
               ${quoteIdent(columns.age)} = 18 + (${quoteIdent(columns.age)} + 7) % 60,
               revision = nextval('roster_core.profile_revision_seq')
           WHERE id = ANY($1::bigint[])`,
          [ids],
        );
        const update = await timeMs(() => withTransaction(db.pool, (client) => updateMembershipsForProfiles(client, ids, 'data_change')));
        updateMs.push(update.ms);
        moved += update.value.entered + update.value.exited;
        const lookup = await timeMs(() => db.pool.query('SELECT id, revision FROM roster_core.profiles WHERE id = ANY($1::bigint[])', [ids]));
        lookupMs.push(lookup.ms);
        lastIds = ids;
      }
      const figure = percentile(updateMs, 50);
      const result = judge('group-incremental', `group incremental ${CHANGED} changes, ${GROUPS.length} groups`, { figure, unit: 'ms' }, { op: '<', value: 50 }, {
        reference: { label: 'pk lookup of 1,000 ids', figure: percentile(lookupMs, 50), unit: 'ms' },
        details: { profiles, rounds: ROUNDS, updateMs, lookupMs, membershipsMoved: moved },
      });
      if (!result.met || ctx.evidenceDir) {
        const plans = await explainProductQueries(db.pool, /WITH matching AS|UPDATE roster_core\.profiles AS p/, (client) => updateMembershipsForProfiles(client, lastIds, 'data_change'));
        const text = plans.join('\n\n');
        await saveEvidence(ctx, 'group-incremental-explain.txt', text);
        result.details = { ...result.details, plans: text };
      }

      return [result];
    });
  },
};
