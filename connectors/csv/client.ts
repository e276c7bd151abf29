import { createReadStream } from 'node:fs';
import { appendFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse';
import { stringify } from 'csv-stringify/sync';
import { ConfigError } from '../sdk/index.js';

export interface CsvConfig {
  baseDir?: string;
}

/** The absolute path of `file`, refusing one outside `baseDir` when a base is set. */
export function resolvePath(config: CsvConfig, file: string): string {
  if (!config.baseDir) {
    return path.resolve(file);
  }
  const base = path.resolve(config.baseDir);
  const resolved = path.resolve(base, file);
  if (resolved !== base && !resolved.startsWith(base + path.sep)) {
    throw new ConfigError('CDP_CSV_PATH_OUTSIDE_BASE', `CSV path ${file} is outside the base directory ${config.baseDir}`);
  }

  return resolved;
}

function mapCsvError(err: unknown, file: string): unknown {
  const { code, lines } = err as { code?: string; lines?: number };
  if (code === 'ENOENT') {
    return new ConfigError('CDP_CSV_NOT_FOUND', `CSV file ${file} does not exist`, { cause: err });
  }
  if (code === 'EACCES' || code === 'EISDIR') {
    return new ConfigError('CDP_CSV_UNREADABLE', `CSV file ${file} cannot be read (${code})`, { cause: err });
  }
  if (typeof code === 'string' && code.startsWith('CSV_')) {
    return new ConfigError('CDP_CSV_MALFORMED', `CSV file ${file} is malformed at line ${lines ?? 'unknown'} (${code})`, { cause: err, details: { line: lines, parserCode: code } });
  }

  return err;
}

/** Streams a CSV file's rows (header row gives the column names) in batches. */
export async function* readCsv(file: string, options: { delimiter?: string; batchSize: number; signal: AbortSignal }): AsyncGenerator<Array<Record<string, string>>> {
  const input = createReadStream(file);
  const parser = input.pipe(parse({ columns: true, delimiter: options.delimiter ?? ',', bom: true, skip_empty_lines: true }));
  // pipe() does not forward a read error (a missing file); the parser must end with it.
  input.on('error', (err) => parser.destroy(err));
  let batch: Array<Record<string, string>> = [];
  try {
    for await (const row of parser) {
      options.signal.throwIfAborted();
      batch.push(row as Record<string, string>);
      if (batch.length >= options.batchSize) {
        yield batch;
        batch = [];
      }
    }
  } catch (err) {
    throw mapCsvError(err, file);
  } finally {
    input.destroy();
    parser.destroy();
  }
  if (batch.length > 0) {
    yield batch;
  }
}

// Appends to one file are chained so that two batches never both write a header or interleave.
const appendQueues = new Map<string, Promise<unknown>>();

/** Appends rows to a CSV file, writing `header` first when the file is new or empty. */
export async function appendCsv(file: string, header: string[], rows: unknown[][]): Promise<void> {
  const previous = appendQueues.get(file) ?? Promise.resolve();
  const current = previous.catch(() => {}).then(async () => {
    const size = await stat(file).then((s) => s.size, (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        return 0;
      }
      throw err;
    });
    const text = stringify(size === 0 ? [header, ...rows] : rows);
    await appendFile(file, text);
  });
  appendQueues.set(file, current);
  try {
    await current;
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new ConfigError('CDP_CSV_UNWRITABLE', `CSV file ${file} cannot be written (${code ?? 'unknown error'})`, { cause: err });
  } finally {
    if (appendQueues.get(file) === current) {
      appendQueues.delete(file);
    }
  }
}
