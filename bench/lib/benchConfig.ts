/**
 * The settings every benchmark server shares. Switchboard runs with its production default
 * LOG_LEVEL (info, to /dev/null) and with its abuse limits raised far above what a benchmark
 * sends, so rate limiting never caps a measurement: RATE_LIMIT_EVENTS_PER_SEC,
 * RATE_LIMIT_HANDSHAKES_PER_MIN and RATE_LIMIT_STRIKES at 1,000,000 (the schema's maximum).
 * The limiter itself still runs on every event, as in production.
 */
import type { Grants } from '../../protocol/events.js';
import { DEFAULT_ROLES, testConfig, type Config } from '../../config/index.js';
import { TokenService } from '../../server/auth/TokenService.js';

export const BENCH_KID = 'bench';
export const BENCH_SECRET = 'bench-signing-secret-0123456789-0123456789-abcdef';
export const BENCH_TENANT = 't1';
export const BENCH_TURN_SECRET = 'bench-turn-secret-0123456789-0123456789-abcdef';
export const BENCH_TURN_REALM = 'switchboard.bench';

/** The rate limits the benchmarks raise, and to what (printed in RESULTS.md). */
export const RAISED_LIMITS: Record<string, string> = {
  RATE_LIMIT_EVENTS_PER_SEC: '1000000',
  RATE_LIMIT_HANDSHAKES_PER_MIN: '1000000',
  RATE_LIMIT_STRIKES: '1000000',
};

/** Environment of a benchmark Switchboard (testConfig's loopback defaults underneath). */
export function switchboardEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    SIGNING_KEYS: `${BENCH_KID}:${BENCH_SECRET}`,
    LOG_LEVEL: 'info',
    ROOM_EMPTY_TIMEOUT_MS: '1000',
    ...RAISED_LIMITS,
    ...overrides,
  };
}

export function benchConfig(overrides: Record<string, string> = {}): Readonly<Config> {
  return testConfig(switchboardEnv(overrides));
}

/** TURN settings shared by the bundled relay runs (peers on 127.0.0.1 allowed, quotas out of the way). */
export function turnEnv(): Record<string, string> {
  return {
    TURN_ENABLED: 'true',
    TURN_PORT: '0',
    TURN_LISTEN_IP: '127.0.0.1',
    TURN_RELAY_IP: '127.0.0.1',
    TURN_SECRET: BENCH_TURN_SECRET,
    TURN_REALM: BENCH_TURN_REALM,
    TURN_ALLOWED_PEER_CIDRS: '127.0.0.1/32',
    TURN_MAX_ALLOCATIONS: '100000',
    TURN_MAX_ALLOCATIONS_PER_USER: '100',
    TURN_MIN_PORT: '50000',
    TURN_MAX_PORT: '54999',
  };
}

/** Mints tokens the benchmark servers accept (same key ring), in the load generator. */
export class BenchTokens {
  private readonly service = TokenService.fromConfig(benchConfig().auth);
  private readonly grants: Grants;
  private counter = 0;

  constructor() {
    const guest = DEFAULT_ROLES.guest;
    if (!guest) throw new Error('the guest role is not defined');
    this.grants = guest;
  }

  /** A guest token (roomJoin, canPublish, canSubscribe, canPublishData) for a fresh user. */
  mint(room: string): string {
    const userId = `u${++this.counter}-${process.pid}`;
    return this.service.mint({ tenantId: BENCH_TENANT, roomId: room, userId, name: userId, grants: this.grants, ttlS: 3600 }).token;
  }
}
