import { createHash } from 'node:crypto';
import { mapPgError, quoteIdent, type Pool, type PoolClient } from '../../lib/db.js';
import { ConfigError, ConflictError } from '../../lib/errors.js';
import { dropGroupView, recomputeGroup, syncGroupView } from '../group-membership.js';
import { refreshProfilesView } from '../profiles-view.js';
import { loadPropertyDefs } from '../property-queries.js';
import { pgColumnType, type PropertyDef, type PropertyType } from '../property-types.js';
import { compileRule } from '../rules/compile-rule.js';
import { renderInline } from '../rules/render-inline.js';
import { orderGroupsByDependency, ruleGroupDependencies } from '../rules/rule-dependencies.js';
import { loadStoredConfig, type StoredConfig } from './config-queries.js';
import type { AppConfig, DesiredConfig, DestinationConfig, EventsConfig, GroupConfig, PropertyConfig, SourceConfig, WriteKeyConfig } from './config-types.js';

export interface KindPlan {
  created: string[];
  updated: string[];
  deleted: string[];
  unchanged: string[];
}

/** What an apply changes (or, for a dry run, would change). */
export interface ConfigPlan {
  dryRun: boolean;
  hasChanges: boolean;
  apps: KindPlan;
  sources: KindPlan;
  properties: KindPlan;
  groups: KindPlan;
  destinations: KindPlan;
  /** The `events` settings, under the key `events`. */
  settings: KindPlan;
  /** Write keys from config files; a deleted one is revoked, not removed. */
  writeKeys: KindPlan;
  /** The effect on data: dropped values, refetches, recomputed groups, removed history. */
  impacts: string[];
}

export interface ApplyConfigOptions {
  /** Compute the plan only; write nothing. */
  dryRun?: boolean;
}

interface Diff<TDesired> {
  created: TDesired[];
  updated: TDesired[];
  deleted: string[];
  unchanged: TDesired[];
}

type Row = Record<string, unknown>;

// Every apply takes this lock so two applies never interleave their DDL.
const APPLY_LOCK = 'roster.apply_config';
const MAX_IDENTIFIER_LENGTH = 63;

