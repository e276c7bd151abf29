import type pg from 'pg';
import { ConfigError, type ExportField, type ExportRecord, type RecordReject, type WriteResult } from '../sdk/index.js';
import { mapPostgresError, type PostgresConfig } from './client.js';

export interface PostgresDestinationOptions {
  table: string;
  keyColumn?: string;
  groupsColumn?: string;
  createTable?: boolean;
}

const COLUMN_TYPES: Record<ExportField['type'], string> = {
  string: 'text',
  email: 'text',
  url: 'text',
  phone: 'text',
  integer: 'bigint',
  float: 'double precision',
  boolean: 'boolean',
  date: 'timestamptz',
};

/** Errors of the whole batch: a missing unique key is the table's problem, not a record's. */
function mapWriteError(err: unknown, config: PostgresConfig, table: string): unknown {
  if ((err as { code?: unknown }).code === '42P10') {
    return new ConfigError('CDP_DESTINATION_KEY_NOT_UNIQUE', `Destination table ${table} has no unique constraint on its key column`, { cause: err });
  }

  return mapPostgresError(err, config);
}

/** A database refusing one record's values (SQLSTATE classes 22 and 23) is that record's problem. */
function isRecordError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;

  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function quoteTable(name: string): string {
  return name.split('.').map(quote).join('.');
}

/** Plain JSON for jsonb_to_recordset: dates as ISO text, everything else as is. */
function toJson(value: unknown): unknown {
  if (value instanceof Date) {
    return value.toISOString();
  }
  if (Array.isArray(value)) {
    return value.map(toJson);
  }

  return value === undefined ? null : value;
}

/**
 * Writes export records into one Postgres table: an upsert of every create and update in one
 * statement, one DELETE for removals, and a per-record retry only when the batch fails.
 */
export class PostgresDestination {
  constructor(
    private readonly pool: pg.Pool,
    private readonly config: PostgresConfig,
    private readonly options: PostgresDestinationOptions,
  ) {}

  private get keyColumn(): string {
    return this.options.keyColumn ?? 'profile_id';
  }

  private get groupsColumn(): string {
    return this.options.groupsColumn ?? 'groups';
  }

  async write(fields: ExportField[], records: ExportRecord[]): Promise<WriteResult> {
    for (const field of fields) {
      if (field.name === this.keyColumn || field.name === this.groupsColumn) {
        throw new ConfigError('CDP_DESTINATION_FIELD_INVALID', `Field ${field.name} of table ${this.options.table} collides with its key or groups column`);
      }
    }
    const columnTypes = await this.ensureTable(fields);

    // The last record per id wins: ON CONFLICT cannot touch one row twice in a statement.
    const latest = new Map<string, ExportRecord>();
    for (const record of records) {
      latest.delete(record.recordId);
      latest.set(record.recordId, record);
    }
    const upserts = [...latest.values()].filter((r) => r.action !== 'remove');
    const removals = [...latest.values()].filter((r) => r.action === 'remove').map((r) => r.recordId);

    const rejected: RecordReject[] = [];
    try {
      await this.upsert(fields, columnTypes, upserts);
    } catch (err) {
      if (!isRecordError(err)) {
        throw mapWriteError(err, this.config, this.options.table);
      }
      for (const record of upserts) {
        try {
          await this.upsert(fields, columnTypes, [record]);
        } catch (recordErr) {
          if (!isRecordError(recordErr)) {
            throw mapWriteError(recordErr, this.config, this.options.table);
          }
          const sqlstate = (recordErr as { code: string }).code;
          rejected.push({
            recordId: record.recordId,
            code: 'CDP_DESTINATION_VALUE_REFUSED',
            message: `Table ${this.options.table} refused record ${record.recordId} (SQLSTATE ${sqlstate})`,
            retryable: false,
          });
        }
      }
    }
    if (removals.length > 0) {
      try {
        await this.pool.query(`DELETE FROM ${quoteTable(this.options.table)} WHERE ${quote(this.keyColumn)} = ANY($1)`, [removals]);
      } catch (err) {
        throw mapPostgresError(err, this.config);
      }
    }
    const refused = new Set(rejected.map((r) => r.recordId));

    return { accepted: [...latest.keys()].filter((id) => !refused.has(id)), rejected };
  }

