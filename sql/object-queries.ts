import type { Queryable } from '../lib/db.js';

export interface AppRow {
  id: number;
  key: string;
  type: string;
  options: Record<string, unknown>;
  secretEnvs: Record<string, string>;
}

export interface SourceOptions {
  table?: string;
  query?: string;
  path?: string;
  identity: { column: string; property: string };
  createsProfiles?: boolean;
  incremental?: { column: string; tieBreaker: string };
  [option: string]: unknown;
}

export interface SourceRow {
  id: number;
  key: string;
  app: AppRow;
  options: SourceOptions;
  cursor: { value: unknown; tieBreaker: unknown } | null;
  scheduleIntervalMs: number | null;
  scheduleCron: string | null;
}

export interface PropertyFetchRow {
  id: number;
  key: string;
  sourceId: number;
  isList: boolean;
  fetchOptions: { kind: 'column' | 'aggregate' | 'query'; [option: string]: unknown };
}

export interface DestinationRow {
  id: number;
  key: string;
  app: AppRow;
  options: Record<string, unknown>;
  mapping: Record<string, string>;
  configHash: string;
  groupKeys: string[];
}

const APP_JSON = `jsonb_build_object('id', a.id, 'key', a.key, 'type', a.type, 'options', a.options, 'secretEnvs', a.secret_envs)`;

export async function loadSources(db: Queryable, sourceIds?: number[]): Promise<SourceRow[]> {
  const { rows } = await db.query<SourceRow>(
    `SELECT
       s.id,
       s.key,
       ${APP_JSON} AS app,
       s.options,
       s.cursor,
       s.schedule_interval_ms AS "scheduleIntervalMs",
       s.schedule_cron AS "scheduleCron"
     FROM roster_core.sources AS s
     JOIN roster_core.apps AS a ON a.id = s.app_id
     WHERE $1::bigint[] IS NULL OR s.id = ANY($1::bigint[])
     ORDER BY s.id`,
    [sourceIds ?? null],
  );

  return rows;
}

export async function loadPropertyFetches(db: Queryable): Promise<PropertyFetchRow[]> {
  const { rows } = await db.query<PropertyFetchRow>(
    `SELECT
       id,
       key,
       source_id AS "sourceId",
       is_list AS "isList",
       fetch_options AS "fetchOptions"
     FROM roster_core.properties
     WHERE source_id IS NOT NULL
     ORDER BY id`,
  );

  return rows;
}

export async function loadDestinations(db: Queryable, destinationIds?: number[]): Promise<DestinationRow[]> {
  const { rows } = await db.query<DestinationRow>(
    `SELECT
       d.id,
       d.key,
       ${APP_JSON} AS app,
       d.options,
       d.mapping,
       d.config_hash AS "configHash",
       COALESCE(array_agg(g.key ORDER BY g.key) FILTER (WHERE g.key IS NOT NULL), '{}') AS "groupKeys"
     FROM roster_core.destinations AS d
     JOIN roster_core.apps AS a ON a.id = d.app_id
     LEFT JOIN roster_core.destination_groups AS dg ON dg.destination_id = d.id
     LEFT JOIN roster_core.groups AS g ON g.id = dg.group_id
     WHERE $1::bigint[] IS NULL OR d.id = ANY($1::bigint[])
     GROUP BY d.id, a.id
     ORDER BY d.id`,
    [destinationIds ?? null],
  );

  return rows;
}

export async function findObjectId(db: Queryable, kind: 'sources' | 'destinations' | 'groups', key: string): Promise<number | undefined> {
  const { rows } = await db.query<{ id: number }>(`SELECT id FROM roster_core.${kind} WHERE key = $1`, [key]);

  return rows[0]?.id;
}
