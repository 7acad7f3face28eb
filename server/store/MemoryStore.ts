import { AppError } from '../errors.js';
import { pageAfter, roomOrder, sessionKeyOf, sessionOrder } from './paging.js';
import { limitsFields, webhookFields } from './records.js';
import {
  changedTenantFields,
  declaredTenantFields,
  DEFAULT_SESSION_STALE_MS,
  DEFAULT_TOKEN_GRACE_MS,
  LOST_REASON,
  settledSession,
  staleBefore,
  summarizeUsage,
  type Page,
  type RoomPatch,
  type RoomRecord,
  type SessionFilter,
  type SessionRecord,
  type Store,
  type StoreOptions,
  type TenantRecord,
  type TenantUpsertResult,
  type TokenRecord,
  type UsageRow,
} from './Store.js';

const clone = <T>(value: T): T => structuredClone(value);

/*
 * Records are copied field by field on the way in, so nothing undeclared (an API secret or
 * a token spread into a record by mistake) is ever stored: the same guarantee as Mongo's
 * strict schemas.
 */
const tenantFields = (r: TenantRecord): TenantRecord =>
  clone({
    tenant_id: r.tenant_id,
    name: r.name,
    api_key: r.api_key,
    api_secret_sha256: r.api_secret_sha256,
    limits: limitsFields(r.limits),
    webhook: webhookFields(r.webhook),
    created_at: r.created_at,
  });
const roomFields = (r: RoomRecord): RoomRecord =>
  clone({
    tenant_id: r.tenant_id,
    room_id: r.room_id,
    name: r.name,
    description: r.description,
    max_participants: r.max_participants,
    mesh_threshold: r.mesh_threshold,
    max_screen_shares: r.max_screen_shares ?? null,
    mode: r.mode,
    locked: r.locked,
    metadata: r.metadata,
    expires_at: r.expires_at,
    created_at: r.created_at,
    updated_at: r.updated_at,
  });
const tokenFields = (r: TokenRecord): TokenRecord =>
  clone({
    jti: r.jti,
    tenant_id: r.tenant_id,
    room_id: r.room_id,
    user_id: r.user_id,
    token_sha256: r.token_sha256,
    expires_at: r.expires_at,
    revoked_at: r.revoked_at,
    created_at: r.created_at,
  });
const sessionFields = (r: SessionRecord): SessionRecord =>
  clone({
    session_id: r.session_id,
    tenant_id: r.tenant_id,
    room_id: r.room_id,
    user_id: r.user_id,
    jti: r.jti,
    peer_id: r.peer_id,
    address: r.address,
    node_id: r.node_id,
    connected_at: r.connected_at,
    last_seen_at: r.last_seen_at,
    disconnected_at: r.disconnected_at,
    duration_ms: r.duration_ms,
    disconnect_reason: r.disconnect_reason,
    segments: r.segments.map((s) => ({ mode: s.mode, from: s.from, to: s.to })),
  });

/** The allowed keys of a patch that are defined (undefined means "leave unchanged"), copied. */
function pickPatch<T extends object>(patch: T, keys: readonly (keyof T)[]): Partial<T> {
  const picked: Partial<T> = {};
  for (const key of keys) if (patch[key] !== undefined) picked[key] = clone(patch[key]);
  return picked;
}
const TENANT_PATCH_KEYS = ['name', 'limits', 'webhook'] as const;
const ROOM_PATCH_KEYS = [
  'name',
  'description',
  'max_participants',
  'mesh_threshold',
  'max_screen_shares',
  'mode',
  'locked',
  'metadata',
  'expires_at',
] as const;

/** Pages leave the store as copies, like every record it returns. */
const clonePage = <T>(page: Page<T>): Page<T> => ({ items: page.items.map(clone), next: page.next });
/** Token records are per tenant: the same jti under two tenants is two records. */
const tokenKey = (tenantId: string, jti: string): string => `${tenantId}\u0000${jti}`;

export interface MemoryStoreOptions extends StoreOptions {
  /** How often expired token records are swept (ms, default 60 s). */
  tokenSweepIntervalMs?: number;
}