/** JSON with object keys sorted, so equal values compare equal whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) {
    return `[${value.map(canonical).join(',')}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Row)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonical(item)}`).join(',')}}`;
  }

  return JSON.stringify(value ?? null);
}

function diff<TDesired extends { key: string }>(desired: TDesired[], stored: Array<Row & { key: string }>, rowOf: (item: TDesired) => Row): Diff<TDesired> {
  const storedByKey = new Map(stored.map((row) => [row.key, row]));
  const wanted = new Set(desired.map((item) => item.key));
  const result: Diff<TDesired> = { created: [], updated: [], deleted: [], unchanged: [] };
  for (const item of desired) {
    const current = storedByKey.get(item.key);
    if (!current) {
      result.created.push(item);
      continue;
    }
    const row = rowOf(item);
    const currentRow = Object.fromEntries(Object.keys(row).map((field) => [field, current[field]]));
    (canonical(row) === canonical(currentRow) ? result.unchanged : result.updated).push(item);
  }
  result.deleted = stored.filter((row) => !wanted.has(row.key)).map((row) => row.key);

  return result;
}

function toKindPlan<TDesired extends { key: string }>(changes: Diff<TDesired>): KindPlan {
  const keys = (items: TDesired[]) => items.map((item) => item.key).sort();

  return { created: keys(changes.created), updated: keys(changes.updated), deleted: [...changes.deleted].sort(), unchanged: keys(changes.unchanged) };
}

function appRow(app: AppConfig): Row {
  return { type: app.type, options: app.options, secretEnvs: app.secretEnvs };
}

function sourceOptions(source: SourceConfig): Row {
  return {
    ...source.options,
    ...source.stream,
    identity: source.identity,
    createsProfiles: source.createsProfiles,
    ...(source.incremental ? { incremental: source.incremental } : {}),
  };
}

function sourceRow(source: SourceConfig): Row {
  return {
    appKey: source.app,
    options: sourceOptions(source),
    scheduleIntervalMs: source.schedule?.intervalMs ?? null,
    scheduleCron: source.schedule?.cron ?? null,
  };
}

function propertyRow(property: PropertyConfig): Row {
  return {
    type: property.type,
    isUnique: property.unique,
    isList: property.list,
    sourceKey: property.source,
    fetchOptions: property.fetch ?? {},
    columnName: property.key,
  };
}

function groupRow(group: GroupConfig, defs: Map<string, PropertyDef>): Row {
  if (group.type === 'manual') {
    return { type: 'manual', rule: null, compiledSql: null, isTimeRelative: false };
  }
  const compiled = compileRule(group.key, group.rule, defs);

  return { type: 'calculated', rule: group.rule, compiledSql: renderInline(compiled), isTimeRelative: compiled.isTimeRelative };
}

// Kept out of groupRow, which is also compared with the stored group to find changes.
function groupPropertyKeys(group: GroupConfig, defs: Map<string, PropertyDef>): string[] | null {
  return group.type === 'manual' ? null : [...compileRule(group.key, group.rule, defs).propertyKeys].sort();
}

function destinationGroupKeys(destination: DestinationConfig): string[] {
  return [...destination.groups].sort();
}

/** Changes whenever anything that shapes a destination's payloads changes. */
export function destinationConfigHash(destination: Pick<DestinationConfig, 'options' | 'mapping' | 'groups'> & { events?: string[] }): string {
  const events = [...(destination.events ?? [])].sort();
  // Left out when empty, so destinations without events keep the hash they had before.
  const shape = canonical({
    options: destination.options,
    mapping: destination.mapping,
    groups: [...destination.groups].sort(),
    events: events.length > 0 ? events : undefined,
  });

  return createHash('sha256').update(shape).digest('hex');
}

function destinationRow(destination: DestinationConfig): Row {
  return {
    appKey: destination.app,
    options: destination.options,
    mapping: destination.mapping,
    groupKeys: destinationGroupKeys(destination),
    eventNames: destination.events,
    configHash: destinationConfigHash(destination),
  };
}

function eventsValue(events: EventsConfig): Row {
  const { file: _file, ...value } = events;

  return value;
}

function writeKeyRow(writeKey: WriteKeyConfig): Row {
  return { origin: 'config', keyHash: writeKey.keyHash, keyPrefix: writeKey.keyPrefix, isRevoked: false };
}


interface Changes {
  apps: Diff<AppConfig>;
  sources: Diff<SourceConfig>;
  properties: Diff<PropertyConfig>;
  groups: Diff<GroupConfig>;
  destinations: Diff<DestinationConfig>;
  settings: Diff<{ key: string; value: Row }>;
  writeKeys: Diff<WriteKeyConfig & { key: string }>;
  /** Existing properties whose column must be dropped and added again (type or list changed). */
  retypedProperties: Set<string>;
  /** True when profiles must refetch their values from the sources. */
  needsRefetch: boolean;
}

