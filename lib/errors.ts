/**
 * The error hierarchy. Every error Roster raises on purpose is an `AppError` with a permanent
 * `code` (listed in docs/errors.md). Subclasses say what a caller should do about it.
 */
export interface AppErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
}

export class AppError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown>;
  readonly httpStatus: number = 500;

  constructor(code: string, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** A person must fix something (config, input). Never retried. */
export class ConfigError extends AppError {
  override readonly httpStatus: number = 400;
}

export class NotFoundError extends AppError {
  override readonly httpStatus = 404;
}

export class ConflictError extends AppError {
  override readonly httpStatus = 409;
}

/** Worth retrying later, with backoff. */
export class TransientError extends AppError {
  override readonly httpStatus = 503;
  readonly retryAfterMs?: number;

  constructor(code: string, message: string, options: AppErrorOptions & { retryAfterMs?: number } = {}) {
    super(code, message, options);
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** A bug in Roster. */
export class InternalError extends AppError {}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}

/** A short, loggable description of any thrown value. */
export function describeError(err: unknown): { code: string; message: string } {
  if (isAppError(err)) {
    return { code: err.code, message: err.message };
  }
  if (err instanceof Error) {
    return { code: 'CDP_INTERNAL', message: err.message };
  }

  return { code: 'CDP_INTERNAL', message: String(err) };
}
