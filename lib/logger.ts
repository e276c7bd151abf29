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

/** The root logger. Log lines go to stderr, so a command's own output on stdout stays clean. */
export function createLogger(options: { level: string }): Logger {
  return pino(
    {
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      base: undefined,
    },
    pino.destination({ fd: 2, sync: true }),
  );
}