function planChanges(config: DesiredConfig, stored: StoredConfig): Changes {
  const storedProperties = new Map(stored.properties.map((row) => [row.key, row]));
  // Rules compile against the properties as they will be; existing ones keep their ids.
  const defs = new Map<string, PropertyDef>(
    config.properties.map((property, position) => [
      property.key,
      {
        id: storedProperties.get(property.key)?.id ?? -(position + 1),
        key: property.key,
        type: property.type,
        isUnique: property.unique,
        isList: property.list,
        columnName: property.key,
      },
    ]),
  );
  const properties = diff(config.properties, stored.properties as never, propertyRow);
  const retypedProperties = new Set(
    properties.updated
      .filter((property) => {
        const current = storedProperties.get(property.key)!;

        return current.type !== property.type || current.isList !== property.list;
      })
      .map((property) => property.key),
  );
  const needsRefetch =
    properties.created.some((property) => property.source !== null || property.fetch?.kind === 'event') ||
    properties.updated.some((property) => {
      const current = storedProperties.get(property.key)!;

      return retypedProperties.has(property.key) || current.sourceKey !== property.source || canonical(current.fetchOptions) !== canonical(property.fetch ?? {});
    });

  return {
    apps: diff(config.apps, stored.apps as never, appRow),
    sources: diff(config.sources, stored.sources as never, sourceRow),
    properties,
    groups: diff(config.groups, stored.groups as never, (group) => groupRow(group, defs)),
    destinations: diff(config.destinations, stored.destinations as never, destinationRow),
    settings: diff(
      config.events ? [{ key: 'events', value: eventsValue(config.events) }] : [],
      stored.events ? [{ key: 'events', value: stored.events }] : [],
      (item) => ({ value: item.value }),
    ),
    writeKeys: planWriteKeys(config.writeKeys ?? [], stored),
    retypedProperties,
    needsRefetch,
  };
}

/**
 * Config write keys by name. Keys made with the CLI are never touched; a config key that left
 * the files is revoked once, and a revoked one is not reported again.
 */
function planWriteKeys(desired: WriteKeyConfig[], stored: StoredConfig): Diff<WriteKeyConfig & { key: string }> {
  const own = stored.writeKeys.filter((row) => row.origin === 'config');
  const changes = diff(
    desired.map((writeKey) => ({ ...writeKey, key: writeKey.name })),
    own as never,
    writeKeyRow,
  );
  const revoked = new Set(own.filter((row) => row.isRevoked).map((row) => row.key));
  changes.deleted = changes.deleted.filter((key) => !revoked.has(key));

  return changes;
}

async function describeImpacts(client: PoolClient, changes: Changes, stored: StoredConfig): Promise<string[]> {
  const impacts: string[] = [];
  const storedProperties = new Map(stored.properties.map((row) => [row.key, row]));
  for (const key of changes.properties.deleted) {
    const column = storedProperties.get(key)!.columnName;
    if (stored.profileColumns.has(column)) {
      const { rows } = await client.query<{ count: number }>(`SELECT count(${quoteIdent(column)})::int AS count FROM roster_core.profiles`);
      impacts.push(`Property ${key} is deleted with its column and ${rows[0].count} stored values`);
    }
  }
  for (const key of changes.retypedProperties) {
    impacts.push(`Property ${key} changes type or list flag: its column is recreated and its values refetched`);
  }
  if (changes.needsRefetch) {
    const { rows } = await client.query<{ count: number }>('SELECT count(*)::int AS count FROM roster_core.profiles');
    if (rows[0].count > 0) {
      impacts.push(`${rows[0].count} profiles are queued to refetch their properties`);
    }
  }
  const storedGroups = new Map(stored.groups.map((row) => [row.key, row]));
  for (const key of changes.groups.deleted) {
    const { rows } = await client.query<{ count: number }>('SELECT count(*)::int AS count FROM roster_core.group_memberships WHERE group_id = $1', [storedGroups.get(key)!.id]);
    impacts.push(`Group ${key} is deleted with ${rows[0].count} memberships`);
  }
  for (const group of [...changes.groups.created, ...changes.groups.updated]) {
    if (group.type === 'calculated') {
      impacts.push(`Group ${group.key} is recomputed from its rule`);
    }
  }
  for (const key of changes.sources.deleted) {
    impacts.push(`Source ${key} is deleted with its run history`);
  }
  for (const key of changes.destinations.deleted) {
    impacts.push(`Destination ${key} is deleted with its export state and ledger`);
  }
  for (const key of changes.writeKeys.deleted) {
    impacts.push(`Write key ${key} is revoked: requests using it are refused`);
  }

  return impacts;
}

const json = (value: unknown) => JSON.stringify(value);

