import { createHash } from 'node:crypto';
import { withTransaction } from '../lib/db.js';
import { describeError, isAppError, TransientError } from '../lib/errors.js';
import { getConnector } from '../connectors/index.js';
import type { ExportField, ExportRecord } from '../connectors/sdk/index.js';
import {
  diffBase,
  failInterruptedEntries,
  findExportCandidates,
  loadExportMark,
  markExportDue,
  nextExportMark,
  observeChangePoint,
  saveExportMark,
  settleExportDue,
  insertLedgerEntries,
  loadMappedValues,
  loadRefusedHashes,
  markLedgerFailed,
  markLedgerSent,
  saveExportState,
  type ExportCandidate,
  type LedgerEntry,
} from '../sql/export-queries.js';
import { loadDestinations, type DestinationRow } from '../sql/object-queries.js';
import { loadPropertyDefs } from '../sql/property-queries.js';
import { addRunCounts, finishRun, loadRun, markRunRunning } from '../sql/run-queries.js';
import { resolveAppConfig } from '../sql/app-config.js';
import { connectorContext } from './connector-context.js';
import { withRunLease } from './run-lease.js';
import type { JobDeps } from './index.js';

/** A stable hash of a payload: keys sorted, so equal payloads always hash equal. */
export function hashPayload(payload: { properties: Record<string, unknown>; groups: string[] }): string {
  const properties = Object.fromEntries(Object.entries(payload.properties).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

  return createHash('sha256').update(JSON.stringify({ properties, groups: [...payload.groups].sort() })).digest('hex');
}

interface PreparedRecord extends LedgerEntry {
  record: ExportRecord;
}

function prepare(destination: DestinationRow, candidates: ExportCandidate[], values: Map<number, Record<string, unknown>>, columnOf: Map<string, string>): PreparedRecord[] {
  return candidates.map((candidate) => {
    const row = values.get(candidate.profileId) ?? {};
    const properties: Record<string, unknown> = {};
    for (const [field, key] of Object.entries(destination.mapping)) {
      properties[field] = row[columnOf.get(key) ?? key] ?? null;
    }
    const isRemoval = candidate.groupKeys.length === 0;
    const action = isRemoval ? 'remove' : candidate.isExported ? 'update' : 'create';
    const payload = { properties, groups: candidate.groupKeys };

    return {
      profileId: candidate.profileId,
      action,
      payload,
      payloadHash: isRemoval ? 'removed' : hashPayload(payload),
      revision: candidate.revision,
      record: { recordId: String(candidate.profileId), action, properties, groups: candidate.groupKeys },
    };
  });
}

/**
 * Sends one chunk; returns the profiles the destination did not accept (rejected, or not
 * answered for), which stay due for the next run.
 */
async function sendChunk(deps: JobDeps, destination: DestinationRow, runId: number, fields: ExportField[], chunk: PreparedRecord[]): Promise<number[]> {
  const ledgerIds = await insertLedgerEntries(deps.pool, runId, destination.id, chunk);
  const connector = getConnector(destination.app.type, 'destination');
  let accepted: string[] = [];
  let rejected: Array<{ recordId: string; code: string; message: string; retryable: boolean }> = [];
  let batchError: unknown;
  try {
    const result = await connector.destination!.write(connectorContext(deps.log, destination.app), {
      config: resolveAppConfig(destination.app),
      options: destination.options,
      fields,
      records: chunk.map((entry) => entry.record),
    });
    accepted = result.accepted;
    rejected = result.rejected;
  } catch (err) {
    batchError = err;
    const { code, message } = describeError(err);
    rejected = chunk.map((entry) => ({ recordId: entry.record.recordId, code, message, retryable: true }));
  }

  const isAccepted = new Set(accepted);
  const dueIds = chunk.filter((entry) => !isAccepted.has(entry.record.recordId)).map((entry) => entry.profileId);
  const byId = new Map(chunk.map((entry) => [entry.record.recordId, entry]));
  const acceptedEntries = accepted.map((id) => byId.get(id)).filter((entry): entry is PreparedRecord => entry !== undefined);
  await withTransaction(deps.pool, async (client) => {
    await markLedgerSent(client, acceptedEntries.map((entry) => ledgerIds.get(entry.profileId) as number));
    await markLedgerFailed(
      client,
      rejected.map((reject) => ({
        recordId: ledgerIds.get(Number(reject.recordId)) as number,
        code: reject.code,
        message: reject.message,
        isRetryable: reject.retryable,
      })),
    );
    await markExportDue(client, destination.id, dueIds);
    await saveExportState(
      client,
      destination.id,
      destination.configHash,
      acceptedEntries.map((entry) => ({ profileId: entry.profileId, revision: entry.revision, payloadHash: entry.payloadHash, isRemoved: entry.action === 'remove' })),
    );
    const counts: Record<string, number> = { failed: rejected.length };
    for (const entry of acceptedEntries) counts[`${entry.action}d`] = (counts[`${entry.action}d`] ?? 0) + 1;
    await addRunCounts(client, runId, counts);
  });
  if (batchError) {
    throw batchError;
  }

  return dueIds;
}

/**
 * Runs one export: diffs the destination's groups and mapped properties against what it last
 * received successfully, records every record in the ledger before sending, and sends joins,
 * changes and removals in batches. A destination that fails a whole batch stops the run;
 * its pending changes stay due for the next run.
 */
export async function runExport(deps: JobDeps, runId: number): Promise<void> {
  await withRunLease(deps, runId, () => runExportLeased(deps, runId));
}

async function runExportLeased(deps: JobDeps, runId: number): Promise<void> {
  const run = await loadRun(deps.pool, runId);
  if (!run || run.status === 'succeeded' || run.status === 'failed' || run.destinationId === null) {
    return;
  }
  const log = deps.log.child({ runId, destinationId: run.destinationId });
  const startedAt = Date.now();
  await markRunRunning(deps.pool, runId);
  try {
    const [destination] = await loadDestinations(deps.pool, [run.destinationId]);
    await failInterruptedEntries(deps.pool, destination.id);
    const properties = await loadPropertyDefs(deps.pool);
    const columnOf = new Map([...properties.values()].map((p) => [p.key, p.columnName]));
    const fields: ExportField[] = Object.entries(destination.mapping).map(([name, key]) => {
      const property = properties.get(key);

      return { name, type: property?.type ?? 'string', isList: property?.isList ?? false };
    });
    // The change point is read before any data, so everything the diff reads is at least as new.
    const observed = await observeChangePoint(deps.pool);
    const mark = await loadExportMark(deps.pool, destination.id);
    const base = diffBase(mark, destination.configHash);
    const candidates = await findExportCandidates(deps.pool, destination.id, base);
    let unchanged = 0;
    let refused = 0;
    const dueIds: number[] = [];
    for (let i = 0; i < candidates.length; i += deps.config.exportBatchSize) {
      const slice = candidates.slice(i, i + deps.config.exportBatchSize);
      const ids = slice.map((c) => c.profileId);
      const values = await loadMappedValues(deps.pool, ids, [...new Set(Object.values(destination.mapping).map((key) => columnOf.get(key) ?? key))]);
      const refusedHashes = await loadRefusedHashes(deps.pool, destination.id, ids);
      const prepared = prepare(destination, slice, values, columnOf);
      // A payload equal to what the destination holds only moves the baseline forward; a
      // payload it refused as invalid is not sent again until it changes.
      const lastHash = new Map(slice.map((c) => [c.profileId, c.lastHash]));
      const same = prepared.filter((entry) => entry.action === 'update' && entry.payloadHash === lastHash.get(entry.profileId));
      const refusedAgain = prepared.filter((entry) => refusedHashes.get(entry.profileId) === entry.payloadHash);
      const skip = new Set([...same, ...refusedAgain]);
      await saveExportState(deps.pool, destination.id, destination.configHash, same.map((e) => ({ profileId: e.profileId, revision: e.revision, payloadHash: e.payloadHash, isRemoved: false })));
      unchanged += same.length;
      refused += refusedAgain.length;
      const toSend = prepared.filter((entry) => !skip.has(entry));
      if (toSend.length > 0) {
        dueIds.push(...(await sendChunk(deps, destination, runId, fields, toSend)));
      }
    }
    await addRunCounts(deps.pool, runId, { candidates: candidates.length, unchanged, skippedRefused: refused });
    // Only a run that went through every candidate moves the mark; a failed one leaves the
    // same changes due for the next run.
    await saveExportMark(deps.pool, destination.id, nextExportMark(mark, base, observed, destination.configHash));
    await settleExportDue(deps.pool, destination.id, dueIds);
    await finishRun(deps.pool, runId, { status: 'succeeded' });
    const finished = await loadRun(deps.pool, runId);
    log.info({ counts: finished?.counts, durationMs: Date.now() - startedAt }, 'export run finished');
  } catch (err) {
    const { code, message } = describeError(err);
    await finishRun(deps.pool, runId, { status: 'failed', errorCode: code, errorMessage: message });
    if (err instanceof TransientError || !isAppError(err)) {
      log.warn({ err, code }, 'export run failed; changes stay due for the next run');
    } else {
      log.error({ err, code }, 'export run failed');
    }
  }
}
