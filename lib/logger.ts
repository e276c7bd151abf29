import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths that never reach a log line. Connector specs add their secret fields. */
export const REDACT_PATHS = [
  '*.password',
  '*.token',
  '*.apiKey',
  '*.secret',
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
];

const ERROR_FIELDS = ['code', 'detail', 'constraint', 'table', 'column', 'severity', 'routine', 'errno', 'syscall', 'address', 'port'];

/**
 * Errors are logged with their own facts only. Driver errors carry the connection that failed
 * (pg puts its whole client, with connection parameters, on the error): never log that.
 */
export function serializeError(err: unknown, depth = 0): Record<string, unknown> {
  if (!(err instanceof Error)) {
    return { message: String(err) };
  }
  const out: Record<string, unknown> = { type: err.name, message: err.message, stack: err.stack };
  for (const field of ERROR_FIELDS) {
    const value = (err as unknown as Record<string, unknown>)[field];
    if (value !== undefined && (typeof value === 'string' || typeof value === 'number')) out[field] = value;
  }
  const details = (err as { details?: unknown }).details;
  if (details && typeof details === 'object') out.details = details;
  if (err.cause !== undefined && depth < 3) out.cause = serializeError(err.cause, depth + 1);

  return out;
}

/** The root logger. Log lines go to stderr, so a command's own output on stdout stays clean. */
export function createLogger(options: { level: string }): Logger {
  return pino(
    {
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: (err: unknown) => serializeError(err) },
      timestamp: pino.stdTimeFunctions.isoTime,
      base: undefined,
    },
    pino.destination({ fd: 2, sync: true }),
  );
}
