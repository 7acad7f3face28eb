/**
 * Page cursors: base64url JSON of the sort key of the last item returned, so callers treat
 * them as opaque. One codec for every listing (both stores and the live-room listing), and
 * strict: anything but a key this codec wrote is AppError payload_invalid (HTTP 400), never a
 * value that reaches a query and fails there.
 */
import { AppError } from '../errors.js';

/** The largest |ms| a Date can hold (ECMA-262). */
const MAX_DATE_MS = 8.64e15;
/** Ids are short; a longer string cannot be a key this codec wrote. */
const MAX_ID_LENGTH = 512;

const invalid = (): AppError => new AppError('payload_invalid', 'cursor is not valid');

function encode(key: unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** The key array of a non-empty cursor, or null when there is no cursor. */
function decode(cursor: unknown, length: number): unknown[] | null {
  if (cursor === undefined || cursor === null || cursor === '') return null;
  if (typeof cursor !== 'string' || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid();
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(key) || key.length !== length) throw invalid();
  return key;
}

function id(value: unknown): string {
  if (typeof value !== 'string' || value.length > MAX_ID_LENGTH) throw invalid();
  return value;
}

/** Rooms page in room_id order. */
export const roomCursor = {
  encode: (roomId: string): string => encode([roomId]),
  decode(cursor: unknown): string | null {
    const key = decode(cursor, 1);
    return key === null ? null : id(key[0]);
  },
};

export interface SessionKey {
  connectedAt: Date;
  sessionId: string;
}

/** Sessions page in (connected_at, session_id) order. */
export const sessionCursor = {
  encode: (key: SessionKey): string => encode([key.connectedAt.getTime(), key.sessionId]),
  decode(cursor: unknown): SessionKey | null {
    const key = decode(cursor, 2);
    if (key === null) return null;
    const [ms, sessionId] = key;
    if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || Math.abs(ms) > MAX_DATE_MS) throw invalid();
    return { connectedAt: new Date(ms), sessionId: id(sessionId) };
  },
};
