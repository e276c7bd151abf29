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

export function createLogger(options: { level: string; pretty?: boolean }): Logger {
  return pino({
    level: options.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    base: undefined,
  });
}
