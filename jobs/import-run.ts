import { withTransaction } from '../lib/db.js';
import { describeError, ConfigError } from '../lib/errors.js';
import { getConnector } from '../connectors/index.js';
import type { CursorState, FetchProfile } from '../connectors/sdk/index.js';
import { loadEventProperties } from '../sql/event-property-queries.js';
import { updateMembershipsForProfiles } from '../sql/group-membership.js';
import { lockIdentities } from '../sql/identity-queries.js';
import { loadPropertyFetches, loadSources, type PropertyFetchRow, type SourceRow } from '../sql/object-queries.js';
import { changedKeysForQueue, queueHydration, writeProfileValues } from '../sql/profile-values.js';
import { loadPropertyDefs } from '../sql/property-queries.js';
import { coerceValue, type PropertyDef } from '../sql/property-types.js';
import { resolveProfiles, type IncomingRecord } from '../sql/resolve-profiles.js';
import { addRunCounts, finishRun, loadRun, markRunRunning } from '../sql/run-queries.js';
import { resolveAppConfig } from '../sql/app-config.js';
import { connectorContext, fetchSourceProperties } from './connector-context.js';
import { withRunLease } from './run-lease.js';
import { requestExportRunsForAll, requestHydration, type JobDeps } from './index.js';

interface ImportPlan {
  source: SourceRow;
  properties: Map<string, PropertyDef>;
  /** Source column -> property key, for the properties this source fills from its rows. */
  columns: Array<{ column: string; key: string }>;
  /**
   * Column properties of this source: hydration would read them from the same rows, so once
   * written here it does not fetch them again. The identity may be another source's property.
   */
  ownColumnKeys: Set<string>;
  /**
   * Aggregate properties of this source, fetched for each batch by its identity values and
   * written with the rows, so hydration need not fetch them and write the profiles again.
   * Empty when the identity is a date (hydration matches dates by their stored text).
   */
  aggregates: PropertyFetchRow[];
  /**
   * Every property any source fetches, when no property comes from events: a profile whose
   * values for all of them were just read here leaves hydration nothing to fetch, so its groups
   * are evaluated in the import's own transaction instead of queueing it. Null when events
   * feed properties (hydration must compute them).
   */
  fetchedKeys: string[] | null;
}

// TODO: the plan is read once per run; a config apply during the run is not seen by later batches.
async function planImport(deps: JobDeps, sourceId: number): Promise<ImportPlan> {
  const [source] = await loadSources(deps.pool, [sourceId]);
  const properties = await loadPropertyDefs(deps.pool);
  const identity = source.options.identity;
  const primary = properties.get(identity.property);
  if (!primary?.isUnique) {
    throw new ConfigError('CDP_SOURCE_IDENTITY_INVALID', `Source ${source.key} identifies profiles by "${identity.property}", which is not a unique property`);
  }
  const columns = [{ column: identity.column, key: identity.property }];
  const ownColumnKeys = new Set<string>();
  const aggregates: PropertyFetchRow[] = [];
  const fetches = await loadPropertyFetches(deps.pool);
  const fetchedKeys = (await loadEventProperties(deps.pool)).length > 0 ? null : [...new Set(fetches.map((fetch) => fetch.key))];
  for (const fetch of fetches) {
    if (fetch.sourceId !== source.id) continue;
    if (fetch.fetchOptions.kind === 'aggregate' && primary.type !== 'date' && !properties.get(fetch.key)?.isUnique) {
      aggregates.push(fetch);
    }
    if (fetch.fetchOptions.kind !== 'column') continue;
    ownColumnKeys.add(fetch.key);
    if (fetch.key !== identity.property) {
      columns.push({ column: String(fetch.fetchOptions.column), key: fetch.key });
    }
  }

  return { source, properties, columns, ownColumnKeys, aggregates, fetchedKeys };
}

function toRecords(plan: ImportPlan, rows: Array<Record<string, unknown>>): IncomingRecord[] {
  const { identity, incremental } = plan.source.options;

  return rows.map((row) => {
    const values: Record<string, unknown> = {};
    for (const { column, key } of plan.columns) {
      if (column in row) values[key] = row[column];
    }
    const ref = incremental ? String(row[incremental.tieBreaker]) : String(row[identity.column]);

    return { ref, values };
  });
}

/**
 * Looks at the first rows a source returns: rows that lack the identity column altogether
 * mean a misnamed column or a wrong file, not bad rows, so the run fails instead of skipping
 * every row. A property column absent from every row is only warned about: it may be sparse.
 */
function checkColumns(plan: ImportPlan, rows: Array<Record<string, unknown>>, log: JobDeps['log']): void {
  const { key, options } = plan.source;
  const present = (column: string) => rows.some((row) => Object.hasOwn(row, column));
  if (!present(options.identity.column)) {
    throw new ConfigError('CDP_SOURCE_COLUMN_MISSING', `Source "${key}" returned rows without its identity column "${options.identity.column}"`, {
      details: { source: key, column: options.identity.column },
    });
  }
  const missing = plan.columns.filter(({ column }) => column !== options.identity.column && !present(column)).map(({ column }) => column);
  if (missing.length > 0) {
    log.warn({ sourceId: plan.source.id, columns: missing, properties: missing.length, rows: rows.length }, 'property columns missing from source rows');
  }
}

