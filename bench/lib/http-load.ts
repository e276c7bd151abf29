// Runs an HTTP load against the bench server and condenses its result: wrk when it is on PATH
// (a C program, so the load costs the 2 cores little), otherwise autocannon (Node, about one
// core of its own at 10k requests/s). BENCH_LOAD_TOOL=autocannon forces the fallback.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import autocannon from 'autocannon';

const execFileAsync = promisify(execFile);

export type LoadTool = 'wrk' | 'autocannon';

export interface LoadResult {
  tool: LoadTool;
  durationS: number;
  ok: number;
  failed: number;
  reqPerS: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

/**
 * A body that changes with every request, so each one carries new messageIds. In `item`,
 * `{n}` stands for a counter that every item takes the next value of, and `{n%K}` for that
 * value modulo K. A body is `before`, then `items` items joined by commas, then `after`.
 */
export interface BodyPattern {
  item: string;
  items?: number;
  before?: string;
  after?: string;
}

export interface LoadOptions {
  url: string;
  path: string;
  connections: number;
  durationS: number;
  headers?: Record<string, string>;
  /** A fixed body... */
  body?: string;
  /** ...or a new one for every request. */
  bodyPattern?: BodyPattern;
  method?: 'GET' | 'POST';
}

type Segment = string | { mod: number | null };

const PLACEHOLDER = /\{n(?:%(\d+))?\}/g;

function parsePattern(item: string): Segment[] {
  const segments: Segment[] = [];
  let last = 0;
  for (const match of item.matchAll(PLACEHOLDER)) {
    if (match.index > last) segments.push(item.slice(last, match.index));
    segments.push({ mod: match[1] === undefined ? null : Number(match[1]) });
    last = match.index + match[0].length;
  }
  if (last < item.length) segments.push(item.slice(last));

  return segments;
}

/** The JavaScript renderer of a pattern, for autocannon. */
function patternRenderer(pattern: BodyPattern): () => string {
  const segments = parsePattern(pattern.item);
  const items = pattern.items ?? 1;
  let n = 0;

  return () => {
    const parts: string[] = [];
    for (let i = 0; i < items; i += 1) {
      n += 1;
      let text = '';
      for (const segment of segments) {
        if (typeof segment === 'string') text += segment;
        else text += String(segment.mod === null ? n : n % segment.mod);
      }
      parts.push(text);
    }

    return `${pattern.before ?? ''}${parts.join(',')}${pattern.after ?? ''}`;
  };
}

/** A Lua string literal: printable ASCII as is, everything else as a decimal byte escape. */
function luaString(text: string): string {
  let out = '"';
  for (const byte of Buffer.from(text, 'utf8')) {
    if (byte === 0x22 || byte === 0x5c) out += `\\${String.fromCharCode(byte)}`;
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += `\\${byte}`;
  }

  return `${out}"`;
}

const RESULT_MARK = 'BENCH_WRK_RESULT ';

/** The wrk script: method, headers and body (fixed or rendered per request), and a JSON result. */
function wrkScript(options: LoadOptions): string {
  const lines = [`wrk.method = ${luaString(options.method ?? 'POST')}`];
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  }
  if (options.bodyPattern) {
    const pattern = options.bodyPattern;
    const pieces = parsePattern(pattern.item).map((segment) => {
      if (typeof segment === 'string') return luaString(segment);

      return segment.mod === null ? 'string.format("%d", n)' : `string.format("%d", n % ${segment.mod})`;
    });
    lines.push(
      'local n = 0',
      `local path = ${luaString(options.path)}`,
      'request = function()',
      '  local parts = {}',
      `  for i = 1, ${pattern.items ?? 1} do`,
      '    n = n + 1',
      `    parts[i] = ${pieces.join(' .. ')}`,
      '  end',
      `  return wrk.format(nil, path, nil, ${luaString(pattern.before ?? '')} .. table.concat(parts, ",") .. ${luaString(pattern.after ?? '')})`,
      'end',
    );
  } else if (options.body !== undefined) {
    lines.push(`wrk.body = ${luaString(options.body)}`);
  }
  lines.push(
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    `  io.write(string.format("\\n${RESULT_MARK}{\\"durationUs\\":%d,\\"requests\\":%d,\\"status\\":%d,\\"connect\\":%d,\\"read\\":%d,\\"write\\":%d,\\"timeout\\":%d,\\"p50Us\\":%d,\\"p99Us\\":%d}\\n",`,
    '    summary.duration, summary.requests, e.status, e.connect, e.read, e.write, e.timeout,',
    '    latency:percentile(50), latency:percentile(99)))',
    'end',
  );

  return `${lines.join('\n')}\n`;
}

interface WrkSummary {
  durationUs: number;
  requests: number;
  status: number;
  connect: number;
  read: number;
  write: number;
  timeout: number;
  p50Us: number;
  p99Us: number;
}

async function runWrk(options: LoadOptions): Promise<LoadResult> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'roster-wrk-'));
  try {
    const script = path.join(dir, 'load.lua');
    await fs.writeFile(script, wrkScript(options));
    // One thread drives every connection; it leaves the other core to the server and Postgres.
    const { stdout } = await execFileAsync(
      'wrk',
      ['-t1', `-c${options.connections}`, `-d${options.durationS}s`, '--timeout', '30s', '-s', script, `${options.url}${options.path}`],
      { maxBuffer: 1024 * 1024 },
    );
    const line = stdout.split('\n').find((candidate) => candidate.startsWith(RESULT_MARK));
    if (!line) throw new Error(`wrk printed no result:\n${stdout}`);
    const summary = JSON.parse(line.slice(RESULT_MARK.length)) as WrkSummary;
    const durationS = summary.durationUs / 1e6;
    const ok = summary.requests - summary.status;

    return {
      tool: 'wrk',
      durationS,
      ok,
      failed: summary.status + summary.connect + summary.read + summary.write + summary.timeout,
      reqPerS: ok / durationS,
      latencyP50Ms: summary.p50Us / 1000,
      latencyP99Ms: summary.p99Us / 1000,
    };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function runAutocannon(options: LoadOptions): Promise<LoadResult> {
  const makeBody = options.bodyPattern ? patternRenderer(options.bodyPattern) : undefined;
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationS,
    timeout: 30,
    headers: options.headers,
    requests: [
      {
        method: options.method ?? 'POST',
        path: options.path,
        body: makeBody ? makeBody() : options.body,
        ...(makeBody ? { setupRequest: (request: { body?: string }) => ({ ...request, body: makeBody() }) } : {}),
      },
    ],
  });
  const ok = result['2xx'];

  return {
    tool: 'autocannon',
    durationS: result.duration,
    ok,
    failed: result.non2xx + result.errors + result.timeouts,
    reqPerS: ok / result.duration,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
  };
}

let wrkFound: Promise<boolean> | undefined;

function hasWrk(): Promise<boolean> {
  wrkFound ??= execFileAsync('wrk', ['--version']).then(
    () => true,
    // wrk --version prints its banner and exits 1; only a missing binary fails to spawn.
    (err: { code?: unknown }) => err.code !== 'ENOENT',
  );

  return wrkFound;
}

/** The tool runLoad will use on this machine. */
async function loadTool(): Promise<LoadTool> {
  if (process.env.BENCH_LOAD_TOOL === 'autocannon') return 'autocannon';

  return (await hasWrk()) ? 'wrk' : 'autocannon';
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  return (await loadTool()) === 'wrk' ? runWrk(options) : runAutocannon(options);
}

export function basicAuth(writeKey: string): string {
  return `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`;
}