async function writeApps(client: PoolClient, changes: Diff<AppConfig>): Promise<void> {
  for (const app of changes.created) {
    await client.query(
      `INSERT INTO roster_core.apps (key, type, options, secret_envs)
       VALUES ($1, $2, $3, $4)`,
      [app.key, app.type, json(app.options), json(app.secretEnvs)],
    );
  }
  for (const app of changes.updated) {
    await client.query(
      `UPDATE roster_core.apps
       SET type = $2, options = $3, secret_envs = $4, updated_at = now()
       WHERE key = $1`,
      [app.key, app.type, json(app.options), json(app.secretEnvs)],
    );
  }
}

async function writeSources(client: PoolClient, changes: Diff<SourceConfig>, stored: StoredConfig): Promise<void> {
  for (const source of changes.created) {
    const row = sourceRow(source);
    await client.query(
      `INSERT INTO roster_core.sources (key, app_id, options, schedule_interval_ms, schedule_cron, next_run_at)
       VALUES ($1, (SELECT id FROM roster_core.apps WHERE key = $2), $3, $4, $5, CASE WHEN $6 THEN now() END)`,
      [source.key, source.app, json(row.options), row.scheduleIntervalMs, row.scheduleCron, source.schedule !== null],
    );
  }
  const storedSources = new Map(stored.sources.map((row) => [row.key, row]));
  for (const source of changes.updated) {
    const row = sourceRow(source);
    const current = storedSources.get(source.key)!;
    const isScheduleChanged = current.scheduleIntervalMs !== row.scheduleIntervalMs || current.scheduleCron !== row.scheduleCron;
    // A cursor only means something for the stream and column it was taken from.
    const streamOf = (options: Row) => canonical({ table: options.table, query: options.query, path: options.path, incremental: options.incremental });
    const isStreamChanged = streamOf(current.options) !== streamOf(row.options as Row);
    await client.query(
      `UPDATE roster_core.sources
       SET app_id = (SELECT id FROM roster_core.apps WHERE key = $2),
         options = $3,
         schedule_interval_ms = $4,
         schedule_cron = $5,
         next_run_at = CASE WHEN NOT $6 THEN next_run_at WHEN $4::bigint IS NULL AND $5::text IS NULL THEN NULL ELSE now() END,
         cursor = CASE WHEN $7 THEN NULL ELSE cursor END,
         updated_at = now()
       WHERE key = $1`,
      [source.key, source.app, json(row.options), row.scheduleIntervalMs, row.scheduleCron, isScheduleChanged, isStreamChanged],
    );
  }
}

async function addPropertyColumn(client: PoolClient, property: PropertyConfig): Promise<void> {
  const column = quoteIdent(property.key);
  // No index per property: group rules are evaluated by one scan or by profile id, and every
  // index would be written on each value change (and keep updates from being HOT).
  await client.query(`ALTER TABLE roster_core.profiles ADD COLUMN ${column} ${pgColumnType(property.type as PropertyType, property.list)}`);
}

async function writeProperties(client: PoolClient, changes: Changes, stored: StoredConfig): Promise<void> {
  const storedProperties = new Map(stored.properties.map((row) => [row.key, row]));
  for (const property of changes.properties.created) {
    await client.query(
      `INSERT INTO roster_core.properties (key, type, is_unique, is_list, source_id, fetch_options, column_name)
       VALUES ($1, $2, $3, $4, (SELECT id FROM roster_core.sources WHERE key = $5), $6, $1)`,
      [property.key, property.type, property.unique, property.list, property.source, json(property.fetch ?? {})],
    );
    if (stored.profileColumns.has(property.key)) {
      await client.query(`ALTER TABLE roster_core.profiles DROP COLUMN ${quoteIdent(property.key)}`);
    }
    await addPropertyColumn(client, property);
  }
  for (const property of changes.properties.updated) {
    const current = storedProperties.get(property.key)!;
    await client.query(
      `UPDATE roster_core.properties
       SET type = $2,
         is_unique = $3,
         is_list = $4,
         source_id = (SELECT id FROM roster_core.sources WHERE key = $5),
         fetch_options = $6,
         updated_at = now()
       WHERE key = $1`,
      [property.key, property.type, property.unique, property.list, property.source, json(property.fetch ?? {})],
    );
    // Identities of a property that is no longer unique would keep matching profiles by it.
    if (current.isUnique && !property.unique) {
      await client.query('DELETE FROM roster_core.identities WHERE property_id = $1', [current.id]);
    }
    if (changes.retypedProperties.has(property.key)) {
      await client.query(`ALTER TABLE roster_core.profiles DROP COLUMN IF EXISTS ${quoteIdent(current.columnName)}`);
      await client.query('DELETE FROM roster_core.invalid_values WHERE property_id = $1', [current.id]);
      await addPropertyColumn(client, property);
    }
  }
  // A column lost outside Roster is added back rather than failing every later query.
  for (const property of changes.properties.unchanged) {
    if (!stored.profileColumns.has(property.key)) {
      await addPropertyColumn(client, property);
    }
  }
}

