import mongoose, { Schema, type Connection, type Model } from 'mongoose';
import type { RoomMode } from '../../protocol/events.js';
import type { Logger } from '../logger.js';
import { AppError } from '../errors.js';
import { describeIndexChange, planIndexChanges, type DeclaredIndex, type ExistingIndex, type IndexChange } from './mongoIndexPlan.js';
import { pageOfRows, pageSize, roomOrder, sessionKeyOf, sessionOrder } from './paging.js';
// Ids reach queries only as strings: str() refuses operator objects; sanitizeFilter is the second line of defence.
import { date, limitsFields, roomMode, ROOM_MODES, str, webhookFields } from './records.js';
import {
  changedTenantFields,
  declaredTenantFields,
  DEFAULT_SESSION_STALE_MS,
  DEFAULT_TOKEN_GRACE_MS,
  LOST_REASON,
  settledSession,
  staleBefore,
  type ModeSegment,
  type RoomPatch,
  type RoomRecord,
  type RoomStore,
  type SessionFilter,
  type SessionRecord,
  type SessionStore,
  type Store,
  type StoreOptions,
  type TenantRecord,
  type TenantStore,
  type TokenRecord,
  type TokenStore,
  type UsageRow,
} from './Store.js';

export interface MongoStoreOptions extends StoreOptions {
  /**
   * How long the driver looks for a reachable server before an operation fails (ms, default
   * 30000, the driver's): longer than a replica-set election, so writes wait one out.
   */
  serverSelectionTimeoutMS?: number;
  /** Receives driver disconnects, reconnects and errors. */
  logger?: Logger;
  /** init() brings the indexes to the declared ones first (migrate()): MONGODB_MIGRATE. */
  migrateIndexes?: boolean;
}

/** One change of migrate()'s plan, with its collection. */
export interface PlannedIndexChange {
  collection: string;
  change: IndexChange;
  /** One line for logs and the CLI. */
  description: string;
}

/**
 * A token record as stored: revoked_at is absent until revoked (so revoke() can use $min);
 * purge_at (expires_at + grace) is what the TTL index deletes on.
 */
export type StoredToken = Omit<TokenRecord, 'revoked_at'> & { revoked_at?: Date; purge_at: Date };

/**
 * A session as stored: duration_ms and open segment ends are derived on read; current_mode
 * guards changeMode; ended_at is disconnected_at, or OPEN_END while open, so one index on
 * (tenant_id, ended_at, connected_at) serves every overlap query.
 */
export interface StoredSession extends Omit<SessionRecord, 'duration_ms'> {
  current_mode: RoomMode | null;
  ended_at: Date;
}

/** The models of one MongoStore, one per record type. */
export interface MongoStoreModels {
  tenants: Model<TenantRecord>;
  rooms: Model<RoomRecord>;
  tokens: Model<StoredToken>;
  sessions: Model<StoredSession>;
}

const DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 30_000;
/** The database used when the URI names none (mongodb+srv://host/?...), rather than the driver's "test". */
const DEFAULT_DATABASE = 'switchboard';
/** ended_at of an open session: after every real instant, so `ended_at >= from` holds while open. */
export const OPEN_END = new Date('9999-12-31T00:00:00.000Z');
/** Indexes of earlier versions that contradict the current ones (global jti uniqueness, TTL at exp). */
const LEGACY_TOKEN_INDEXES = ['jti_1', 'expires_at_1'];
const INDEX_NOT_FOUND = 27;
const NAMESPACE_NOT_FOUND = 26;
/** createIndex refuses an index whose key or name exists with other options. */
const INDEX_CONFLICTS = new Set(['IndexOptionsConflict', 'IndexKeySpecsConflict']);
/** ping() answers within this bound even while the server is unreachable (/ready must not hang). */
const PING_TIMEOUT_MS = 2_000;
const DUPLICATE_KEY = 11000;
/** How often tenants.upsert runs when a concurrent upsert inserted the same tenant_id first (one retry suffices). */
const UPSERT_ATTEMPTS = 3;
/** Never return Mongo's bookkeeping fields; records are mapped field by field anyway. */
const PROJECTION = { _id: 0 } as const;

/**
 * Options shared by every schema: strict writes and queries (unknown fields are dropped,
 * never stored or matched), no version key, empty metadata objects kept, no automatic
 * index builds or buffering (init() declares indexes; calls before init() fail at once).
 */
const SCHEMA_OPTIONS = {
  strict: true,
  strictQuery: true,
  versionKey: false,
  minimize: false,
  autoIndex: false,
  autoCreate: false,
  bufferCommands: false,
  id: false,
} as const;

