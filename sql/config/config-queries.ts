import type { Queryable } from '../../lib/db.js';

export interface StoredApp {
  id: number;
  key: string;
  type: string;
  options: Record<string, unknown>;
  secretEnvs: Record<string, string>;
}

export interface StoredSource {
  id: number;
  key: string;
  appKey: string;
  options: Record<string, unknown>;
  scheduleIntervalMs: number | null;
  scheduleCron: string | null;
}

export interface StoredProperty {
  id: number;
  key: string;
  type: string;
  isUnique: boolean;
  isList: boolean;
  sourceKey: string | null;
  fetchOptions: Record<string, unknown>;
  columnName: string;
}

export interface StoredGroup {
  id: number;
  key: string;
  type: 'manual' | 'calculated';
  rule: unknown;
  compiledSql: string | null;
  isTimeRelative: boolean;
}

export interface StoredDestination {
  id: number;
  key: string;
  appKey: string;
  options: Record<string, unknown>;
  mapping: Record<string, string>;
  configHash: string;
  groupKeys: string[];
  eventNames: string[];
}

export interface StoredWriteKey {
  key: string;
  origin: 'cli' | 'config';
  keyHash: string;
  keyPrefix: string;
  isRevoked: boolean;
}

export interface StoredConfig {
  apps: StoredApp[];
  sources: StoredSource[];
  properties: StoredProperty[];
  groups: StoredGroup[];
  destinations: StoredDestination[];
  /** The `events` setting without its file, or null. */
  events: Record<string, unknown> | null;
  /** Every write key, by name as `key`; apply only manages those of origin 'config'. */
  writeKeys: StoredWriteKey[];
  /** Columns that exist on roster_core.profiles. */
  profileColumns: Set<string>;
}

/** Everything config as code manages, as it is stored now. */
export async function loadStoredConfig(db: Queryable): Promise<StoredConfig> {
  const apps = await db.query<StoredApp>(
    `SELECT
       id,
       key,
       type,
       options,
       secret_envs AS "secretEnvs"
     FROM roster_core.apps
     ORDER BY key`,
  );
  const sources = await db.query<StoredSource>(
    `SELECT
       s.id,
       s.key,
       a.key AS "appKey",
       s.options,
       s.schedule_interval_ms AS "scheduleIntervalMs",
       s.schedule_cron AS "scheduleCron"
     FROM roster_core.sources AS s
     JOIN roster_core.apps AS a ON a.id = s.app_id
     ORDER BY s.key`,
  );
  const properties = await db.query<StoredProperty>(
    `SELECT
       p.id,
       p.key,
       p.type,
       p.is_unique AS "isUnique",
       p.is_list AS "isList",
       s.key AS "sourceKey",
       p.fetch_options AS "fetchOptions",
       p.column_name AS "columnName"
     FROM roster_core.properties AS p
     LEFT JOIN roster_core.sources AS s ON s.id = p.source_id
     ORDER BY p.key`,
  );
  const groups = await db.query<StoredGroup>(
    `SELECT
       id,
       key,
       type,
       rule,
       compiled_sql AS "compiledSql",
       is_time_relative AS "isTimeRelative"
     FROM roster_core.groups
     ORDER BY key`,
  );
  const destinations = await db.query<StoredDestination>(
    `SELECT
       d.id,
       d.key,
       a.key AS "appKey",
       d.options,
       d.mapping,
       d.config_hash AS "configHash",
       ARRAY(
         SELECT g.key
         FROM roster_core.destination_groups AS dg
         JOIN roster_core.groups AS g ON g.id = dg.group_id
         WHERE dg.destination_id = d.id
         ORDER BY g.key
       ) AS "groupKeys",
       d.event_names AS "eventNames"
     FROM roster_core.destinations AS d
     JOIN roster_core.apps AS a ON a.id = d.app_id
     ORDER BY d.key`,
  );
  const settings = await db.query<{ value: Record<string, unknown> }>(`SELECT value FROM roster_core.settings WHERE key = 'events'`);
  const writeKeys = await db.query<StoredWriteKey>(
    `SELECT
       name AS key,
       origin,
       key_hash AS "keyHash",
       key_prefix AS "keyPrefix",
       revoked_at IS NOT NULL AS "isRevoked"
     FROM roster_core.write_keys
     ORDER BY name`,
  );
  const columns = await db.query<{ name: string }>(
    `SELECT column_name AS name
     FROM information_schema.columns
     WHERE table_schema = 'roster_core'
       AND table_name = 'profiles'`,
  );

  return {
    apps: apps.rows,
    sources: sources.rows,
    properties: properties.rows,
    groups: groups.rows,
    destinations: destinations.rows,
    events: settings.rows[0]?.value ?? null,
    writeKeys: writeKeys.rows,
    profileColumns: new Set(columns.rows.map((row) => row.name)),
  };
}