interface PreparedBatch {
  rowsRead: number;
  records: IncomingRecord[];
  /** Properties read from the source for every record with an identity: fresh for hydration. */
  freshKeys: Set<string>;
  state: CursorState | null;
}

/**
 * Turns source rows into records and adds the source's aggregates for them. When the
 * aggregates cannot be fetched here, hydration fetches them as it would anyway (and reports
 * what failed), so the import goes on.
 */
async function prepareBatch(deps: JobDeps, plan: ImportPlan, records: IncomingRecord[], state: CursorState | null): Promise<PreparedBatch> {
  const rowsRead = records.length;
  const freshKeys = new Set(plan.ownColumnKeys);
  if (plan.aggregates.length === 0 || records.length === 0) {
    return { rowsRead, records, freshKeys, state };
  }
  const { source } = plan;
  const { identity } = source.options;
  const primary = plan.properties.get(identity.property) as PropertyDef;
  const profiles: FetchProfile[] = [];
  records.forEach((record, index) => {
    const coerced = coerceValue(primary.type, record.values[identity.property]);
    if (coerced.ok && coerced.value !== null) {
      profiles.push({ id: String(index), values: { [identity.property]: coerced.value } });
    }
  });
  try {
    const result = await fetchSourceProperties(deps.log, source, profiles, plan.aggregates);
    for (const [index, values] of result) {
      Object.assign(records[Number(index)].values, values);
    }
    for (const fetch of plan.aggregates) freshKeys.add(fetch.key);
  } catch (err) {
    const { code } = describeError(err);
    deps.log.warn({ err, sourceId: source.id, code }, 'aggregates left to hydration');
  }

  return { rowsRead, records, freshKeys, state };
}

/**
 * Writes one batch of source rows, and the cursor that follows it, in one transaction: a
 * crash either keeps both or neither, and re-reading a batch is harmless. Returns how many
 * profiles had their groups evaluated here rather than by hydration.
 */
async function storeBatch(deps: JobDeps, plan: ImportPlan, runId: number, batch: PreparedBatch): Promise<number> {
  const { records, state } = batch;

  return withTransaction(deps.pool, async (client) => {
    await lockIdentities(client);
    const resolved = await resolveProfiles(client, records, {
      properties: plan.properties,
      primaryKey: plan.source.options.identity.property,
      createsProfiles: plan.source.options.createsProfiles !== false,
    });
    const valueRows = records.flatMap((record, index) => {
      const profileId = resolved.profileIds[index];

      return profileId === null ? [] : [{ profileId, values: record.values, ref: record.ref }];
    });
    const written = await writeProfileValues(client, { properties: plan.properties, sourceId: plan.source.id, runId }, valueRows, resolved.identities);
    const touched = valueRows.map((row) => row.profileId);
    // What was just read from the source need not be fetched again by hydration. Rows with the
    // same keys share one set.
    const freshKeys = new Map<number, Set<string>>();
    const shared = new Map<string, Set<string>>();
    for (const row of valueRows) {
      const keys = [...(freshKeys.get(row.profileId) ?? []), ...Object.keys(row.values).filter((key) => batch.freshKeys.has(key))];
      const signature = [...new Set(keys)].sort().join(',');
      const set = shared.get(signature) ?? new Set(signature === '' ? [] : signature.split(','));
      shared.set(signature, set);
      freshKeys.set(row.profileId, set);
    }
    // Profiles with every fetched property fresh need no hydration: only their groups.
    const { fetchedKeys } = plan;
    const complete = fetchedKeys === null ? [] : [...new Set(touched)].filter((id) => fetchedKeys.every((key) => freshKeys.get(id)?.has(key)));
    const isComplete = new Set(complete);
    const queued = complete.length === 0 ? touched : touched.filter((id) => !isComplete.has(id));
    await queueHydration(client, queued, {
      changedKeys: changedKeysForQueue(queued, written, resolved.createdProfileIds),
      freshKeys,
      newProfileIds: resolved.identities.newProfileIds,
    });
    // TODO: this runs under the identity lock, so event processing waits for it.
    if (complete.length > 0) {
      // A new profile is evaluated against every group (null: unknown keys).
      const created = new Set(resolved.createdProfileIds);
      const changedKeys = new Map(complete.map((id) => [id, created.has(id) ? null : (written.changedKeys.get(id) ?? new Set<string>())]));
      await updateMembershipsForProfiles(client, complete, 'data_change', { changedKeys });
    }
    if (state) {
      await client.query(`UPDATE roster_core.sources SET cursor = $2 WHERE id = $1`, [plan.source.id, JSON.stringify(state)]);
    }
    await addRunCounts(client, runId, {
      rowsRead: batch.rowsRead,
      profilesCreated: resolved.created,
      profilesChanged: written.changedProfileIds.length,
      rowsUnmatched: resolved.unmatched,
      rowsSkipped: resolved.skipped.length,
      invalidValues: written.invalidValues,
      identityConflicts: written.conflicts,
    });
    if (resolved.skipped.length > 0) {
      deps.log.warn({ runId, sourceId: plan.source.id, skipped: resolved.skipped.length, first: resolved.skipped[0].code }, 'rows skipped');
    }

    return complete.length;
  });
}