  private async upsert(fields: ExportField[], columnTypes: Map<string, string>, records: ExportRecord[]): Promise<void> {
    if (records.length === 0) {
      return;
    }
    const columns = [this.keyColumn, this.groupsColumn, ...fields.map((f) => f.name)];
    const rows = records.map((record) => {
      const row: Record<string, unknown> = { [this.keyColumn]: record.recordId, [this.groupsColumn]: record.groups };
      for (const field of fields) {
        row[field.name] = toJson(record.properties[field.name]);
      }

      return row;
    });
    // jsonb_to_recordset casts each value to the column's real type, so one parameter carries
    // the whole batch and a bad value fails in Postgres, not in our code.
    const recordType = columns.map((c) => `${quote(c)} ${columnTypes.get(c) ?? 'text'}`).join(', ');
    const updates = columns.slice(1).map((c) => `${quote(c)} = EXCLUDED.${quote(c)}`);
    const sql = [
      `INSERT INTO ${quoteTable(this.options.table)} (${columns.map(quote).join(', ')})`,
      `SELECT ${columns.map((c) => `r.${quote(c)}`).join(', ')} FROM jsonb_to_recordset($1::jsonb) AS r(${recordType})`,
      `ON CONFLICT (${quote(this.keyColumn)}) DO UPDATE SET ${updates.join(', ')}`,
    ].join('\n');
    await this.pool.query(sql, [JSON.stringify(rows)]);
  }

  /** Creates the table or its missing columns as allowed, and returns every column's type. */
  private async ensureTable(fields: ExportField[]): Promise<Map<string, string>> {
    const table = this.options.table;
    let columnTypes = await this.columnTypes();
    const wanted = new Map<string, string>([
      [this.keyColumn, 'text'],
      [this.groupsColumn, 'text[]'],
      ...fields.map((f): [string, string] => [f.name, `${COLUMN_TYPES[f.type]}${f.isList ? '[]' : ''}`]),
    ]);
    const missing = [...wanted].filter(([name]) => !columnTypes.has(name));
    if (missing.length === 0) {
      return columnTypes;
    }
    if (this.options.createTable === false) {
      throw new ConfigError(
        columnTypes.size === 0 ? 'CDP_DESTINATION_TABLE_MISSING' : 'CDP_DESTINATION_COLUMN_MISSING',
        columnTypes.size === 0 ? `Destination table ${table} does not exist` : `Destination table ${table} has no column ${missing[0][0]}`,
      );
    }
    try {
      if (columnTypes.size === 0) {
        const definitions = [...wanted].map(([name, type]) =>
          name === this.keyColumn ? `${quote(name)} text PRIMARY KEY` : name === this.groupsColumn ? `${quote(name)} text[] NOT NULL DEFAULT '{}'` : `${quote(name)} ${type}`,
        );
        await this.pool.query(`CREATE TABLE IF NOT EXISTS ${quoteTable(table)} (${definitions.join(', ')})`);
      } else {
        const additions = missing.map(([name, type]) => `ADD COLUMN IF NOT EXISTS ${quote(name)} ${type}`);
        await this.pool.query(`ALTER TABLE ${quoteTable(table)} ${additions.join(', ')}`);
      }
    } catch (err) {
      // Two writers creating the same table at once: the loser sees a duplicate type or table.
      if (!['42P07', '23505'].includes((err as { code?: string }).code ?? '')) {
        throw mapPostgresError(err, this.config);
      }
    }
    columnTypes = await this.columnTypes();

    return columnTypes;
  }

  private async columnTypes(): Promise<Map<string, string>> {
    try {
      const { rows } = await this.pool.query<{ name: string; type: string }>(
        `SELECT attname AS name, format_type(atttypid, atttypmod) AS type
FROM pg_attribute
WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`,
        [quoteTable(this.options.table)],
      );

      return new Map(rows.map((r) => [r.name, r.type]));
    } catch (err) {
      throw mapPostgresError(err, this.config);
    }
  }
}
