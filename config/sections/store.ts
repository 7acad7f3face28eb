/** Persistence: where records live, and how open sessions are kept current in them. */
import { z } from 'zod';
import { int, setting } from '../setting.js';

export const storeSettings = {
  /** MongoDB instead of the in-memory store; a URI without a database path uses "switchboard". */
  mongodbUri: setting(
    'MONGODB_URI',
    z
      .string()
      .regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://')
      .optional(),
  ),
};

export const sessionSettings = {
  /** How often open sessions' last_seen_at is refreshed. */
  heartbeatMs: setting('SESSION_HEARTBEAT_MS', int(1000, 3_600_000).default(30_000)),
};

/** How long an open session may go unseen before it is taken as lost: three heartbeats. */
export function staleAfterMs(heartbeatMs: number): number {
  return 3 * heartbeatMs;
}
