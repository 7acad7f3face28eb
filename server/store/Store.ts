/**
 * The persistence contract. Three implementations share one contract suite
 * (test/store/contract.ts): MemoryStore (embedded default), MongoStore (MONGODB_URI) and
 * RedisStore (REDIS_URL).
 * Every method is scoped by tenant where the data belongs to a tenant, so tenant
 * isolation is enforced here and not left to callers' filters.
 * Records hold hashes, never API secrets or tokens.
 */
import type { Metadata, RoomMode, RoomModePolicy } from '../../protocol/events.js';

export interface TenantLimits {
  max_rooms: number;
  max_participants: number;
  mesh_threshold: number;
  max_token_lifetime_s: number;
  auto_create_rooms: boolean;
  /** Absent in records stored before the setting existed: the server default applies. */
  max_screen_shares?: number;
}

export interface WebhookConfig {
  url: string;
  /** Secret for the HMAC-SHA256 signature; tenants need it to verify, so it is stored as given. */
  secret: string;
}

export interface TenantRecord {
  tenant_id: string;
  name: string;
  api_key: string;
  /** sha256 hex of the API secret; the secret itself is shown once and never stored. */
  api_secret_sha256: string;
  limits: TenantLimits;
  webhook: WebhookConfig | null;
  created_at: Date;
}