/**
 * Stores prepared batches one at a time, in order, while the caller reads and prepares the
 * next one: the source's reads and the row conversion of one batch overlap the transaction
 * of the one before. At most one batch is being stored and one prepared.
 */
class BatchPipeline {
  private storing: Promise<unknown> = Promise.resolve();

  constructor(private readonly store: (batch: PreparedBatch) => Promise<unknown>) {}

  /** Waits for the batch before to be stored (throwing its error), then starts this one. */
  async add(prepared: Promise<PreparedBatch>): Promise<void> {
    // A preparation that fails while the batch before is stored is reported below, not lost.
    prepared.catch(() => {});
    await this.storing;
    this.storing = prepared.then(this.store);
    this.storing.catch(() => {});
  }

  /** Waits for the last batch; throws its error. */
  async finish(): Promise<void> {
    await this.storing;
  }

  /** Waits for the last batch, whatever its outcome (before recording a failed run). */
  async settle(): Promise<void> {
    await this.storing.catch(() => {});
  }
}

/**
 * Runs one import: reads new or changed rows of a source (after its saved cursor when the
 * source is incremental), turns them into profile changes batch by batch, and queues the
 * touched profiles for hydration. A failure is recorded on the run; the next run resumes
 * from the last committed batch.
 */
export async function runImport(deps: JobDeps, runId: number): Promise<void> {
  await withRunLease(deps, runId, () => runImportLeased(deps, runId));
}

async function runImportLeased(deps: JobDeps, runId: number): Promise<void> {
  const run = await loadRun(deps.pool, runId);
  if (!run || run.status === 'succeeded' || run.status === 'failed' || run.sourceId === null) {
    return;
  }
  const log = deps.log.child({ runId, sourceId: run.sourceId });
  const startedAt = Date.now();
  await markRunRunning(deps.pool, runId);
  let pipeline: BatchPipeline | undefined;
  // Profiles whose groups the import evaluated itself: exports are asked for here, as
  // hydration would have done.
  let evaluated = 0;
  const requestExports = async () => {
    if (evaluated > 0) await requestExportRunsForAll(deps.pool, deps.queue, 'profiles_changed');
  };
  try {
    const plan = await planImport(deps, run.sourceId);
    const connector = getConnector(plan.source.app.type, 'source');
    const { incremental, identity: _identity, createsProfiles: _creates, ...streamOptions } = plan.source.options;
    const stream = { ...streamOptions, cursor: incremental };
    const batchSize = deps.config.importBatchSize;
    let pending: Array<Record<string, unknown>> = [];
    pipeline = new BatchPipeline(async (batch) => {
      evaluated += await storeBatch(deps, plan, runId, batch);
    });
    // The rows are turned into records before waiting for the batch before, and nothing keeps
    // them afterwards: with one batch stored and one prepared, memory holds two batches.
    const enqueue = (state: CursorState | null) => {
      const records = toRecords(plan, pending);
      pending = [];

      return pipeline!.add(prepareBatch(deps, plan, records, state));
    };
    const messages = connector.source!.read(connectorContext(log, plan.source.app), {
      config: resolveAppConfig(plan.source.app),
      stream,
      state: incremental ? plan.source.cursor : null,
      batchSize,
    });
    let isChecked = false;
    for await (const message of messages) {
      if (message.type === 'records') {
        if (!isChecked && message.records.length > 0) {
          checkColumns(plan, message.records, log);
          isChecked = true;
        }
        pending.push(...message.records);
        if (pending.length >= batchSize) {
          await enqueue(null);
        }
      } else {
        await enqueue(incremental ? (message.state as CursorState) : null);
      }
    }
    if (pending.length > 0) {
      await enqueue(null);
    }
    await pipeline.finish();
    await finishRun(deps.pool, runId, { status: 'succeeded' });
    await requestHydration(deps.queue);
    await requestExports();
    const finished = await loadRun(deps.pool, runId);
    log.info({ counts: finished?.counts, durationMs: Date.now() - startedAt }, 'import run finished');
  } catch (err) {
    // A batch still being stored commits or rolls back before the run is marked failed.
    await pipeline?.settle();
    const { code, message } = describeError(err);
    await finishRun(deps.pool, runId, { status: 'failed', errorCode: code, errorMessage: message });
    log.error({ err, code }, 'import run failed');
    // Profiles already written by earlier batches still deserve hydration and exports.
    await requestHydration(deps.queue);
    await requestExports();
  }
}