async function writeGroups(client: PoolClient, changes: Diff<GroupConfig>): Promise<void> {
  const defs = await loadPropertyDefs(client);
  for (const group of changes.created) {
    const row = groupRow(group, defs);
    await client.query(
      `INSERT INTO roster_core.groups (key, type, rule, compiled_sql, is_time_relative, property_keys)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [group.key, row.type, row.rule === null ? null : json(row.rule), row.compiledSql, row.isTimeRelative, groupPropertyKeys(group, defs)],
    );
  }
  for (const group of changes.updated) {
    const row = groupRow(group, defs);
    await client.query(
      `UPDATE roster_core.groups
       SET type = $2, rule = $3, compiled_sql = $4, is_time_relative = $5, property_keys = $6, updated_at = now()
       WHERE key = $1`,
      [group.key, row.type, row.rule === null ? null : json(row.rule), row.compiledSql, row.isTimeRelative, groupPropertyKeys(group, defs)],
    );
  }
}

async function writeDestinations(client: PoolClient, changes: Diff<DestinationConfig>): Promise<void> {
  for (const destination of changes.created) {
    await client.query(
      `INSERT INTO roster_core.destinations (key, app_id, options, mapping, config_hash, event_names)
       VALUES ($1, (SELECT id FROM roster_core.apps WHERE key = $2), $3, $4, $5, $6)`,
      [destination.key, destination.app, json(destination.options), json(destination.mapping), destinationConfigHash(destination), destination.events],
    );
  }
  for (const destination of changes.updated) {
    await client.query(
      `UPDATE roster_core.destinations
       SET app_id = (SELECT id FROM roster_core.apps WHERE key = $2), options = $3, mapping = $4, config_hash = $5, event_names = $6, updated_at = now()
       WHERE key = $1`,
      [destination.key, destination.app, json(destination.options), json(destination.mapping), destinationConfigHash(destination), destination.events],
    );
  }
  for (const destination of [...changes.created, ...changes.updated]) {
    const groupKeys = destinationGroupKeys(destination);
    await client.query(
      `DELETE FROM roster_core.destination_groups AS dg
       USING roster_core.destinations AS d, roster_core.groups AS g
       WHERE d.id = dg.destination_id
         AND g.id = dg.group_id
         AND d.key = $1
         AND NOT (g.key = ANY ($2::text[]))`,
      [destination.key, groupKeys],
    );
    await client.query(
      `INSERT INTO roster_core.destination_groups (destination_id, group_id)
       SELECT d.id, g.id
       FROM roster_core.destinations AS d
       JOIN roster_core.groups AS g ON g.key = ANY ($2::text[])
       WHERE d.key = $1
       ON CONFLICT DO NOTHING`,
      [destination.key, groupKeys],
    );
  }
}

async function writeEventsSettings(client: PoolClient, changes: Diff<{ key: string; value: Row }>): Promise<void> {
  for (const item of [...changes.created, ...changes.updated]) {
    await client.query(
      `INSERT INTO roster_core.settings (key, value)
       VALUES ($1, $2)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
      [item.key, json(item.value)],
    );
  }
  if (changes.deleted.length > 0) {
    await client.query('DELETE FROM roster_core.settings WHERE key = ANY ($1::text[])', [changes.deleted]);
  }
}

