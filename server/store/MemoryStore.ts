import { AppError } from '../errors.js';
import {
  summarizeUsage,
  type Page,
  type RoomPatch,
  type RoomRecord,
  type SessionFilter,
  type SessionRecord,
  type Store,
  type TenantRecord,
  type TokenRecord,
  type UsageRow,
} from './Store.js';

const clone = <T>(value: T): T => structuredClone(value);

/** Cursor = index into an insertion-ordered list, base64url so callers treat it as opaque. */
const encodeCursor = (index: number): string => Buffer.from(String(index)).toString('base64url');
function decodeCursor(cursor: string | null | undefined): number {
  if (!cursor) return 0;
  const index = Number(Buffer.from(cursor, 'base64url').toString());
  if (!Number.isInteger(index) || index < 0) throw new AppError('payload_invalid', 'cursor is not valid');
  return index;
}

function paginate<T>(items: T[], limit: number, cursor: string | null | undefined): Page<T> {
  const start = decodeCursor(cursor);
  const slice = items.slice(start, start + limit);
  return { items: slice.map(clone), next: start + limit < items.length ? encodeCursor(start + limit) : null };
}

/**
 * The embedded default store: everything in process memory, lost on restart. Values are
 * cloned in and out so callers cannot mutate stored state by accident.
 * Expired token records are swept lazily (the in-memory twin of Mongo's TTL index).
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly tenantsById = new Map<string, TenantRecord>();
  private readonly tenantIdByApiKey = new Map<string, string>();
  /** tenant -> room id -> record */
  private readonly roomsByTenant = new Map<string, Map<string, RoomRecord>>();
  private readonly tokensByJti = new Map<string, TokenRecord>();
  private readonly sessionsById = new Map<string, SessionRecord>();
  /** tenant -> sessions in insertion order */
  private readonly sessionsByTenant = new Map<string, SessionRecord[]>();
  private lastTokenSweep = Date.now();

  readonly tenants = {
    create: async (record: TenantRecord): Promise<void> => {
      if (this.tenantsById.has(record.tenant_id) || this.tenantIdByApiKey.has(record.api_key)) {
        throw new AppError('conflict', 'tenant already exists');
      }
      this.tenantsById.set(record.tenant_id, clone(record));
      this.tenantIdByApiKey.set(record.api_key, record.tenant_id);
    },
    get: async (tenantId: string): Promise<TenantRecord | null> => {
      const record = this.tenantsById.get(tenantId);
      return record ? clone(record) : null;
    },
    getByApiKey: async (apiKey: string): Promise<TenantRecord | null> => {
      const tenantId = this.tenantIdByApiKey.get(apiKey);
      return tenantId ? this.tenants.get(tenantId) : null;
    },
    update: async (tenantId: string, patch: Partial<Pick<TenantRecord, 'name' | 'limits' | 'webhook'>>): Promise<TenantRecord | null> => {
      const record = this.tenantsById.get(tenantId);
      if (!record) return null;
      Object.assign(record, clone(patch));
      return clone(record);
    },
  };

  readonly rooms = {
    create: async (record: RoomRecord): Promise<void> => {
      const rooms = this.roomsOf(record.tenant_id);
      if (rooms.has(record.room_id)) throw new AppError('conflict', `room "${record.room_id}" already exists`);
      rooms.set(record.room_id, clone(record));
    },
    get: async (tenantId: string, roomId: string): Promise<RoomRecord | null> => {
      const record = this.roomsByTenant.get(tenantId)?.get(roomId);
      return record ? clone(record) : null;
    },
    list: async (tenantId: string, limit: number, cursor?: string | null): Promise<Page<RoomRecord>> => {
      return paginate([...(this.roomsByTenant.get(tenantId)?.values() ?? [])], limit, cursor);
    },
    count: async (tenantId: string): Promise<number> => this.roomsByTenant.get(tenantId)?.size ?? 0,
    update: async (tenantId: string, roomId: string, patch: RoomPatch): Promise<RoomRecord | null> => {
      const record = this.roomsByTenant.get(tenantId)?.get(roomId);
      if (!record) return null;
      Object.assign(record, clone(patch), { updated_at: new Date() });
      return clone(record);
    },
    delete: async (tenantId: string, roomId: string): Promise<boolean> => this.roomsByTenant.get(tenantId)?.delete(roomId) ?? false,
  };

  readonly tokens = {
    record: async (record: TokenRecord): Promise<void> => {
      this.sweepTokens();
      if (this.tokensByJti.has(record.jti)) throw new AppError('conflict', 'jti already recorded');
      this.tokensByJti.set(record.jti, clone(record));
    },
    get: async (tenantId: string, jti: string): Promise<TokenRecord | null> => {
      const record = this.tokensByJti.get(jti);
      return record && record.tenant_id === tenantId ? clone(record) : null;
    },
    revoke: async (tenantId: string, jti: string, expiresAt: Date): Promise<void> => {
      const existing = this.tokensByJti.get(jti);
      if (existing) {
        // A jti of another tenant is not ours to revoke; behave as if unknown.
        if (existing.tenant_id !== tenantId) throw new AppError('not_found', 'token not found');
        existing.revoked_at ??= new Date();
        return;
      }
      this.tokensByJti.set(jti, {
        jti,
        tenant_id: tenantId,
        room_id: '',
        user_id: '',
        token_sha256: '',
        expires_at: expiresAt,
        revoked_at: new Date(),
        created_at: new Date(),
      });
    },
    isRevoked: async (jti: string): Promise<boolean> => Boolean(this.tokensByJti.get(jti)?.revoked_at),
  };

  readonly sessions = {
    open: async (record: SessionRecord): Promise<void> => {
      const stored = clone(record);
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
        open.to = at;
      }
      session.segments.push({ mode, from: at, to: null });
    },
    close: async (sessionId: string, at: Date, reason: string): Promise<void> => {
      const session = this.sessionsById.get(sessionId);
      if (!session || session.disconnected_at) return;
      const open = session.segments.at(-1);
      if (open && open.to === null) open.to = at;
      session.disconnected_at = at;
      session.duration_ms = at.getTime() - session.connected_at.getTime();
      session.disconnect_reason = reason;
    },
    list: async (tenantId: string, filter: SessionFilter): Promise<Page<SessionRecord>> => {
      const matching = (this.sessionsByTenant.get(tenantId) ?? []).filter(
        (s) =>
          (filter.room_id === undefined || s.room_id === filter.room_id) &&
          (filter.to === undefined || s.connected_at < filter.to) &&
          (filter.from === undefined || s.disconnected_at === null || s.disconnected_at >= filter.from),
      );
      return paginate(matching, filter.limit, filter.cursor);
    },
    usage: async (tenantId: string, from: Date, to: Date): Promise<UsageRow[]> => {
      return summarizeUsage(this.sessionsByTenant.get(tenantId) ?? [], from, to, new Date());
    },
  };

  async init(): Promise<void> {}

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {}

  private roomsOf(tenantId: string): Map<string, RoomRecord> {
    let rooms = this.roomsByTenant.get(tenantId);
    if (!rooms) {
      rooms = new Map();
      this.roomsByTenant.set(tenantId, rooms);
    }
    return rooms;
  }

  /** Drops token records past their expiry; a revoked jti cannot outlive its token anyway. */
  private sweepTokens(): void {
    const now = Date.now();
    if (now - this.lastTokenSweep < 60_000) return;
    this.lastTokenSweep = now;
    for (const [jti, record] of this.tokensByJti) if (record.expires_at.getTime() < now) this.tokensByJti.delete(jti);
  }
}