/** Builds the schemas and models on one connection; called once per store. */
function createModels(connection: Connection): MongoStoreModels {
  const limits = new Schema(
    {
      max_rooms: { type: Number, required: true },
      max_participants: { type: Number, required: true },
      mesh_threshold: { type: Number, required: true },
      max_token_lifetime_s: { type: Number, required: true },
      auto_create_rooms: { type: Boolean, required: true },
      max_screen_shares: { type: Number },
    },
    { _id: false, strict: true },
  );
  const webhook = new Schema(
    { url: { type: String, required: true }, secret: { type: String, required: true } },
    { _id: false, strict: true },
  );
  const tenants = new Schema(
    {
      tenant_id: { type: String, required: true },
      name: { type: String, default: '' },
      api_key: { type: String, required: true },
      api_secret_sha256: { type: String, required: true },
      limits: { type: limits, required: true },
      webhook: { type: webhook, default: null },
      created_at: { type: Date, required: true },
    },
    { ...SCHEMA_OPTIONS, collection: 'tenants' },
  );
  tenants.index({ tenant_id: 1 }, { unique: true });
  tenants.index({ api_key: 1 }, { unique: true });
  // How Bearer API calls find their tenant; secrets are random, so a repeat is a bug to refuse.
  tenants.index({ api_secret_sha256: 1 }, { unique: true });

  const rooms = new Schema(
    {
      tenant_id: { type: String, required: true },
      room_id: { type: String, required: true },
      name: { type: String, default: '' },
      description: { type: String, default: '' },
      max_participants: { type: Number, default: null },
      mesh_threshold: { type: Number, default: null },
      max_screen_shares: { type: Number, default: null },
      mode: { type: String, enum: ['auto', 'mesh', 'sfu'], required: true },
      locked: { type: Boolean, default: false },
      metadata: { type: Schema.Types.Mixed, default: () => ({}) },
      expires_at: { type: Date, default: null },
      created_at: { type: Date, required: true },
      updated_at: { type: Date, required: true },
    },
    { ...SCHEMA_OPTIONS, collection: 'rooms' },
  );
  // Unique per tenant, and the key list() pages on.
  rooms.index({ tenant_id: 1, room_id: 1 }, { unique: true });

  const tokens = new Schema(
    {
      jti: { type: String, required: true },
      tenant_id: { type: String, required: true },
      room_id: { type: String, default: '' },
      user_id: { type: String, default: '' },
      token_sha256: { type: String, default: '' },
      expires_at: { type: Date, required: true },
      // Absent until revoked (read back as null), so revoke() can set it with $min.
      revoked_at: { type: Date },
      created_at: { type: Date, required: true },
      purge_at: { type: Date, required: true },
    },
    { ...SCHEMA_OPTIONS, collection: 'tokens' },
  );
  // A jti is a tenant's: another tenant's record of the same jti is a different record.
  tokens.index({ tenant_id: 1, jti: 1 }, { unique: true });
  // TTL: MongoDB drops a token record (revoked or not) once its token can no longer verify:
  // purge_at is exp plus the clock tolerance the verifier grants.
  tokens.index({ purge_at: 1 }, { expireAfterSeconds: 0 });

  // A segment's `to` is stored only when given at open(); otherwise it ends where the next
  // segment starts, or at disconnected_at (see toSession). That keeps changeMode and close
  // single plain update operations: they never rewrite an array element.
  const segment = new Schema(
    { mode: { type: String, enum: ROOM_MODES, required: true }, from: { type: Date, required: true }, to: { type: Date, default: null } },
    { _id: false, strict: true },
  );
  const sessions = new Schema(
    {
      session_id: { type: String, required: true },
      tenant_id: { type: String, required: true },
      room_id: { type: String, required: true },
      user_id: { type: String, default: '' },
      jti: { type: String, default: '' },
      peer_id: { type: String, default: '' },
      address: { type: String, default: '' },
      node_id: { type: String, default: '' },
      connected_at: { type: Date, required: true },
      last_seen_at: { type: Date, required: true },
      disconnected_at: { type: Date, default: null },
      ended_at: { type: Date, required: true },
      disconnect_reason: { type: String, default: null },
      segments: { type: [segment], default: () => [] },
      /** Mode of the open segment while connected, else null: the guard of changeMode. */
      current_mode: { type: String, enum: [...ROOM_MODES, null], default: null },
    },
    { ...SCHEMA_OPTIONS, collection: 'sessions' },
  );
  sessions.index({ session_id: 1 }, { unique: true });
  // session_id ends both compound keys so list() pages on (connected_at, session_id) from the index.
  sessions.index({ tenant_id: 1, room_id: 1, connected_at: 1, session_id: 1 });
  sessions.index({ tenant_id: 1, connected_at: 1, session_id: 1 });
  // Overlap with [from, to): ended_at >= from and connected_at < to, both bounds from the index.
  sessions.index({ tenant_id: 1, ended_at: 1, connected_at: 1 });
  // closeLost(): open sessions (ended_at = OPEN_END) by node, and by last heartbeat.
  sessions.index({ node_id: 1, ended_at: 1 });
  sessions.index({ ended_at: 1, last_seen_at: 1 });

  return {
    tenants: connection.model<TenantRecord>('Tenant', tenants),
    rooms: connection.model<RoomRecord>('Room', rooms),
    tokens: connection.model<StoredToken>('Token', tokens),
    sessions: connection.model<StoredSession>('Session', sessions),
  };
}