/**
 * The embedded default store: everything in process memory, lost on restart. Values are
 * cloned in and out so callers cannot mutate stored state by accident.
 * Token records past expires_at + grace are swept lazily and ignored on read (the in-memory
 * twin of Mongo's TTL index).
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly tenantsById = new Map<string, TenantRecord>();
  private readonly tenantIdByApiKey = new Map<string, string>();
  private readonly tenantIdBySecretHash = new Map<string, string>();
  /** tenant -> room id -> record */
  private readonly roomsByTenant = new Map<string, Map<string, RoomRecord>>();
  /** tenant + jti (tokenKey) -> record */
  private readonly tokensByKey = new Map<string, TokenRecord>();
  private readonly sessionsById = new Map<string, SessionRecord>();
  /** tenant -> sessions in insertion order */
  private readonly sessionsByTenant = new Map<string, SessionRecord[]>();
  private lastTokenSweep = Date.now();
  private closed = false;
  private readonly tokenGraceMs: number;
  private readonly sessionStaleMs: number;
  private readonly tokenSweepIntervalMs: number;

  constructor(options: MemoryStoreOptions = {}) {
    this.tokenGraceMs = options.tokenGraceMs ?? DEFAULT_TOKEN_GRACE_MS;
    this.sessionStaleMs = options.sessionStaleMs ?? DEFAULT_SESSION_STALE_MS;
    this.tokenSweepIntervalMs = options.tokenSweepIntervalMs ?? 60_000;
  }

  readonly tenants = {
    create: async (record: TenantRecord): Promise<void> => {
      const taken =
        this.tenantsById.has(record.tenant_id) ||
        this.tenantIdByApiKey.has(record.api_key) ||
        this.tenantIdBySecretHash.has(record.api_secret_sha256);
      if (taken) {
        throw new AppError('conflict', 'tenant already exists');
      }
      this.tenantsById.set(record.tenant_id, tenantFields(record));
      this.tenantIdByApiKey.set(record.api_key, record.tenant_id);
      this.tenantIdBySecretHash.set(record.api_secret_sha256, record.tenant_id);
    },
    get: async (tenantId: string): Promise<TenantRecord | null> => {
      const record = this.tenantsById.get(tenantId);
      return record ? clone(record) : null;
    },
    getByApiKey: async (apiKey: string): Promise<TenantRecord | null> => {
      const tenantId = this.tenantIdByApiKey.get(apiKey);
      return tenantId ? this.tenants.get(tenantId) : null;
    },
    getBySecretHash: async (secretSha256: string): Promise<TenantRecord | null> => {
      const tenantId = this.tenantIdBySecretHash.get(secretSha256);
      return tenantId ? this.tenants.get(tenantId) : null;
    },
    update: async (tenantId: string, patch: Partial<Pick<TenantRecord, 'name' | 'limits' | 'webhook'>>): Promise<TenantRecord | null> => {
      const record = this.tenantsById.get(tenantId);
      if (!record) return null;
      const set = pickPatch(patch, TENANT_PATCH_KEYS);
      if (set.limits) set.limits = limitsFields(set.limits);
      if (set.webhook !== undefined) set.webhook = webhookFields(set.webhook);
      Object.assign(record, set);
      return clone(record);
    },
    // Synchronous from the checks to the last write: no other call can run in between.
    upsert: async (record: TenantRecord): Promise<TenantUpsertResult> => {
      const declared = tenantFields(record);
      const heldByOther = (owner: string | undefined): boolean => owner !== undefined && owner !== declared.tenant_id;
      if (
        heldByOther(this.tenantIdByApiKey.get(declared.api_key)) ||
        heldByOther(this.tenantIdBySecretHash.get(declared.api_secret_sha256))
      ) {
        throw new AppError('conflict', 'another tenant uses this api_key or api_secret_sha256');
      }
      const stored = this.tenantsById.get(declared.tenant_id);
      if (!stored) {
        this.tenantsById.set(declared.tenant_id, declared);
        this.tenantIdByApiKey.set(declared.api_key, declared.tenant_id);
        this.tenantIdBySecretHash.set(declared.api_secret_sha256, declared.tenant_id);
        return { created: true, changed: [] };
      }
      const changed = changedTenantFields(stored, declared);
      this.tenantIdByApiKey.delete(stored.api_key);
      this.tenantIdBySecretHash.delete(stored.api_secret_sha256);
      this.tenantIdByApiKey.set(declared.api_key, declared.tenant_id);
      this.tenantIdBySecretHash.set(declared.api_secret_sha256, declared.tenant_id);
      Object.assign(stored, declaredTenantFields(declared));
      return { created: false, changed };
    },
  };

  readonly rooms = {
    create: async (record: RoomRecord): Promise<void> => {
      const rooms = this.roomsOf(record.tenant_id);
      if (rooms.has(record.room_id)) throw new AppError('conflict', `room "${record.room_id}" already exists`);
      rooms.set(record.room_id, roomFields(record));
    },
    get: async (tenantId: string, roomId: string): Promise<RoomRecord | null> => {
      const record = this.roomsByTenant.get(tenantId)?.get(roomId);
      return record ? clone(record) : null;
    },
    /** Pages in room_id order. */
    list: async (tenantId: string, limit: number, cursor?: string | null): Promise<Page<RoomRecord>> => {
      const sorted = [...(this.roomsByTenant.get(tenantId)?.values() ?? [])].sort((a, b) => roomOrder.compare(a.room_id, b.room_id));
      return clonePage(pageAfter(sorted, limit, cursor, roomOrder, (room) => room.room_id));
    },
    count: async (tenantId: string): Promise<number> => this.roomsByTenant.get(tenantId)?.size ?? 0,
    update: async (tenantId: string, roomId: string, patch: RoomPatch): Promise<RoomRecord | null> => {
      const record = this.roomsByTenant.get(tenantId)?.get(roomId);
      if (!record) return null;
      Object.assign(record, pickPatch(patch, ROOM_PATCH_KEYS), { updated_at: new Date() });
      return clone(record);
    },
    delete: async (tenantId: string, roomId: string): Promise<boolean> => this.roomsByTenant.get(tenantId)?.delete(roomId) ?? false,
  };

  readonly tokens = {
    record: async (record: TokenRecord): Promise<void> => {
      this.sweepTokens();
      const key = tokenKey(record.tenant_id, record.jti);
      if (this.liveToken(key)) throw new AppError('conflict', 'jti already recorded');
      this.tokensByKey.set(key, tokenFields(record));
    },
    get: async (tenantId: string, jti: string): Promise<TokenRecord | null> => {
      const record = this.liveToken(tokenKey(tenantId, jti));
      return record ? clone(record) : null;
    },
    revoke: async (tenantId: string, jti: string, expiresAt: Date): Promise<void> => {
      this.sweepTokens();
      const key = tokenKey(tenantId, jti);
      const existing = this.liveToken(key);
      if (existing) {
        existing.revoked_at ??= new Date();
        return;
      }
      this.tokensByKey.set(key, {
        jti,
        tenant_id: tenantId,
        room_id: '',
        user_id: '',
        token_sha256: '',
        expires_at: new Date(expiresAt),
        revoked_at: new Date(),
        created_at: new Date(),
      });
    },
    isRevoked: async (tenantId: string, jti: string): Promise<boolean> => Boolean(this.liveToken(tokenKey(tenantId, jti))?.revoked_at),
  };

  readonly sessions = {
    open: async (record: SessionRecord): Promise<void> => {
      if (this.sessionsById.has(record.session_id)) throw new AppError('conflict', 'session already exists');
      const stored = sessionFields(record);
      this.sessionsById.set(record.session_id, stored);
      const list = this.sessionsByTenant.get(record.tenant_id) ?? [];
      list.push(stored);
      this.sessionsByTenant.set(record.tenant_id, list);
    },
    changeMode: async (sessionId: string, mode: SessionRecord['segments'][number]['mode'], at: Date): Promise<void> => {
      const session = this.sessionsById.get(sessionId);
      if (!session || session.disconnected_at) return;
      const open = session.segments.at(-1);
      if (open && open.to === null) {
        if (open.mode === mode) return;
        open.to = new Date(at);
      }
      session.segments.push({ mode, from: new Date(at), to: null });
    },
    close: async (sessionId: string, at: Date, reason: string): Promise<void> => {
      const session = this.sessionsById.get(sessionId);
      if (session) this.closeSession(session, at, reason);
    },
    touch: async (sessionIds: readonly string[], at: Date): Promise<void> => {
      for (const id of sessionIds) {
        const session = this.sessionsById.get(id);
        if (session && !session.disconnected_at) session.last_seen_at = new Date(at);
      }
    },
    closeLost: async (nodeId: string, now: Date): Promise<number> => {
      const stale = staleBefore(now, this.sessionStaleMs);
      let closed = 0;
      for (const session of this.sessionsById.values()) {
        if (session.disconnected_at || (session.node_id !== nodeId && session.last_seen_at >= stale)) continue;
        this.closeSession(session, session.last_seen_at, LOST_REASON);
        closed += 1;
      }
      return closed;
    },
    /** Pages in (connected_at, session_id) order. */
    list: async (tenantId: string, filter: SessionFilter): Promise<Page<SessionRecord>> => {
      const stale = staleBefore(new Date(), this.sessionStaleMs);
      const matching = (this.sessionsByTenant.get(tenantId) ?? [])
        .map((s) => settledSession(s, stale))
        .filter(
          (s) =>
            (filter.room_id === undefined || s.room_id === filter.room_id) &&
            (filter.to === undefined || s.connected_at < filter.to) &&
            (filter.from === undefined || s.disconnected_at === null || s.disconnected_at >= filter.from),
        );
      matching.sort((a, b) => sessionOrder.compare(sessionKeyOf(a), sessionKeyOf(b)));
      return clonePage(pageAfter(matching, filter.limit, filter.cursor, sessionOrder, sessionKeyOf));
    },
    usage: async (tenantId: string, from: Date, to: Date): Promise<UsageRow[]> => {
      const now = new Date();
      const stale = staleBefore(now, this.sessionStaleMs);
      return summarizeUsage(
        (this.sessionsByTenant.get(tenantId) ?? []).map((s) => settledSession(s, stale)),
        from,
        to,
        now,
      );
    },
  };

  async init(): Promise<void> {}

  /** True until close(), like a database that answers. */
  async ping(): Promise<boolean> {
    return !this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private roomsOf(tenantId: string): Map<string, RoomRecord> {
    let rooms = this.roomsByTenant.get(tenantId);
    if (!rooms) {
      rooms = new Map();
      this.roomsByTenant.set(tenantId, rooms);
    }
    return rooms;
  }

  /** Only the first close counts; the open segment ends at `at`. */
  private closeSession(session: SessionRecord, at: Date, reason: string): void {
    if (session.disconnected_at) return;
    const open = session.segments.at(-1);
    if (open && open.to === null) open.to = new Date(at);
    session.disconnected_at = new Date(at);
    session.duration_ms = at.getTime() - session.connected_at.getTime();
    session.disconnect_reason = reason;
  }

  /**
   * A token record lives until its token's exp plus the grace: the verifier accepts the token
   * for the clock tolerance after exp, so a revocation must last as long.
   */
  private isPurgeable(record: TokenRecord, now: number): boolean {
    return record.expires_at.getTime() + this.tokenGraceMs <= now;
  }

  /** The record under `key` unless it is past its purge time. */
  private liveToken(key: string): TokenRecord | undefined {
    const record = this.tokensByKey.get(key);
    return record && !this.isPurgeable(record, Date.now()) ? record : undefined;
  }

  /** Drops token records past their purge time. */
  private sweepTokens(): void {
    const now = Date.now();
    if (now - this.lastTokenSweep < this.tokenSweepIntervalMs) return;
    this.lastTokenSweep = now;
    for (const [key, record] of this.tokensByKey) if (this.isPurgeable(record, now)) this.tokensByKey.delete(key);
  }
}