async function writeWriteKeys(client: PoolClient, changes: Diff<WriteKeyConfig & { key: string }>, stored: StoredConfig): Promise<void> {
  const cliNames = new Set(stored.writeKeys.filter((row) => row.origin === 'cli').map((row) => row.key));
  for (const writeKey of [...changes.created, ...changes.updated]) {
    if (writeKey.keyHash === null || writeKey.keyPrefix === null) {
      throw new ConfigError('CDP_SECRET_ENV_MISSING', `Environment variable ${writeKey.env} for write key ${writeKey.name} is not set`, { details: { env: writeKey.env } });
    }
    if (cliNames.has(writeKey.name)) {
      throw new ConflictError('CDP_WRITE_KEY_EXISTS', `Write key "${writeKey.name}" already exists and was made with the CLI`);
    }
    await client.query(
      `INSERT INTO roster_core.write_keys (name, key_hash, key_prefix, origin)
       VALUES ($1, $2, $3, 'config')
       ON CONFLICT (name) DO UPDATE
         SET key_hash = EXCLUDED.key_hash, key_prefix = EXCLUDED.key_prefix, revoked_at = NULL`,
      [writeKey.name, writeKey.keyHash, writeKey.keyPrefix],
    );
  }
  if (changes.deleted.length > 0) {
    await client.query(
      `UPDATE roster_core.write_keys
       SET revoked_at = now()
       WHERE origin = 'config'
         AND revoked_at IS NULL
         AND name = ANY ($1::text[])`,
      [changes.deleted],
    );
  }
}

/** Deletes in dependency order: what refers to something goes before it. */
async function deleteRemoved(client: PoolClient, changes: Changes, stored: StoredConfig): Promise<void> {
  if (changes.destinations.deleted.length > 0) {
    await client.query('DELETE FROM roster_core.destinations WHERE key = ANY ($1::text[])', [changes.destinations.deleted]);
  }
  for (const key of changes.groups.deleted) {
    await dropGroupView(client, key);
  }
  if (changes.groups.deleted.length > 0) {
    await client.query('DELETE FROM roster_core.groups WHERE key = ANY ($1::text[])', [changes.groups.deleted]);
  }
  const storedProperties = new Map(stored.properties.map((row) => [row.key, row]));
  for (const key of changes.properties.deleted) {
    await client.query('DELETE FROM roster_core.properties WHERE key = $1', [key]);
    await client.query(`ALTER TABLE roster_core.profiles DROP COLUMN IF EXISTS ${quoteIdent(storedProperties.get(key)!.columnName)}`);
  }
  if (changes.sources.deleted.length > 0) {
    await client.query('DELETE FROM roster_core.sources WHERE key = ANY ($1::text[])', [changes.sources.deleted]);
  }
  if (changes.apps.deleted.length > 0) {
    await client.query('DELETE FROM roster_core.apps WHERE key = ANY ($1::text[])', [changes.apps.deleted]);
  }
}