// ---- records: every value in and out is mapped field by field, so nothing undeclared
// (an API secret spread in by mistake, Mongo's _id) is ever stored or returned ----

function toTenant(doc: TenantRecord): TenantRecord {
  return {
    tenant_id: doc.tenant_id,
    name: doc.name,
    api_key: doc.api_key,
    api_secret_sha256: doc.api_secret_sha256,
    limits: limitsFields(doc.limits),
    webhook: webhookFields(doc.webhook),
    created_at: doc.created_at,
  };
}

function toRoom(doc: RoomRecord): RoomRecord {
  return {
    tenant_id: doc.tenant_id,
    room_id: doc.room_id,
    name: doc.name,
    description: doc.description,
    max_participants: doc.max_participants ?? null,
    mesh_threshold: doc.mesh_threshold ?? null,
    max_screen_shares: doc.max_screen_shares ?? null,
    mode: doc.mode,
    locked: doc.locked,
    metadata: doc.metadata ?? {},
    expires_at: doc.expires_at ?? null,
    created_at: doc.created_at,
    updated_at: doc.updated_at,
  };
}

function toTokenDoc(record: TokenRecord, graceMs: number): StoredToken {
  const { revoked_at: revokedAt, ...rest } = toToken(record);
  const purgeAt = new Date(date(rest.expires_at, 'expires_at').getTime() + graceMs);
  return revokedAt ? { ...rest, revoked_at: revokedAt, purge_at: purgeAt } : { ...rest, purge_at: purgeAt };
}

function toToken(doc: TokenRecord | StoredToken): TokenRecord {
  return {
    jti: doc.jti,
    tenant_id: doc.tenant_id,
    room_id: doc.room_id,
    user_id: doc.user_id,
    token_sha256: doc.token_sha256,
    expires_at: doc.expires_at,
    revoked_at: doc.revoked_at ?? null,
    created_at: doc.created_at,
  };
}

function toStoredSession(record: SessionRecord): StoredSession {
  const { duration_ms: _derived, ...rest } = toSession(record);
  const last = rest.segments.at(-1);
  return {
    ...rest,
    current_mode: !rest.disconnected_at && last && last.to === null ? last.mode : null,
    ended_at: rest.disconnected_at ?? OPEN_END,
  };
}

/** Segments with every `to` filled in: stored, else the next segment's start, else the disconnection. */
function toSegments(segments: ModeSegment[] | undefined, disconnectedAt: Date | null | undefined): ModeSegment[] {
  const list = segments ?? [];
  return list.map((segment, i) => ({
    mode: segment.mode,
    from: segment.from,
    to: segment.to ?? list[i + 1]?.from ?? disconnectedAt ?? null,
  }));
}

function toSession(doc: Omit<SessionRecord, 'duration_ms'> & { duration_ms?: number | null }): SessionRecord {
  const disconnectedAt = doc.disconnected_at ?? null;
  return {
    session_id: doc.session_id,
    tenant_id: doc.tenant_id,
    room_id: doc.room_id,
    user_id: doc.user_id,
    jti: doc.jti,
    peer_id: doc.peer_id,
    address: doc.address,
    node_id: doc.node_id ?? '',
    connected_at: doc.connected_at,
    last_seen_at: doc.last_seen_at ?? doc.connected_at,
    disconnected_at: disconnectedAt,
    duration_ms: disconnectedAt ? disconnectedAt.getTime() - doc.connected_at.getTime() : null,
    disconnect_reason: doc.disconnect_reason ?? null,
    segments: toSegments(doc.segments, disconnectedAt),
  };
}

