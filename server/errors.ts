import { ErrorCodes, type ErrorCode, type WireError } from '../protocol/errors.js';

/**
 * The one error type the server raises on purpose: a stable code from the closed list, a
 * message safe to show the caller, and the HTTP status that code maps to.
 */
export class AppError extends Error {
  readonly status: number;
  /** Seconds the caller should wait (rate_limited). */
  retryAfterS?: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
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
