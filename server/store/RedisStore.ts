/**
 * The Redis store (REDIS_URL): every node of a cluster reads and writes the same records.
 * Needs a standalone Redis (or a Sentinel-managed primary) of version 7.0 or later; the key
 * layout is in redisKeys.ts, the record encoding in redisRecords.ts.
 *
 * Atomicity: each write that checks and changes several keys (create with its unique indexes,
 * a tenant upsert with its moved lookups, revoke, open, changeMode, close, touch) is one Lua
 * script (redisScripts.ts); a delete is one MULTI. Listings read sorted sets by range, never
 * by scanning the key space.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { describeRedisUrl } from '../cluster/connection.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { pageOfRows, pageSize, roomOrder, sessionOrder, type SessionKey } from './paging.js';
import { compareMembers, DEFAULT_KEY_PREFIX, RedisKeys, sessionKeyOfMember, sessionMember, sortableMs } from './redisKeys.js';
import {
  hashArgs,
  hashOfPairs,
  locatorOf,
  parseLocator,
  roomHash,
  roomOfHash,
  roomPatchHash,
  segmentJson,
  sessionHash,
  storedString,
  sessionOfHash,
  tenantHash,
  tenantOfHash,
  tenantPatchHash,
  tenantUpsertHashes,
  tokenHash,
  tokenOfHash,
  type SessionLocator,
} from './redisRecords.js';
import { defineScripts } from './redisScripts.js';
import { date, roomMode, str } from './records.js';
import {
  changedTenantFields,
  DEFAULT_SESSION_STALE_MS,
  DEFAULT_TOKEN_GRACE_MS,
  LOST_REASON,
  settledSession,
  staleBefore,
  summarizeUsage,
  type RoomStore,
  type SessionFilter,
  type SessionRecord,
  type SessionStore,
  type Store,
  type StoreOptions,
  type TenantRecord,
  type TenantStore,
  type TokenStore,
  type UsageRow,
} from './Store.js';

export interface RedisStoreOptions extends StoreOptions {
  /** Prefix of every key (default "sb:"); stores with different prefixes share a Redis without seeing each other. */
  keyPrefix?: string;
  /** How long connecting may take before init() or an operation fails (ms, default 5000). */
  connectTimeoutMs?: number;
  /** How long a command may wait for its answer before it fails (ms, default 5000). */
  commandTimeoutMs?: number;
  /** Receives connection losses and recoveries. */
  logger?: Logger;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;
/** ping() answers within this bound even while Redis is unreachable (/ready must not hang). */
const PING_TIMEOUT_MS = 2_000;
/** The oldest Redis with every command used here (PEXPIREAT GT). */
const MIN_REDIS_MAJOR = 7;
/** How many records one pipeline reads or writes. */
const BATCH = 500;
/**
 * How often tenants.upsert reads and tries again while concurrent upserts rotate the same
 * tenant's credentials; each round lets at least one of them through, so this bounds how many
 * nodes may rotate one tenant at the same instant.
 */
const UPSERT_ATTEMPTS = 10;

/** The version INFO server reports, e.g. "7.0.15". */
function redisVersionOf(info: string): string | null {
  return /^redis_version:(\S+)/m.exec(info)?.[1] ?? null;
}

const reasonOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Rejects with `message` when `promise` has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Results of a pipeline, the first failed command's error thrown. */
function pipelineValues(results: [Error | null, unknown][] | null): unknown[] {
  if (!results) throw new Error('the pipeline was discarded');
  return results.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  readonly keys: RedisKeys;
  private readonly tokenGraceMs: number;
  private readonly sessionStaleMs: number;
  private readonly connectTimeoutMs: number;
  private readonly commandTimeoutMs: number;
  private readonly logger: Logger | undefined;
  private client: Redis | null = null;
  private initializing: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  /** Set while Redis is unreachable, so one outage is logged once. */
  private outage = false;
  /** Why the last connection attempt failed, until a connection is ready again. */
  private connectionError: string | null = null;

  constructor(
    private readonly url: string,
    options: RedisStoreOptions = {},
  ) {
    if (!/^rediss?:\/\//.test(url)) throw new Error('[RedisStore] REDIS_URL must start with redis:// or rediss://');
    this.keys = new RedisKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
    this.tokenGraceMs = options.tokenGraceMs ?? DEFAULT_TOKEN_GRACE_MS;
    this.sessionStaleMs = options.sessionStaleMs ?? DEFAULT_SESSION_STALE_MS;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.logger = options.logger;
  }

  readonly tenants: TenantStore = {
    create: (record) =>
      this.run('tenants.create', async (redis) => {
        const fields = tenantHash(record);
        const tenantId = str(record.tenant_id, 'tenant_id');
        const keys = [
          this.keys.tenant(tenantId),
          this.keys.tenantByApiKey(str(record.api_key, 'api_key')),
          this.keys.tenantBySecretHash(str(record.api_secret_sha256, 'api_secret_sha256')),
        ];
        const created = await redis.sbCreateTenant(...keys, tenantId, ...hashArgs(fields));
        if (created !== 1) throw new AppError('conflict', 'tenant already exists');
      }),
    get: (tenantId) => this.run('tenants.get', (redis) => this.readTenant(redis, str(tenantId, 'tenant_id'))),
    getByApiKey: (apiKey) =>
      this.run('tenants.getByApiKey', async (redis) => {
        const tenantId = await redis.get(this.keys.tenantByApiKey(str(apiKey, 'api_key')));
        return tenantId === null ? null : this.readTenant(redis, tenantId);
      }),
    getBySecretHash: (secretSha256) =>
      this.run('tenants.getBySecretHash', async (redis) => {
        const tenantId = await redis.get(this.keys.tenantBySecretHash(str(secretSha256, 'api_secret_sha256')));
        return tenantId === null ? null : this.readTenant(redis, tenantId);
      }),
    update: (tenantId, patch) =>
      this.run('tenants.update', async (redis) => {
        const key = this.keys.tenant(str(tenantId, 'tenant_id'));
        const pairs = await redis.sbUpdateHash(key, ...hashArgs(tenantPatchHash(patch)));
        return pairs ? tenantOfHash(hashOfPairs(pairs)) : null;
      }),
    /*
     * Reads the stored credentials (to name their lookups), then one script checks they are
     * unchanged and creates or updates with the lookups moved. A write between the read and the
     * script (a concurrent upsert rotating them) makes the script change nothing and answer
     * "stale"; the next attempt reads again.
     */
    upsert: (record) =>
      this.run('tenants.upsert', async (redis) => {
        const tenantId = str(record.tenant_id, 'tenant_id');
        const key = this.keys.tenant(tenantId);
        const declaredLookups = [
          this.keys.tenantByApiKey(str(record.api_key, 'api_key')),
          this.keys.tenantBySecretHash(str(record.api_secret_sha256, 'api_secret_sha256')),
        ];
        const { declared, createOnly } = tenantUpsertHashes(record);
        const declaredArgs = hashArgs(declared);
        for (let attempt = 1; attempt <= UPSERT_ATTEMPTS; attempt++) {
          const [storedKey = null, storedSecret = null] = await redis.hmget(key, 'api_key', 'api_secret_sha256');
          const storedLookups =
            storedKey === null && storedSecret === null
              ? declaredLookups
              : [
                  this.keys.tenantByApiKey(storedString(storedKey ?? '', 'api_key')),
                  this.keys.tenantBySecretHash(storedString(storedSecret ?? '', 'api_secret_sha256')),
                ];
          const [outcome, ...before] = await redis.sbUpsertTenant(
            key,
            ...declaredLookups,
            ...storedLookups,
            tenantId,
            storedKey ?? '',
            storedSecret ?? '',
            declaredArgs.length,
            ...declaredArgs,
            ...hashArgs(createOnly),
          );
          if (outcome === 'created') return { created: true, changed: [] };
          if (outcome === 'updated') return { created: false, changed: changedTenantFields(tenantOfHash(hashOfPairs(before)), record) };
          if (outcome === 'conflict') throw new AppError('conflict', 'another tenant uses this api_key or api_secret_sha256');
        }
        throw new Error(`the tenant's credentials kept changing during ${UPSERT_ATTEMPTS} attempts`);
      }),
  };

  readonly rooms: RoomStore = {
    create: (record) =>
      this.run('rooms.create', async (redis) => {
        const tenantId = str(record.tenant_id, 'tenant_id');
        const roomId = str(record.room_id, 'room_id');
        const created = await redis.sbCreateRoom(
          this.keys.room(tenantId, roomId),
          this.keys.roomIds(tenantId),
          roomId,
          ...hashArgs(roomHash(record)),
        );
        if (created !== 1) throw new AppError('conflict', `room "${roomId}" already exists`);
      }),
    get: (tenantId, roomId) =>
      this.run('rooms.get', async (redis) => {
        const hash = await redis.hgetall(this.keys.room(str(tenantId, 'tenant_id'), str(roomId, 'room_id')));
        return Object.keys(hash).length > 0 ? roomOfHash(hash) : null;
      }),
    /** Pages in room_id order: a range of the room id set after the cursor, then the records. */
    list: (tenantId, limit, cursor) =>
      this.run('rooms.list', async (redis) => {
        const tenant = str(tenantId, 'tenant_id');
        const size = pageSize(limit);
        const after = roomOrder.decode(cursor);
        const ids = await redis.zrange(this.keys.roomIds(tenant), after === null ? '-' : `(${after}`, '+', 'BYLEX', 'LIMIT', 0, size + 1);
        // The next cursor comes from the ids, so a room deleted meanwhile shortens the page but never ends the listing early.
        const page = pageOfRows(ids, size, roomOrder, (id) => id);
        const hashes = await this.readHashes(
          redis,
          page.items.map((id) => this.keys.room(tenant, id)),
        );
        return { items: hashes.filter((hash) => Object.keys(hash).length > 0).map(roomOfHash), next: page.next };
      }),
    count: (tenantId) => this.run('rooms.count', (redis) => redis.zcard(this.keys.roomIds(str(tenantId, 'tenant_id')))),
    update: (tenantId, roomId, patch) =>
      this.run('rooms.update', async (redis) => {
        const key = this.keys.room(str(tenantId, 'tenant_id'), str(roomId, 'room_id'));
        const pairs = await redis.sbUpdateHash(key, ...hashArgs(roomPatchHash(patch, new Date())));
        return pairs ? roomOfHash(hashOfPairs(pairs)) : null;
      }),
    delete: (tenantId, roomId) =>
      this.run('rooms.delete', async (redis) => {
        const tenant = str(tenantId, 'tenant_id');
        const room = str(roomId, 'room_id');
        const [deleted] = pipelineValues(
          await redis.multi().del(this.keys.room(tenant, room)).zrem(this.keys.roomIds(tenant), room).exec(),
        );
        return deleted === 1;
      }),
  };

  readonly tokens: TokenStore = {
    record: (record) =>
      this.run('tokens.record', async (redis) => {
        const key = this.keys.token(str(record.tenant_id, 'tenant_id'), str(record.jti, 'jti'));
        const purgeAt = date(record.expires_at, 'expires_at').getTime() + this.tokenGraceMs;
        const revoked = record.revoked_at ? ['revoked_at', String(date(record.revoked_at, 'revoked_at').getTime())] : [];
        const recorded = await redis.sbRecordToken(key, purgeAt, ...hashArgs(tokenHash(record)), ...revoked);
        if (recorded !== 1) throw new AppError('conflict', 'jti already recorded');
      }),
    get: (tenantId, jti) =>
      this.run('tokens.get', async (redis) => {
        const hash = await redis.hgetall(this.keys.token(str(tenantId, 'tenant_id'), str(jti, 'jti')));
        return Object.keys(hash).length > 0 ? tokenOfHash(hash) : null;
      }),
    /** Kept until expires_at + token grace: the key expires then (PEXPIREAT), and a later revoke only extends it. */
    revoke: (tenantId, jti, expiresAt) =>
      this.run('tokens.revoke', async (redis) => {
        const tenant = str(tenantId, 'tenant_id');
        const id = str(jti, 'jti');
        const expires = date(expiresAt, 'expiresAt');
        const now = new Date();
        const fields = tokenHash({
          jti: id,
          tenant_id: tenant,
          room_id: '',
          user_id: '',
          token_sha256: '',
          expires_at: expires,
          created_at: now,
        });
        await redis.sbRevokeToken(this.keys.token(tenant, id), expires.getTime() + this.tokenGraceMs, now.getTime(), ...hashArgs(fields));
      }),
    isRevoked: (tenantId, jti) =>
      this.run(
        'tokens.isRevoked',
        async (redis) => (await redis.hexists(this.keys.token(str(tenantId, 'tenant_id'), str(jti, 'jti')), 'revoked_at')) === 1,
      ),
  };

  readonly sessions: SessionStore = {
    open: (record) =>
      this.run('sessions.open', async (redis) => {
        const sessionId = str(record.session_id, 'session_id');
        const tenantId = str(record.tenant_id, 'tenant_id');
        const roomId = str(record.room_id, 'room_id');
        const nodeId = str(record.node_id, 'node_id');
        const connectedAt = date(record.connected_at, 'connected_at');
        const lastSeen = date(record.last_seen_at, 'last_seen_at').getTime();
        const disconnectedAt = record.disconnected_at ? date(record.disconnected_at, 'disconnected_at').getTime() : '';
        const member = sessionMember({ connectedAt, sessionId });
        const keys = [
          this.keys.sessionLocator(sessionId),
          this.keys.session(tenantId, sessionId),
          this.keys.tenantSessions(tenantId),
          this.keys.roomSessions(tenantId, roomId),
          this.keys.openSessions(tenantId),
          this.keys.closedSessions(tenantId),
          this.keys.allOpenSessions(),
          this.keys.nodeSessions(nodeId),
        ];
        const locator = JSON.stringify(locatorOf(record));
        const opened = await redis.sbOpenSession(
          ...keys,
          locator,
          member,
          sessionId,
          lastSeen,
          disconnectedAt,
          ...hashArgs(sessionHash(record)),
        );
        if (opened !== 1) throw new AppError('conflict', 'session already exists');
      }),
    changeMode: (sessionId, mode, at) =>
      this.run('sessions.changeMode', async (redis) => {
        const next = roomMode(mode);
        const when = date(at, 'at');
        const id = str(sessionId, 'session_id');
        const [locator] = await this.locate(redis, [id]);
        if (!locator) return;
        await redis.sbChangeMode(this.keys.session(locator.tenant_id, id), JSON.stringify(next), segmentJson(next, when));
      }),
    close: (sessionId, at, reason) =>
      this.run('sessions.close', async (redis) => {
        const id = str(sessionId, 'session_id');
        const when = date(at, 'at').getTime();
        const why = str(reason, 'reason');
        const [locator] = await this.locate(redis, [id]);
        if (!locator) return;
        await redis.sbCloseSession(...this.closeArgs(id, locator, when, why));
      }),
    touch: (sessionIds, at) =>
      this.run('sessions.touch', async (redis) => {
        if (!Array.isArray(sessionIds)) throw new AppError('payload_invalid', 'sessionIds must be an array');
        const ids = sessionIds.map((id) => str(id, 'session_id'));
        const when = date(at, 'at').getTime();
        for (const batch of chunks(ids, BATCH)) {
          const locators = await this.locate(redis, batch);
          const pipeline = redis.pipeline();
          batch.forEach((id, i) => {
            const locator = locators[i];
            if (!locator) return;
            const member = sessionMember({ connectedAt: new Date(locator.connected_at), sessionId: id });
            pipeline.sbTouchSession(
              this.keys.session(locator.tenant_id, id),
              this.keys.openSessions(locator.tenant_id),
              this.keys.allOpenSessions(),
              when,
              member,
              id,
            );
          });
          if (pipeline.length > 0) pipelineValues(await pipeline.exec());
        }
      }),
    closeLost: (nodeId, now) =>
      this.run('sessions.closeLost', async (redis) => {
        const node = str(nodeId, 'node_id');
        const stale = staleBefore(date(now, 'now'), this.sessionStaleMs).getTime();
        const own = await redis.smembers(this.keys.nodeSessions(node));
        const lost = await redis.zrange(this.keys.allOpenSessions(), '-inf', `(${stale}`, 'BYSCORE');
        let closed = 0;
        for (const batch of chunks([...new Set([...own, ...lost])], BATCH)) {
          const locators = await this.locate(redis, batch);
          const pipeline = redis.pipeline();
          batch.forEach((id, i) => {
            const locator = locators[i];
            if (locator) pipeline.sbCloseSession(...this.closeArgs(id, locator, '', LOST_REASON));
          });
          if (pipeline.length > 0) closed += pipelineValues(await pipeline.exec()).filter((value) => value === 1).length;
        }
        return closed;
      }),
    /**
     * Pages in (connected_at, session_id) order. Without `from`, one range of the tenant's (or
     * room's) session set, bounded by the cursor and `to`. With `from`, the candidates are the
     * sessions closed at or after `from` and the open ones not ended before it (by score), then
     * cut to the page in member order.
     */
    list: (tenantId, filter: SessionFilter) =>
      this.run('sessions.list', async (redis) => {
        const tenant = str(tenantId, 'tenant_id');
        const size = pageSize(filter.limit);
        const after = sessionOrder.decode(filter.cursor);
        const roomId = filter.room_id === undefined ? undefined : str(filter.room_id, 'room_id');
        const to = filter.to === undefined ? undefined : date(filter.to, 'to');
        const from = filter.from === undefined ? undefined : date(filter.from, 'from');
        const stale = staleBefore(new Date(), this.sessionStaleMs);
        const listKey = roomId === undefined ? this.keys.tenantSessions(tenant) : this.keys.roomSessions(tenant, roomId);
        const lowest = after ? `(${sessionMember(after)}` : '-';
        const highest = to ? `(${sortableMs(to.getTime())}` : '+';
        let members: string[];
        if (from === undefined) {
          members = await redis.zrange(listKey, lowest, highest, 'BYLEX', 'LIMIT', 0, size + 1);
        } else {
          members = (await this.overlapping(redis, tenant, from, stale)).filter(
            (member) =>
              (lowest === '-' || compareMembers(member, lowest.slice(1)) > 0) &&
              (highest === '+' || compareMembers(member, highest.slice(1)) < 0),
          );
          if (roomId !== undefined) members = await this.membersOf(redis, listKey, members);
          members.sort(compareMembers);
          members = members.slice(0, size + 1);
        }
        const page = pageOfRows(members.map(sessionKeyOfMember), size, sessionOrder, (key: SessionKey) => key);
        const sessions = await this.readSessions(redis, tenant, page.items);
        return { items: sessions.map((session) => settledSession(session, stale)), next: page.next };
      }),
    /** The sessions overlapping [from, to) by the closed and open score ranges; segments summed by summarizeUsage. */
    usage: (tenantId, from, to): Promise<UsageRow[]> =>
      this.run('sessions.usage', async (redis) => {
        const tenant = str(tenantId, 'tenant_id');
        const start = date(from, 'from');
        const end = date(to, 'to');
        const now = new Date();
        const stale = staleBefore(now, this.sessionStaleMs);
        const before = sortableMs(end.getTime());
        const members = (await this.overlapping(redis, tenant, start, stale)).filter((member) => compareMembers(member, before) < 0);
        const sessions = await this.readSessions(redis, tenant, members.map(sessionKeyOfMember));
        return summarizeUsage(
          sessions.map((session) => settledSession(session, stale)),
          start,
          end,
          now,
        );
      }),
  };

  /** Connects and checks the server's version (concurrent calls share one attempt; a failed one may be retried). */
  init(): Promise<void> {
    if (this.closing) return Promise.reject(new Error('[RedisStore:init] store is closed'));
    this.initializing ??= this.connect().catch((error: unknown) => {
      this.initializing = null;
      throw error;
    });
    return this.initializing;
  }

  /** True when Redis answers a PING within ~2 s; never throws. */
  async ping(): Promise<boolean> {
    const redis = this.client;
    if (this.closing || !redis || redis.status !== 'ready') return false;
    try {
      return (await within(redis.ping(), PING_TIMEOUT_MS, 'ping timed out')) === 'PONG';
    } catch {
      return false;
    }
  }

  /** Quits the connection (drops it when Redis is unreachable); later and concurrent calls resolve with the first. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.initializing?.catch(() => undefined);
      const redis = this.client;
      this.client = null;
      if (!redis) return;
      if (redis.status === 'ready') {
        try {
          await within(redis.quit(), this.commandTimeoutMs, 'quit timed out');
          return;
        } catch {
          // fall through: drop the connection
        }
      }
      redis.disconnect();
    })();
    return this.closing;
  }

  private async connect(): Promise<void> {
    const where = describeRedisUrl(this.url);
    const options: RedisOptions = {
      lazyConnect: true,
      connectTimeout: this.connectTimeoutMs,
      commandTimeout: this.commandTimeoutMs,
      // A command waits for at most one reconnection attempt, then fails rather than queueing on.
      maxRetriesPerRequest: 1,
      // Commands in flight when a connection drops fail; a script is never sent twice.
      autoResendUnfulfilledCommands: false,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
      protocol: 2,
      connectionName: 'switchboard',
    };
    const redis = new Redis(this.url, options);
    redis.on('error', (error: Error) => {
      this.connectionError = error.message;
      if (this.outage || this.client !== redis) return;
      this.outage = true;
      this.logger?.warn({ err: error.message, redis: where }, 'redis store: connection lost; retrying');
    });
    redis.on('ready', () => {
      this.connectionError = null;
      if (this.outage) this.logger?.info({ redis: where }, 'redis store: connection restored');
      this.outage = false;
    });
    defineScripts(redis);
    try {
      const info = await within(
        redis.connect().then(() => redis.info('server')),
        this.connectTimeoutMs + this.commandTimeoutMs,
        `no answer within ${this.connectTimeoutMs + this.commandTimeoutMs} ms`,
      );
      const version = redisVersionOf(info);
      const major = Number(version?.split('.')[0]);
      if (!(major >= MIN_REDIS_MAJOR))
        throw new Error(`Redis ${MIN_REDIS_MAJOR}.0 or later is required, the server runs ${version ?? 'an unknown version'}`);
    } catch (error) {
      redis.disconnect();
      throw new Error(`[RedisStore:init] cannot use ${where}: ${this.failureOf(redis, error)}`, { cause: error });
    }
    if (this.closing) {
      redis.disconnect();
      throw new Error('[RedisStore:init] store is closed');
    }
    this.client = redis;
  }

  /** Runs one store operation; Redis failures become an Error naming the operation and the server. */
  private async run<T>(operation: string, body: (redis: Redis) => Promise<T>): Promise<T> {
    const redis = this.client;
    if (!redis) {
      const state = this.closing ? 'is closed' : 'is not initialized (call init() first)';
      throw new Error(`[RedisStore:${operation}] store ${state}`);
    }
    try {
      return await body(redis);
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw new Error(`[RedisStore:${operation}] ${describeRedisUrl(this.url)} failed: ${this.failureOf(redis, error)}`, { cause: error });
    }
  }

  /** Why a command failed: the connection's own error while it is down (the command's only says it gave up). */
  private failureOf(redis: Redis, error: unknown): string {
    if (redis.status !== 'ready' && this.connectionError) return `unreachable (${this.connectionError})`;
    return reasonOf(error);
  }

  private async readTenant(redis: Redis, tenantId: string): Promise<TenantRecord | null> {
    const hash = await redis.hgetall(this.keys.tenant(tenantId));
    return Object.keys(hash).length > 0 ? tenantOfHash(hash) : null;
  }

  /** HGETALL of each key, in one pipeline per batch; a missing key reads as {}. */
  private async readHashes(redis: Redis, keys: readonly string[]): Promise<Record<string, string>[]> {
    const hashes: Record<string, string>[] = [];
    for (const batch of chunks(keys, BATCH)) {
      const pipeline = redis.pipeline();
      for (const key of batch) pipeline.hgetall(key);
      hashes.push(...(pipelineValues(await pipeline.exec()) as Record<string, string>[]));
    }
    return hashes;
  }

  /** The sessions of these keys, in that order (none is ever deleted). */
  private async readSessions(redis: Redis, tenantId: string, keys: readonly SessionKey[]): Promise<SessionRecord[]> {
    const hashes = await this.readHashes(
      redis,
      keys.map((key) => this.keys.session(tenantId, key.sessionId)),
    );
    return hashes.filter((hash) => Object.keys(hash).length > 0).map(sessionOfHash);
  }

  /**
   * Members of the tenant's sessions that may overlap a window starting at `from`: closed at or
   * after it, or open and last seen at or after min(from, stale) (a stale open session ended at
   * its last_seen_at; a live one has not ended).
   */
  private async overlapping(redis: Redis, tenantId: string, from: Date, stale: Date): Promise<string[]> {
    const openSince = Math.min(from.getTime(), stale.getTime());
    const [closed, open] = pipelineValues(
      await redis
        .pipeline()
        .zrange(this.keys.closedSessions(tenantId), from.getTime(), '+inf', 'BYSCORE')
        .zrange(this.keys.openSessions(tenantId), openSince, '+inf', 'BYSCORE')
        .exec(),
    ) as [string[], string[]];
    return [...new Set([...closed, ...open])];
  }

  /** Those of `members` that are in the sorted set `key`, in their order. */
  private async membersOf(redis: Redis, key: string, members: readonly string[]): Promise<string[]> {
    const kept: string[] = [];
    for (const batch of chunks(members, BATCH)) {
      const scores = await redis.zmscore(key, ...batch);
      kept.push(...batch.filter((_, i) => scores[i] !== null));
    }
    return kept;
  }

  /** The locators of these session ids, null where none was opened. */
  private async locate(redis: Redis, sessionIds: readonly string[]): Promise<(SessionLocator | null)[]> {
    if (sessionIds.length === 0) return [];
    const texts = await redis.mget(...sessionIds.map((id) => this.keys.sessionLocator(id)));
    return texts.map((text) => (text === null ? null : parseLocator(text)));
  }

  /** sbCloseSession's keys and arguments; at '' closes at the session's last_seen_at. */
  private closeArgs(sessionId: string, locator: SessionLocator, at: number | '', reason: string): (string | number)[] {
    const tenantId = locator.tenant_id;
    return [
      this.keys.session(tenantId, sessionId),
      this.keys.openSessions(tenantId),
      this.keys.closedSessions(tenantId),
      this.keys.allOpenSessions(),
      this.keys.nodeSessions(locator.node_id),
      at,
      JSON.stringify(reason),
      sessionMember({ connectedAt: new Date(locator.connected_at), sessionId }),
      sessionId,
    ];
  }
}
