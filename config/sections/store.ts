/** Persistence: where records live, and how open sessions are kept current in them. */
import { z } from 'zod';
import { bool, int, setting } from '../setting.js';

/** The stores a server can keep its records in. */
export const STORE_KINDS = ['memory', 'mongodb', 'redis'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

export const storeSettings = {
  /** Which store keeps the records; unset: mongodb with MONGODB_URI, else redis with REDIS_URL, else memory (see selectedStore). */
  kind: setting('STORE', z.enum(STORE_KINDS, { error: `must be one of ${STORE_KINDS.join(', ')}` }).optional()),
  /** MongoDB instead of the in-memory store; a URI without a database path uses "switchboard". */
  mongodbUri: setting(
    'MONGODB_URI',
    z
      .string()
      .regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://')
      .optional(),
  ),
  /** At boot, bring the MongoDB store's indexes to the declared ones first (changed options such as a TTL, dropped and new indexes); off: boot only creates missing indexes and stops on a changed one (run `switchboard migrate`). */
  mongodbMigrate: setting('MONGODB_MIGRATE', bool.default(false)),
  /** Redis (standalone, 7.0 or later) instead of the in-memory store; rediss:// connects over TLS. */
  redisUrl: setting(
    'REDIS_URL',
    z
      .string()
      .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
      .refine((url) => URL.canParse(url), 'must be a URL like redis://host:6379/0')
      .optional(),
  ),
};

/** The store a server uses: STORE when set, else the first whose URL is set (MongoDB before Redis), else memory. */
export function selectedStore(store: {
  kind?: StoreKind | undefined;
  mongodbUri?: string | undefined;
  redisUrl?: string | undefined;
}): StoreKind {
  if (store.kind) return store.kind;
  if (store.mongodbUri) return 'mongodb';
  if (store.redisUrl) return 'redis';
  return 'memory';
}

export const sessionSettings = {
  /** How often open sessions' last_seen_at is refreshed. */
  heartbeatMs: setting('SESSION_HEARTBEAT_MS', int(1000, 3_600_000).default(30_000)),
};

/** How long an open session may go unseen before it is taken as lost: three heartbeats. */
export function staleAfterMs(heartbeatMs: number): number {
  return 3 * heartbeatMs;
}
