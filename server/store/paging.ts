/**
 * Keyset paging, shared by both stores and the live-room listing: page sizes, the cursor of
 * each listing order, and how a page and its next cursor are cut from sorted items.
 *
 * A cursor is base64url JSON of the sort key of the last item returned, so callers treat it as
 * opaque. A page starts strictly after that key, so inserts and deletes between pages neither
 * repeat nor skip the remaining items. Decoding is strict: anything but a key this module wrote
 * is AppError payload_invalid (HTTP 400), never a value that reaches a query and fails there.
 */
import { AppError } from '../errors.js';
import type { Page, SessionRecord } from './Store.js';

/** Page size of an API listing whose request names none. */
export const DEFAULT_PAGE_SIZE = 50;
/** The largest page size an API request may ask for. */
export const MAX_PAGE_SIZE = 100;

/** The largest |ms| a Date can hold (ECMA-262). */
const MAX_DATE_MS = 8.64e15;
/** Ids are short; a longer string cannot be a key this module wrote. */
const MAX_ID_LENGTH = 512;

const invalidCursor = (): AppError => new AppError('payload_invalid', 'cursor is not valid');

function encodeKey(key: unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** The key array of a non-empty cursor, or null when there is no cursor. */
function decodeKey(cursor: unknown, length: number): unknown[] | null {
  if (cursor === undefined || cursor === null || cursor === '') return null;
  if (typeof cursor !== 'string' || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalidCursor();
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  if (!Array.isArray(key) || key.length !== length) throw invalidCursor();
  return key;
}

function id(value: unknown): string {
  if (typeof value !== 'string' || value.length > MAX_ID_LENGTH) throw invalidCursor();
  return value;
}

const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** A listing order: how its sort keys compare, and its cursor codec. */
export interface PageOrder<Key> {
  compare(a: Key, b: Key): number;
  encode(key: Key): string;
  /** The key after which the page starts; null for the first page (no cursor). */
  decode(cursor: unknown): Key | null;
}

/** Rooms, stored or live, in room_id order. */
export const roomOrder: PageOrder<string> = {
  compare: compareStrings,
  encode: (roomId) => encodeKey([roomId]),
  decode(cursor) {
    const key = decodeKey(cursor, 1);
    return key === null ? null : id(key[0]);
  },
};

export interface SessionKey {
  connectedAt: Date;
  sessionId: string;
}

export const sessionKeyOf = (session: Pick<SessionRecord, 'connected_at' | 'session_id'>): SessionKey => ({
  connectedAt: session.connected_at,
  sessionId: session.session_id,
});

/** Sessions in (connected_at, session_id) order. */
export const sessionOrder: PageOrder<SessionKey> = {
  compare: (a, b) => a.connectedAt.getTime() - b.connectedAt.getTime() || compareStrings(a.sessionId, b.sessionId),
  encode: (key) => encodeKey([key.connectedAt.getTime(), key.sessionId]),
  decode(cursor) {
    const key = decodeKey(cursor, 2);
    if (key === null) return null;
    const [ms, sessionId] = key;
    if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || Math.abs(ms) > MAX_DATE_MS) throw invalidCursor();
    return { connectedAt: new Date(ms), sessionId: id(sessionId) };
  },
};

/** A store's page size: a positive integer (MongoDB would read limit(0) as "no limit"). */
export function pageSize(limit: unknown): number {
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1)
    throw new AppError('payload_invalid', 'limit must be a positive integer');
  return limit;
}

/**
 * The page of `rows`, a query's first size + 1 items after the cursor in `order`: the extra
 * row only tells that a next page exists, whose cursor is the key of the page's last item.
 */
export function pageOfRows<T, Key>(rows: readonly T[], size: number, order: PageOrder<Key>, keyOf: (item: T) => Key): Page<T> {
  const items = rows.slice(0, size);
  const last = items.at(-1);
  return { items, next: rows.length > size && last !== undefined ? order.encode(keyOf(last)) : null };
}

/** The page of `sorted` (all items, in `order`) that starts after `cursor` and holds at most `limit` items. */
export function pageAfter<T, Key>(
  sorted: readonly T[],
  limit: number,
  cursor: unknown,
  order: PageOrder<Key>,
  keyOf: (item: T) => Key,
): Page<T> {
  const after = order.decode(cursor);
  const size = pageSize(limit);
  const start = after === null ? 0 : sorted.findIndex((item) => order.compare(keyOf(item), after) > 0);
  return pageOfRows(start === -1 ? [] : sorted.slice(start, start + size + 1), size, order, keyOf);
}