export interface RoomRecord {
  tenant_id: string;
  room_id: string;
  name: string;
  description: string;
  /** null: use the tenant's (then the server's) default. */
  max_participants: number | null;
  mesh_threshold: number | null;
  /** null (or absent in records stored before the setting existed): the tenant's, then the server's default. */
  max_screen_shares: number | null;
  mode: RoomModePolicy;
  locked: boolean;
  metadata: Metadata;
  expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export type RoomPatch = Partial<
  Pick<
    RoomRecord,
    'name' | 'description' | 'max_participants' | 'mesh_threshold' | 'max_screen_shares' | 'mode' | 'locked' | 'metadata' | 'expires_at'
  >
>;

export interface TokenRecord {
  jti: string;
  tenant_id: string;
  room_id: string;
  user_id: string;
  /** sha256 hex of the signed token, to recognise it without keeping it. */
  token_sha256: string;
  expires_at: Date;
  revoked_at: Date | null;
  created_at: Date;
}

export interface ModeSegment {
  mode: RoomMode;
  from: Date;
  /** null while the segment is open (participant still connected in this mode). */
  to: Date | null;
}

export interface SessionRecord {
  session_id: string;
  tenant_id: string;
  room_id: string;
  user_id: string;
  jti: string;
  peer_id: string;
  address: string;
  /** The server node that recorded the session (NODE_ID); it closes its own lost sessions at start-up. */
  node_id: string;
  connected_at: Date;
  /** The last heartbeat of the recording node while the session was open. */
  last_seen_at: Date;
  disconnected_at: Date | null;
  duration_ms: number | null;
  disconnect_reason: string | null;
  /** Time spent per topology, as contiguous segments. */
  segments: ModeSegment[];
}

export interface Page<T> {
  items: T[];
  /** Opaque cursor for the next page, null on the last page. */
  next: string | null;
}

export interface SessionFilter {
  room_id?: string;
  /** Sessions that overlap [from, to). */
  from?: Date;
  to?: Date;
  limit: number;
  cursor?: string | null;
}

export interface UsageRow {
  room_id: string;
  mode: RoomMode;
  participant_minutes: number;
}

/**
 * The fields a tenant declared in CONFIG_FILE owns: upsert sets them, and the file wins over
 * whatever the store holds. webhook (set by the tenant through the API) and created_at (the
 * first creation) are not among them.
 */
export const DECLARED_TENANT_FIELDS = ['name', 'api_key', 'api_secret_sha256', 'limits'] as const;
export type DeclaredTenantField = (typeof DECLARED_TENANT_FIELDS)[number];

export interface TenantUpsertResult {
  /** True when no tenant had this tenant_id and the record was created as given. */
  created: boolean;
  /** The declared fields whose stored values differed and were replaced, in DECLARED_TENANT_FIELDS order; [] when created. */
  changed: DeclaredTenantField[];
}

/** The declared fields of a record, and nothing else. */
export function declaredTenantFields(record: TenantRecord): Pick<TenantRecord, DeclaredTenantField> {
  return { name: record.name, api_key: record.api_key, api_secret_sha256: record.api_secret_sha256, limits: record.limits };
}

const sameLimits = (a: TenantLimits, b: TenantLimits): boolean =>
  a.max_rooms === b.max_rooms &&
  a.max_participants === b.max_participants &&
  a.mesh_threshold === b.mesh_threshold &&
  a.max_token_lifetime_s === b.max_token_lifetime_s &&
  a.auto_create_rooms === b.auto_create_rooms &&
  a.max_screen_shares === b.max_screen_shares;

/** The declared fields of `declared` that differ from `stored`; shared by the stores so "changed" means one thing. */
export function changedTenantFields(stored: TenantRecord, declared: Pick<TenantRecord, DeclaredTenantField>): DeclaredTenantField[] {
  return DECLARED_TENANT_FIELDS.filter((field) =>
    field === 'limits' ? !sameLimits(stored.limits, declared.limits) : stored[field] !== declared[field],
  );
}

export interface TenantStore {
  /** Throws AppError conflict if the tenant_id, api_key or api_secret_sha256 is taken. */
  create(record: TenantRecord): Promise<void>;
  get(tenantId: string): Promise<TenantRecord | null>;
  getByApiKey(apiKey: string): Promise<TenantRecord | null>;
  /** The tenant whose API secret hashes to this sha256 hex (how Bearer API calls find their tenant). */
  getBySecretHash(secretSha256: string): Promise<TenantRecord | null>;
  update(tenantId: string, patch: Partial<Pick<TenantRecord, 'name' | 'limits' | 'webhook'>>): Promise<TenantRecord | null>;
  /**
   * Reconciles a declared tenant (CONFIG_FILE) in one atomic step: creates `record` as given
   * when its tenant_id is absent, else sets its DECLARED_TENANT_FIELDS and keeps the stored
   * webhook and created_at. A changed api_key or api_secret_sha256 moves the lookups with it:
   * getByApiKey / getBySecretHash find the tenant by the new values only, never by the old.
   * Throws AppError conflict, changing nothing, when another tenant holds the api_key or the
   * api_secret_sha256. Concurrent upserts of one tenant (nodes booting together) all succeed
   * and leave one record.
   */
  upsert(record: TenantRecord): Promise<TenantUpsertResult>;
}

export interface RoomStore {
  /** Throws AppError conflict if (tenant_id, room_id) exists. */
  create(record: RoomRecord): Promise<void>;
  get(tenantId: string, roomId: string): Promise<RoomRecord | null>;
  list(tenantId: string, limit: number, cursor?: string | null): Promise<Page<RoomRecord>>;
  count(tenantId: string): Promise<number>;
  update(tenantId: string, roomId: string, patch: RoomPatch): Promise<RoomRecord | null>;
  delete(tenantId: string, roomId: string): Promise<boolean>;
}

export interface TokenStore {
  /** Records a minted token (by hash). Throws AppError conflict on a duplicate jti. */
  record(record: TokenRecord): Promise<void>;
  get(tenantId: string, jti: string): Promise<TokenRecord | null>;
  /**
   * Marks (tenant, jti) revoked, creating the record if the token was minted elsewhere (CLI,
   * another node). Never touches another tenant's record of the same jti. Kept until
   * expires_at plus the store's token grace (the verifier's clock tolerance), then it may be
   * dropped (TTL), so the token cannot come back while it still verifies.
   */
  revoke(tenantId: string, jti: string, expiresAt: Date): Promise<void>;
  isRevoked(tenantId: string, jti: string): Promise<boolean>;
}

export interface SessionStore {
  open(record: SessionRecord): Promise<void>;
  /** Closes the open segment and starts one in the new mode. */
  changeMode(sessionId: string, mode: RoomMode, at: Date): Promise<void>;
  close(sessionId: string, at: Date, reason: string): Promise<void>;
  /** Heartbeat: sets last_seen_at of these sessions (those still open) in one call. */
  touch(sessionIds: readonly string[], at: Date): Promise<void>;
  /**
   * Start-up of node `nodeId` at `now`: closes, at their last_seen_at with reason 'lost', the
   * open sessions of that node (it just started, so none of them is live) and every open
   * session that is stale (see staleBefore). Returns how many it closed.
   */
  closeLost(nodeId: string, now: Date): Promise<number>;
  /**
   * Oldest first. An open session that is stale reads as ended at its last_seen_at
   * (reason 'lost'), an open one that is not as still open.
   */
  list(tenantId: string, filter: SessionFilter): Promise<Page<SessionRecord>>;
  /** Participant-minutes per room and mode overlapping [from, to); open sessions count up to now, stale ones up to last_seen_at. */
  usage(tenantId: string, from: Date, to: Date): Promise<UsageRow[]>;
}

/** Tuning shared by both stores. */
export interface StoreOptions {
  /** How long a token record outlives its token's exp (ms): the verifier's clock tolerance. */
  tokenGraceMs?: number;
  /** An open session whose last_seen_at is older than this (ms) is taken as lost. */
  sessionStaleMs?: number;
}

/** TOKEN_CLOCK_TOLERANCE_S's default. */
export const DEFAULT_TOKEN_GRACE_MS = 30_000;
/** Three missed heartbeats at SESSION_HEARTBEAT_MS's default. */
export const DEFAULT_SESSION_STALE_MS = 90_000;
/** disconnect_reason of a session whose close never arrived. */
export const LOST_REASON = 'lost';

/** Before this instant a last_seen_at is stale. */
export function staleBefore(now: Date, staleMs: number): Date {
  return new Date(now.getTime() - staleMs);
}

/**
 * The session as readers see it: an open session last seen before `stale` reads as ended at
 * its last_seen_at (each segment ending there at the latest); any other is returned as is.
 */
export function settledSession(session: SessionRecord, stale: Date): SessionRecord {
  if (session.disconnected_at !== null || session.last_seen_at >= stale) return session;
  const end = session.last_seen_at;
  return {
    ...session,
    disconnected_at: end,
    duration_ms: Math.max(0, end.getTime() - session.connected_at.getTime()),
    disconnect_reason: LOST_REASON,
    segments: session.segments.map((s) => (s.to !== null ? s : { ...s, to: s.from > end ? s.from : end })),
  };
}

export interface Store {
  readonly kind: 'memory' | 'mongo' | 'redis';
  readonly tenants: TenantStore;
  readonly rooms: RoomStore;
  readonly tokens: TokenStore;
  readonly sessions: SessionStore;
  /** Connects and declares indexes. */
  init(): Promise<void>;
  /** True when the backing database answers. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** Milliseconds of [aFrom, aTo) that fall inside [bFrom, bTo). */
export function overlapMs(aFrom: Date, aTo: Date, bFrom: Date, bTo: Date): number {
  return Math.max(0, Math.min(aTo.getTime(), bTo.getTime()) - Math.max(aFrom.getTime(), bFrom.getTime()));
}

/** Sums segment overlaps into usage rows; shared by both stores so the arithmetic is one. */
export function summarizeUsage(
  sessions: Iterable<Pick<SessionRecord, 'room_id' | 'segments'>>,
  from: Date,
  to: Date,
  now: Date,
): UsageRow[] {
  const totals = new Map<string, UsageRow>();
  for (const session of sessions) {
    for (const segment of session.segments) {
      const ms = overlapMs(segment.from, segment.to ?? now, from, to);
      if (ms <= 0) continue;
      const key = `${session.room_id}\u0000${segment.mode}`;
      const row = totals.get(key) ?? { room_id: session.room_id, mode: segment.mode, participant_minutes: 0 };
      row.participant_minutes += ms / 60_000;
      totals.set(key, row);
    }
  }
  return [...totals.values()].sort((a, b) => a.room_id.localeCompare(b.room_id) || a.mode.localeCompare(b.mode));
}
