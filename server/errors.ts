import { ErrorCodes, type ErrorCode, type WireError } from '../protocol/errors.js';

/** Marks AppErrors, so that one raised by a second copy of this module still counts as one. */
const APP_ERROR = Symbol.for('switchboard.AppError');

/**
 * The one error type the server raises on purpose: a stable code from the closed list, a
 * message safe to show the caller, and the HTTP status that code maps to.
 *
 * `instanceof AppError` checks the mark, not the prototype: a module loaded lazily (the
 * MongoDB store) may get its own copy of this class under a loader that keeps separate
 * module graphs for static and dynamic imports (tsx under mocha does).
 */
export class AppError extends Error {
  static override [Symbol.hasInstance](value: unknown): value is AppError {
    return typeof value === 'object' && value !== null && (value as { [APP_ERROR]?: unknown })[APP_ERROR] === true;
  }

  readonly [APP_ERROR] = true;
  readonly status: number;
  /** Seconds the caller should wait (rate_limited). */
  retryAfterS?: number;

  /** `cause`: what failed underneath (for the logs only: the message is what the caller sees). */
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
    this.status = ErrorCodes[code];
  }

  toWire(): WireError {
    return { code: this.code, message: this.message };
  }
}

/** Turns anything thrown into a wire error; unexpected errors become `internal` without detail. */
export function toWireError(error: unknown): WireError {
  if (error instanceof AppError) return error.toWire();
  return { code: 'internal', message: 'internal server error' };
}