async function executeChanges(client: PoolClient, config: DesiredConfig, changes: Changes, stored: StoredConfig): Promise<void> {
  const arePropertiesChanged = changes.properties.created.length + changes.properties.updated.length + changes.properties.deleted.length > 0;
  const dropsColumns = changes.retypedProperties.size > 0 || changes.properties.deleted.length > 0;
  // Views that read a profile column must go before the column can be dropped.
  if (arePropertiesChanged) {
    await client.query('DROP VIEW IF EXISTS roster.profiles');
  }
  if (dropsColumns) {
    for (const group of stored.groups) {
      await dropGroupView(client, group.key);
    }
  }

  await writeApps(client, changes.apps);
  await writeSources(client, changes.sources, stored);
  await writeProperties(client, changes, stored);
  await writeGroups(client, changes.groups);
  await writeDestinations(client, changes.destinations);
  await writeEventsSettings(client, changes.settings);
  await writeWriteKeys(client, changes.writeKeys, stored);
  await deleteRemoved(client, changes, stored);

  const { rows: viewRows } = await client.query<{ exists: boolean }>(`SELECT to_regclass('roster.profiles') IS NOT NULL AS exists`);
  if (arePropertiesChanged || !viewRows[0].exists) {
    await refreshProfilesView(client);
  }
  if (changes.needsRefetch) {
    // A refetch after a config change fetches everything, also what an import wrote just now.
    await client.query(
      `INSERT INTO roster_core.hydration_queue (profile_id)
       SELECT id
       FROM roster_core.profiles
       ON CONFLICT (profile_id) DO UPDATE SET fresh_keys = NULL`,
    );
  }

  const changedGroups = new Set([...changes.groups.created, ...changes.groups.updated].map((group) => group.key));
  const { rows: groups } = await client.query<{ id: number; key: string; type: 'manual' | 'calculated'; compiledSql: string | null }>(
    `SELECT
       id,
       key,
       type,
       compiled_sql AS "compiledSql"
     FROM roster_core.groups
     WHERE key = ANY ($1::text[])
     ORDER BY key`,
    [config.groups.map((group) => group.key)],
  );
  // Groups that read other groups (in_group) are recomputed after them, and again whenever a
  // group they read was recomputed.
  const dependencies = new Map(config.groups.map((group) => [group.key, ruleGroupDependencies(group.rule)]));
  const position = new Map(orderGroupsByDependency(dependencies).map((key, i) => [key, i]));
  groups.sort((a, b) => (position.get(a.key) ?? 0) - (position.get(b.key) ?? 0));
  const recomputed = new Set<string>();
  for (const group of groups) {
    if (dropsColumns || changedGroups.has(group.key)) {
      await syncGroupView(client, group);
    }
    const readsRecomputed = (dependencies.get(group.key) ?? []).some((dependency) => recomputed.has(dependency.group));
    if (group.type === 'calculated' && (changedGroups.has(group.key) || readsRecomputed)) {
      await recomputeGroup(client, group.id, 'rule_change');
      recomputed.add(group.key);
    }
  }
}

/**
 * Makes the database match a validated config folder, in one transaction: creates, updates
 * and deletes apps, sources, properties (with their profile columns), groups (with their
 * views and memberships) and destinations. Applying the same config again changes nothing.
 * With `dryRun`, only the plan is computed.
 */
export async function applyConfig(pool: Pool, config: DesiredConfig, options: ApplyConfigOptions = {}): Promise<ConfigPlan> {
  const dryRun = options.dryRun ?? false;
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [APPLY_LOCK]);
    const stored = await loadStoredConfig(client);
    const changes = planChanges(config, stored);
    const plan: ConfigPlan = {
      dryRun,
      hasChanges: false,
      apps: toKindPlan(changes.apps),
      sources: toKindPlan(changes.sources),
      properties: toKindPlan(changes.properties),
      groups: toKindPlan(changes.groups),
      destinations: toKindPlan(changes.destinations),
      settings: toKindPlan(changes.settings),
      writeKeys: toKindPlan(changes.writeKeys),
      impacts: await describeImpacts(client, changes, stored),
    };
    plan.hasChanges = [plan.apps, plan.sources, plan.properties, plan.groups, plan.destinations, plan.settings, plan.writeKeys].some(
      (kind) => kind.created.length + kind.updated.length + kind.deleted.length > 0,
    );
    if (dryRun || !plan.hasChanges) {
      await client.query('ROLLBACK');
      return plan;
    }
    await executeChanges(client, config, changes, stored);
    await client.query('COMMIT');

    return plan;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw mapPgError(err);
  } finally {
    client.release();
  }
}
