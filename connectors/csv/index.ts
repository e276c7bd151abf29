import { readdir } from 'node:fs/promises';
import path from 'node:path';
import {
  ConfigError,
  type Connector,
  type DestinationConnector,
  type ExportRecord,
  type FetchResult,
  type SourceConnector,
} from '../sdk/index.js';
import { appendCsv, readCsv, resolvePath, type CsvConfig } from './client.js';
import { csvSpec } from './spec.js';

export interface CsvSourceStream {
  path?: string;
  delimiter?: string;
}

/** The CSV connector reads its stream options from the stream object (`path`, `delimiter`). */
function streamFile(config: CsvConfig, stream: object): { file: string; delimiter?: string } {
  const options = stream as CsvSourceStream;
  const file = options.path ?? (stream as { table?: string }).table;
  if (!file) {
    throw new ConfigError('CDP_SOURCE_STREAM_INVALID', 'CSV source stream has no path');
  }

  return { file: resolvePath(config, file), delimiter: options.delimiter };
}

function cell(value: unknown): unknown {
  if (value instanceof Date) {
    return value.toISOString();
  }
  if (Array.isArray(value)) {
    return value.map(cell).join(';');
  }

  return value ?? '';
}

const source: SourceConnector<CsvConfig, never> = {
  async check() {
    return { ok: true };
  },
  async discover(ctx, config) {
    if (!config.baseDir) {
      return { streams: [] };
    }
    const files = (await readdir(config.baseDir)).filter((name) => name.endsWith('.csv')).sort();
    const streams = [];
    for (const name of files) {
      for await (const batch of readCsv(path.join(config.baseDir, name), { batchSize: 1, signal: ctx.signal })) {
        streams.push({ name, columns: Object.keys(batch[0]).map((column) => ({ name: column, type: 'text' })) });
        break;
      }
    }

    return { streams };
  },
  async preview(ctx, config, stream, limit) {
    const { file, delimiter } = streamFile(config, stream);
    for await (const batch of readCsv(file, { delimiter, batchSize: Math.max(1, limit), signal: ctx.signal })) {
      return batch.slice(0, limit);
    }

    return [];
  },
  async *read(ctx, req) {
    const { file, delimiter } = streamFile(req.config, req.stream);
    // A file is checked whole before its first row is handed over, so a malformed line near
    // the end fails the run before anything from the file is stored.
    for await (const _rows of readCsv(file, { delimiter, batchSize: 10_000, signal: ctx.signal })) {
      // parsing is the check
    }
    for await (const records of readCsv(file, { delimiter, batchSize: Math.max(1, req.batchSize), signal: ctx.signal })) {
      yield { type: 'records', records };
    }
  },
  async fetchProperties(ctx, req) {
    const unsupported = req.properties.find((p) => p.kind !== 'column');
    if (unsupported) {
      throw new ConfigError('CDP_PROPERTY_KIND_UNSUPPORTED', `CSV sources cannot compute ${unsupported.kind} property ${unsupported.key}`);
    }
    const byValue = new Map<string, string[]>();
    for (const profile of req.profiles) {
      const value = profile.values[req.match.property];
      if (value === null || value === undefined || typeof value === 'object') {
        continue;
      }
      byValue.set(String(value), [...(byValue.get(String(value)) ?? []), profile.id]);
    }
    const result: FetchResult = new Map();
    const { file, delimiter } = streamFile(req.config, req.stream);
    for await (const rows of readCsv(file, { delimiter, batchSize: 1000, signal: ctx.signal })) {
      for (const row of rows) {
        for (const profileId of byValue.get(row[req.match.column]) ?? []) {
          const values = result.get(profileId) ?? {};
          for (const property of req.properties) {
            if (property.kind !== 'column' || !(property.column in row)) {
              continue;
            }
            if (property.isList) {
              values[property.key] = [...((values[property.key] as unknown[]) ?? []), row[property.column]];
            } else if (!(property.key in values)) {
              // The first matching row in file order wins.
              values[property.key] = row[property.column];
            }
          }
          result.set(profileId, values);
        }
      }
    }

    return result;
  },
};

export interface CsvDestinationOptions {
  path: string;
}

const destination: DestinationConnector<CsvConfig, CsvDestinationOptions> = {
  async check() {
    return { ok: true };
  },
  async write(ctx, req) {
    const file = resolvePath(req.config, req.options.path);
    const names = req.fields.map((f) => f.name);
    const header = ['action', 'profile_id', ...names, 'groups'];
    const rows = req.records.map((record: ExportRecord) => [
      record.action,
      record.recordId,
      ...names.map((name) => cell(record.properties[name])),
      record.groups.join(';'),
    ]);
    await appendCsv(file, header, rows);
    ctx.log.debug({ rows: rows.length }, 'batch written');

    return { accepted: req.records.map((r) => r.recordId), rejected: [] };
  },
};

/** CSV files as a full-sync source and as an append-only export log. */
export const csvConnector: Connector = { spec: csvSpec, source, destination };