/** The keys of `patch` that are allowed and defined (undefined means "leave unchanged"). */
function pickPatch<T extends object>(patch: T, keys: readonly (keyof T)[]): Partial<T> {
  const picked: Partial<T> = {};
  for (const key of keys) if (patch[key] !== undefined) picked[key] = patch[key];
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

function isDuplicateKey(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === DUPLICATE_KEY;
}

/** The indexed fields a duplicate-key error names ([] for any other error). */
function duplicateKeyFields(error: unknown): string[] {
  if (!isDuplicateKey(error)) return [];
  const { keyPattern, keyValue, message } = error as { keyPattern?: unknown; keyValue?: unknown; message?: unknown };
  for (const named of [keyPattern, keyValue]) {
    if (typeof named === 'object' && named !== null && Object.keys(named).length > 0) return Object.keys(named);
  }
  // Servers that name only the index in the message: "... index: tenant_id_1 dup key: ...".
  const index = typeof message === 'string' ? /index: (\S+) dup key/.exec(message)?.[1] : undefined;
  return index ? index.split(/_-?1(?:_|$)/).filter(Boolean) : [];
}

/** Maps a failed write: duplicate key -> conflict, schema violations -> payload_invalid. */
function writeError(error: unknown, conflictMessage: string): unknown {
  if (isDuplicateKey(error)) return new AppError('conflict', conflictMessage);
  if (error instanceof mongoose.Error.ValidationError) {
    return new AppError('payload_invalid', `invalid fields: ${Object.keys(error.errors).join(', ')}`);
  }
  if (error instanceof mongoose.Error.CastError) return new AppError('payload_invalid', `invalid value for ${error.path}`);
  return error;
}

/** The database a URI names, or DEFAULT_DATABASE when its path is empty. */
export function databaseNameOf(uri: string): string {
  const match = /^mongodb(?:\+srv)?:\/\/[^/?]*(?:\/([^?]*))?/.exec(uri);
  const name = match?.[1] ? decodeURIComponent(match[1]) : '';
  return name || DEFAULT_DATABASE;
}

/** Host part of a MongoDB URI, for error messages: no credentials, no query options. */
function describeUri(uri: string): string {
  const match = /^(mongodb(?:\+srv)?:\/\/)(?:[^@/]*@)?([^/?]*)/.exec(uri);
  return match ? `${match[1]}${match[2]}` : 'the configured URI';
}

/**
 * The MongoDB store (selected by MONGODB_URI), through mongoose on its own connection.
 * Writes that depend on current state (revoke, changeMode, close) are each one atomic
 * update with plain operators and a guard in the filter: no read-modify-write. closeLost()
 * and the start-up migration use update pipelines and usage() an aggregation (MongoDB 4.2+).
 */
export class MongoStore implements Store {
  readonly kind = 'mongo' as const;
  /** This store's own connection (never mongoose's global one). */
  readonly connection: Connection;
  /** Exposed for index checks and diagnostics; callers use the sub-stores. */
  readonly models: MongoStoreModels;
  private readonly uri: string;
  private readonly serverSelectionTimeoutMS: number;
  private readonly tokenGraceMs: number;
  private readonly sessionStaleMs: number;
  private readonly migrateOnInit: boolean;
  private readonly log: Logger | undefined;
  private opening: Promise<void> | null = null;
  private initializing: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  constructor(uri: string, options: MongoStoreOptions = {}) {
    if (typeof uri !== 'string' || !/^mongodb(\+srv)?:\/\//.test(uri)) {
      throw new Error('[MongoStore] uri must start with mongodb:// or mongodb+srv://');
    }
    this.uri = uri;
    this.serverSelectionTimeoutMS = options.serverSelectionTimeoutMS ?? DEFAULT_SERVER_SELECTION_TIMEOUT_MS;
    this.tokenGraceMs = options.tokenGraceMs ?? DEFAULT_TOKEN_GRACE_MS;
    this.sessionStaleMs = options.sessionStaleMs ?? DEFAULT_SESSION_STALE_MS;
    this.migrateOnInit = options.migrateIndexes ?? false;
    // Not connected until init(); created now so models (and their indexes) exist up front.
    this.connection = mongoose.createConnection();
    this.connection.set('sanitizeFilter', true);
    this.models = createModels(this.connection);
    const log = options.logger?.child({ module: 'mongo', host: describeUri(uri) });
    this.log = log;
    if (log) {
      // Writes during an outage wait for server selection, then fail and are logged by their
      // callers; these lines say why.
      this.connection.on('disconnected', () => log.warn('MongoDB disconnected'));
      this.connection.on('reconnected', () => log.info('MongoDB reconnected'));
      this.connection.on('error', (error: unknown) => log.error({ err: error }, 'MongoDB connection error'));
    }
  }

  readonly tenants: TenantStore = {
    create: async (record) => {
      const doc = toTenant(record);
      str(doc.tenant_id, 'tenant_id');
      str(doc.api_key, 'api_key');
      str(doc.api_secret_sha256, 'api_secret_sha256');
      try {
        await this.models.tenants.create(doc);
      } catch (error) {
        throw writeError(error, 'tenant already exists');
      }
    },
    get: async (tenantId) => {
      const doc = await this.models.tenants.findOne({ tenant_id: str(tenantId, 'tenant_id') }, PROJECTION).lean<TenantRecord>();
      return doc ? toTenant(doc) : null;
    },
    getByApiKey: async (apiKey) => {
      const doc = await this.models.tenants.findOne({ api_key: str(apiKey, 'api_key') }, PROJECTION).lean<TenantRecord>();
      return doc ? toTenant(doc) : null;
    },
    getBySecretHash: async (secretSha256) => {
      const doc = await this.models.tenants
        .findOne({ api_secret_sha256: str(secretSha256, 'api_secret_sha256') }, PROJECTION)
        .lean<TenantRecord>();
      return doc ? toTenant(doc) : null;
    },
    update: async (tenantId, patch) => {
      const set: Partial<TenantRecord> = pickPatch(patch, TENANT_PATCH_KEYS);
      if (set.limits) set.limits = limitsFields(set.limits);
      if (set.webhook !== undefined) set.webhook = webhookFields(set.webhook);
      const filter = { tenant_id: str(tenantId, 'tenant_id') };
      if (Object.keys(set).length === 0) return this.tenants.get(tenantId);
      try {
        const doc = await this.models.tenants
          .findOneAndUpdate(filter, { $set: set }, { returnDocument: 'after', runValidators: true, projection: PROJECTION })
          .lean<TenantRecord>();
        return doc ? toTenant(doc) : null;
      } catch (error) {
        throw writeError(error, 'tenant already exists');
      }
    },
    /*
     * One findOneAndUpdate with upsert: the single-document write is atomic, the unique indexes
     * refuse another tenant's api_key or secret hash (nothing written), and the document as it
     * was before the write tells what changed. Two upserts racing to insert the same tenant_id
     * can meet its unique index (when the server does not retry that itself); the loser then
     * runs again and updates the record the winner inserted.
     */
    upsert: async (record) => {
      const doc = toTenant(record);
      const tenantId = str(doc.tenant_id, 'tenant_id');
      str(doc.api_key, 'api_key');
      str(doc.api_secret_sha256, 'api_secret_sha256');
      const declared = declaredTenantFields(doc);
      for (let attempt = 1; ; attempt++) {
        try {
          const before = await this.models.tenants
            .findOneAndUpdate(
              { tenant_id: tenantId },
              { $set: declared, $setOnInsert: { webhook: doc.webhook, created_at: doc.created_at } },
              { upsert: true, returnDocument: 'before', runValidators: true, projection: PROJECTION },
            )
            .lean<TenantRecord>();
          return before ? { created: false, changed: changedTenantFields(toTenant(before), declared) } : { created: true, changed: [] };
        } catch (error) {
          if (attempt < UPSERT_ATTEMPTS && duplicateKeyFields(error).includes('tenant_id')) continue;
          throw writeError(error, 'another tenant uses this api_key or api_secret_sha256');
        }
      }
    },
  };

  readonly rooms: RoomStore = {
    create: async (record) => {
      const doc = toRoom(record);
      str(doc.tenant_id, 'tenant_id');
      str(doc.room_id, 'room_id');
      try {
        await this.models.rooms.create(doc);
      } catch (error) {
        throw writeError(error, `room "${doc.room_id}" already exists`);
      }
    },
    get: async (tenantId, roomId) => {
      const filter = { tenant_id: str(tenantId, 'tenant_id'), room_id: str(roomId, 'room_id') };
      const doc = await this.models.rooms.findOne(filter, PROJECTION).lean<RoomRecord>();
      return doc ? toRoom(doc) : null;
    },
    /** Pages in room_id order; the cursor is the last room_id, so inserts and deletes between pages skip nothing. */
    list: async (tenantId, limit, cursor) => {
      const size = pageSize(limit);
      const after = roomOrder.decode(cursor);
      const filter = {
        tenant_id: str(tenantId, 'tenant_id'),
        ...(after === null ? {} : { room_id: mongoose.trusted({ $gt: after }) }),
      };
      const docs = await this.models.rooms
        .find(filter, PROJECTION)
        .sort({ room_id: 1 })
        .limit(size + 1)
        .lean<RoomRecord[]>();
      return pageOfRows(docs.map(toRoom), size, roomOrder, (room) => room.room_id);
    },
    count: async (tenantId) => this.models.rooms.countDocuments({ tenant_id: str(tenantId, 'tenant_id') }),
    update: async (tenantId, roomId, patch) => {
      const filter = { tenant_id: str(tenantId, 'tenant_id'), room_id: str(roomId, 'room_id') };
      const set: RoomPatch & { updated_at: Date } = { ...pickPatch(patch, ROOM_PATCH_KEYS), updated_at: new Date() };
      try {
        const doc = await this.models.rooms
          .findOneAndUpdate(filter, { $set: set }, { returnDocument: 'after', runValidators: true, projection: PROJECTION })
          .lean<RoomRecord>();
        return doc ? toRoom(doc) : null;
      } catch (error) {
        throw writeError(error, 'room conflict');
      }
    },
    delete: async (tenantId, roomId) => {
      const filter = { tenant_id: str(tenantId, 'tenant_id'), room_id: str(roomId, 'room_id') };
      const result = await this.models.rooms.deleteOne(filter);
      return result.deletedCount === 1;
    },
  };

  readonly tokens: TokenStore = {
    record: async (record) => {
      const doc = toTokenDoc(record, this.tokenGraceMs);
      str(doc.jti, 'jti');
      str(doc.tenant_id, 'tenant_id');
      try {
        await this.models.tokens.create(doc);
      } catch (error) {
        throw writeError(error, 'jti already recorded');
      }
    },
    get: async (tenantId, jti) => {
      const filter = { jti: str(jti, 'jti'), tenant_id: str(tenantId, 'tenant_id') };
      const doc = await this.models.tokens.findOne(filter, PROJECTION).lean<StoredToken>();
      return doc ? toToken(doc) : null;
    },
    revoke: async (tenantId, jti, expiresAt) => {
      const filter = { jti: str(jti, 'jti'), tenant_id: str(tenantId, 'tenant_id') };
      const expires = date(expiresAt, 'expiresAt');
      const now = new Date();
      // One upsert on (tenant_id, jti): $min sets revoked_at when absent and keeps an earlier
      // one; a token minted elsewhere gets a record. $max keeps the revocation at least until
      // this token can no longer verify.
      const update = {
        $min: { revoked_at: now },
        $max: { purge_at: new Date(expires.getTime() + this.tokenGraceMs) },
        $setOnInsert: { room_id: '', user_id: '', token_sha256: '', expires_at: expires, created_at: now },
      };
      try {
        await this.models.tokens.updateOne(filter, update, { upsert: true });
      } catch (error) {
        // Two concurrent upserts of one (tenant, jti): the loser's retry matches the winner's record.
        if (!isDuplicateKey(error)) throw error;
        await this.models.tokens.updateOne(filter, update);
      }
    },
    isRevoked: async (tenantId, jti) => {
      const filter = { tenant_id: str(tenantId, 'tenant_id'), jti: str(jti, 'jti'), revoked_at: mongoose.trusted({ $ne: null }) };
      return (await this.models.tokens.exists(filter)) !== null;
    },
  };

  readonly sessions: SessionStore = {
    open: async (record) => {
      const doc = toStoredSession(record);
      str(doc.session_id, 'session_id');
      str(doc.tenant_id, 'tenant_id');
      str(doc.room_id, 'room_id');
      try {
        await this.models.sessions.create(doc);
      } catch (error) {
        throw writeError(error, 'session already exists');
      }
    },
    changeMode: async (sessionId, mode, at) => {
      const next = roomMode(mode);
      const when = date(at, 'at');
      // The guard makes it atomic: only a connected session not already in `next` changes.
      // The open segment ends where the pushed one starts (see toSegments).
      await this.models.sessions.updateOne(
        { session_id: str(sessionId, 'session_id'), disconnected_at: null, current_mode: mongoose.trusted({ $ne: next }) },
        { $push: { segments: { mode: next, from: when, to: null } }, $set: { current_mode: next } },
      );
    },
    close: async (sessionId, at, reason) => {
      // Only the first close counts; the open segment and duration_ms derive from disconnected_at.
      const when = date(at, 'at');
      await this.models.sessions.updateOne(
        { session_id: str(sessionId, 'session_id'), disconnected_at: null },
        { $set: { disconnected_at: when, ended_at: when, disconnect_reason: str(reason, 'reason'), current_mode: null } },
      );
    },
    touch: async (sessionIds, at) => {
      if (!Array.isArray(sessionIds)) throw new AppError('payload_invalid', 'sessionIds must be an array');
      const ids = sessionIds.map((id) => str(id, 'session_id'));
      if (ids.length === 0) return;
      await this.models.sessions.updateMany(
        { session_id: mongoose.trusted({ $in: ids }), ended_at: OPEN_END },
        { $set: { last_seen_at: date(at, 'at') } },
      );
    },
    closeLost: async (nodeId, now) => {
      const stale = staleBefore(date(now, 'now'), this.sessionStaleMs);
      // Each one ends at its own last_seen_at: an update pipeline reads it from the document.
      const closeAtLastSeen = [
        { $set: { disconnected_at: '$last_seen_at', ended_at: '$last_seen_at', disconnect_reason: LOST_REASON, current_mode: null } },
      ];
      let closed = 0;
      for (const filter of [
        { node_id: str(nodeId, 'node_id'), ended_at: OPEN_END },
        { ended_at: OPEN_END, last_seen_at: mongoose.trusted({ $lt: stale }) },
      ]) {
        const result = await this.models.sessions.updateMany(filter, closeAtLastSeen, { updatePipeline: true });
        closed += result.modifiedCount;
      }
      return closed;
    },
    /** Pages in (connected_at, session_id) order; the cursor is the last pair returned. */
    list: async (tenantId, filter: SessionFilter) => {
      const size = pageSize(filter.limit);
      const after = sessionOrder.decode(filter.cursor);
      const stale = staleBefore(new Date(), this.sessionStaleMs);
      const query: Record<string, unknown> = { tenant_id: str(tenantId, 'tenant_id') };
      const and: object[] = [];
      if (filter.room_id !== undefined) query.room_id = str(filter.room_id, 'room_id');
      // Top-level bounds on connected_at (the cursor's as well), so every page starts from the index.
      const connectedAt: Record<string, Date> = {};
      if (filter.to !== undefined) connectedAt.$lt = date(filter.to, 'to');
      if (after) connectedAt.$gte = after.connectedAt;
      if (Object.keys(connectedAt).length > 0) query.connected_at = mongoose.trusted(connectedAt);
      if (filter.from !== undefined) {
        const from = date(filter.from, 'from');
        query.ended_at = mongoose.trusted({ $gte: from });
        // A stale open session ended at its last_seen_at: drop it when that is before `from`.
        const bound = from < stale ? from : stale;
        and.push({ $or: [{ ended_at: mongoose.trusted({ $lt: OPEN_END }) }, { last_seen_at: mongoose.trusted({ $gte: bound }) }] });
      }
      if (after) {
        and.push({
          $or: [
            { connected_at: mongoose.trusted({ $gt: after.connectedAt }) },
            { connected_at: after.connectedAt, session_id: mongoose.trusted({ $gt: after.sessionId }) },
          ],
        });
      }
      if (and.length > 0) query.$and = and;
      const docs = await this.models.sessions
        .find(query, PROJECTION)
        .sort({ connected_at: 1, session_id: 1 })
        .limit(size + 1)
        .lean<StoredSession[]>();
      const sessions = docs.map((doc) => settledSession(toSession(doc), stale));
      return pageOfRows(sessions, size, sessionOrder, sessionKeyOf);
    },
    usage: async (tenantId, from, to): Promise<UsageRow[]> => {
      const start = date(from, 'from');
      const end = date(to, 'to');
      const now = new Date();
      const stale = staleBefore(now, this.sessionStaleMs);
      const rows = await this.models.sessions.aggregate<{ _id: { room_id: string; mode: RoomMode }; ms: number }>([
        // Overlapping [from, to), both bounds on the (tenant_id, ended_at, connected_at) index.
        { $match: { tenant_id: str(tenantId, 'tenant_id'), ended_at: { $gte: start }, connected_at: { $lt: end } } },
        // Where the session ends: its close, else its last heartbeat when stale, else now.
        {
          $project: {
            _id: 0,
            room_id: 1,
            segments: 1,
            end: {
              $cond: [{ $lt: ['$ended_at', OPEN_END] }, '$ended_at', { $cond: [{ $lt: ['$last_seen_at', stale] }, '$last_seen_at', now] }],
            },
          },
        },
        // Each segment ends at its stored `to`, else where the next one starts, else at the session's end (as toSegments).
        {
          $project: {
            room_id: 1,
            segments: {
              $map: {
                input: { $range: [0, { $size: '$segments' }] },
                as: 'i',
                in: {
                  $let: {
                    vars: { seg: { $arrayElemAt: ['$segments', '$$i'] }, next: { $arrayElemAt: ['$segments', { $add: ['$$i', 1] }] } },
                    in: { mode: '$$seg.mode', from: '$$seg.from', to: { $ifNull: ['$$seg.to', { $ifNull: ['$$next.from', '$end'] }] } },
                  },
                },
              },
            },
          },
        },
        { $unwind: '$segments' },
        // Milliseconds of the segment inside [from, to).
        {
          $project: {
            room_id: 1,
            mode: '$segments.mode',
            ms: { $max: [0, { $subtract: [{ $min: ['$segments.to', end] }, { $max: ['$segments.from', start] }] }] },
          },
        },
        { $match: { ms: { $gt: 0 } } },
        { $group: { _id: { room_id: '$room_id', mode: '$mode' }, ms: { $sum: '$ms' } } },
      ]);
      return rows
        .map((row) => ({ room_id: row._id.room_id, mode: row._id.mode, participant_minutes: row.ms / 60_000 }))
        .sort((a, b) => a.room_id.localeCompare(b.room_id) || a.mode.localeCompare(b.mode));
    },
  };

  /** Connects, then declares every index (idempotent; concurrent calls share one attempt). */
  init(): Promise<void> {
    if (this.closing) return Promise.reject(new Error('[MongoStore:init] store is closed'));
    this.initializing ??= this.connect().catch((error: unknown) => {
      this.initializing = null; // let a later init() try again
      throw error;
    });
    return this.initializing;
  }

  /** True when the server answers a ping within ~2 s; never throws. */
  async ping(): Promise<boolean> {
    const db = this.connection.db;
    if (this.closing || !this.initializing || !db) return false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), PING_TIMEOUT_MS);
    });
    const answer = db
      .command({ ping: 1 }, { signal: AbortSignal.timeout(PING_TIMEOUT_MS) })
      .then((reply) => reply.ok === 1)
      .catch(() => false);
    try {
      return await Promise.race([answer, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the connection; later and concurrent calls resolve with the first. */
  close(): Promise<void> {
    this.closing ??= this.connection.destroy().then(
      () => undefined,
      () => undefined, // a connection that never opened has nothing to release
    );
    return this.closing;
  }

  /** Connects (once; a failed attempt may be retried). */
  private open(): Promise<void> {
    if (this.closing) return Promise.reject(new Error('[MongoStore:open] store is closed'));
    this.opening ??= this.connection
      .openUri(this.uri, {
        dbName: databaseNameOf(this.uri),
        serverSelectionTimeoutMS: this.serverSelectionTimeoutMS,
        sanitizeFilter: true,
        autoIndex: false,
        autoCreate: false,
        bufferCommands: false,
      })
      .then(
        () => undefined,
        (error: unknown) => {
          this.opening = null;
          const reason = error instanceof Error ? error.message : String(error);
          throw new Error(`[MongoStore:init] cannot connect to ${describeUri(this.uri)}: ${reason}`, { cause: error });
        },
      );
    return this.opening;
  }

  private async connect(): Promise<void> {
    await this.open();
    if (this.migrateOnInit) {
      try {
        await this.migrate();
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new Error(`[MongoStore:init] cannot migrate indexes (MONGODB_MIGRATE): ${reason}`, { cause: error });
      }
      return;
    }
    try {
      for (const name of LEGACY_TOKEN_INDEXES) {
        await this.models.tokens.collection.dropIndex(name).catch((error: unknown) => {
          if ((error as { code?: unknown }).code !== INDEX_NOT_FOUND && (error as { codeName?: unknown }).codeName !== 'NamespaceNotFound')
            throw error;
        });
      }
      for (const model of Object.values(this.models) as Model<unknown>[]) await model.createIndexes();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      const hint = INDEX_CONFLICTS.has(String((error as { codeName?: unknown }).codeName))
        ? '; an index changed since this database was set up: run `switchboard migrate` (or boot once with MONGODB_MIGRATE=true)'
        : '';
      throw new Error(`[MongoStore:init] cannot declare indexes: ${reason}${hint}`, { cause: error });
    }
    await this.migrateRecordsOrThrow();
  }

  /**
   * Brings every collection's indexes to the declared ones (see mongoIndexPlan.ts: undeclared
   * ones dropped, a changed TTL altered with collMod, other changed options rebuilt, missing
   * ones created), then fills record fields earlier versions did not store. With dryRun it
   * only connects and returns the plan. Returns the changes planned (applied unless dryRun).
   */
  async migrate(options: { dryRun?: boolean } = {}): Promise<PlannedIndexChange[]> {
    await this.open();
    const planned: PlannedIndexChange[] = [];
    for (const model of Object.values(this.models) as Model<unknown>[]) {
      const collection = model.collection.collectionName;
      const existing = await model.collection
        .listIndexes()
        .toArray()
        .catch((error: unknown) => {
          if ((error as { code?: unknown }).code === NAMESPACE_NOT_FOUND) return []; // no collection yet: nothing to change
          throw error;
        });
      const changes = planIndexChanges(existing as ExistingIndex[], model.schema.indexes() as DeclaredIndex[]);
      for (const change of changes) planned.push({ collection, change, description: describeIndexChange(collection, change) });
      if (options.dryRun) continue;
      for (const change of changes) {
        if (change.action === 'drop' || change.action === 'rebuild') await model.collection.dropIndex(change.name);
        else if (change.action === 'ttl')
          await this.database().command({ collMod: collection, index: { keyPattern: change.key, expireAfterSeconds: change.to } });
        this.log?.info({ collection, index: change.name, action: change.action }, describeIndexChange(collection, change));
      }
      // Rebuilt and missing indexes.
      await model.createIndexes();
    }
    if (!options.dryRun) await this.migrateRecordsOrThrow();
    return planned;
  }

  private database(): NonNullable<Connection['db']> {
    const db = this.connection.db;
    if (!db) throw new Error('[MongoStore] not connected');
    return db;
  }

  private async migrateRecordsOrThrow(): Promise<void> {
    try {
      await this.migrateRecords();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`[MongoStore:init] cannot migrate records: ${reason}`, { cause: error });
    }
  }

  /** Fills the fields earlier versions did not store; a no-op once done. */
  private async migrateRecords(): Promise<void> {
    const missing = mongoose.trusted({ $exists: false });
    await this.models.tokens.updateMany({ purge_at: missing }, [{ $set: { purge_at: { $add: ['$expires_at', this.tokenGraceMs] } } }], {
      updatePipeline: true,
    });
    // Open sessions of earlier versions have no heartbeat: last seen at connection, so they are
    // stale and closeLost() ends them there rather than counting them up to now.
    await this.models.sessions.updateMany(
      { ended_at: missing },
      [
        {
          $set: {
            ended_at: { $ifNull: ['$disconnected_at', OPEN_END] },
            last_seen_at: { $ifNull: ['$last_seen_at', '$connected_at'] },
            node_id: { $ifNull: ['$node_id', ''] },
          },
        },
      ],
      { updatePipeline: true },
    );
  }
}
