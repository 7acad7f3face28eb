/**
 * Records as Redis hashes: one field per top-level record field, each holding that field's
 * value as JSON, dates as ms numbers. Records are mapped field by field both ways, so nothing
 * undeclared (an API secret spread in by mistake) is ever stored or returned, and every record
 * read is a new object.
 */
import type { JsonValue, Metadata, RoomMode, RoomModePolicy } from '../../protocol/events.js';
import { AppError } from '../errors.js';
import { limitsFields, webhookFields } from './records.js';
import {
  DECLARED_TENANT_FIELDS,
  type ModeSegment,
  type RoomPatch,
  type RoomRecord,
  type SessionRecord,
  type TenantRecord,
  type TokenRecord,
} from './Store.js';

/** A record as hash fields: field name -> JSON value. */
export type HashFields = Record<string, JsonValue>;

/** HSET's arguments for these fields: name, JSON text, name, JSON text, ... */
export function hashArgs(fields: HashFields): string[] {
  return Object.entries(fields).flatMap(([name, value]) => [name, JSON.stringify(value)]);
}

/** HGETALL's reply inside a script (name, value, name, value, ...) as an object. */
export function hashOfPairs(pairs: readonly string[]): Record<string, string> {
  const hash: Record<string, string> = {};
  for (let i = 0; i + 1 < pairs.length; i += 2) hash[pairs[i] as string] = pairs[i + 1] as string;
  return hash;
}

/** Reads the JSON fields of one stored hash; a missing or malformed field is an error, never a default. */
class StoredHash {
  constructor(
    private readonly hash: Record<string, string>,
    private readonly what: string,
  ) {}

  value(name: string): unknown {
    const text = this.hash[name];
    if (text === undefined) throw new Error(`[RedisStore] stored ${this.what} has no field ${name}`);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new Error(`[RedisStore] stored ${this.what} has a malformed field ${name}`);
    }
  }

  has(name: string): boolean {
    return this.hash[name] !== undefined;
  }

  string(name: string): string {
    return this.typed(name, 'string') as string;
  }

  number(name: string): number {
    return this.typed(name, 'number') as number;
  }

  boolean(name: string): boolean {
    return this.typed(name, 'boolean') as boolean;
  }

  nullableNumber(name: string): number | null {
    return this.value(name) === null ? null : this.number(name);
  }

  nullableString(name: string): string | null {
    return this.value(name) === null ? null : this.string(name);
  }

  date(name: string): Date {
    return new Date(this.number(name));
  }

  nullableDate(name: string): Date | null {
    const ms = this.nullableNumber(name);
    return ms === null ? null : new Date(ms);
  }

  object(name: string): Record<string, unknown> {
    const value = this.value(name);
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new Error(`[RedisStore] stored ${this.what} field ${name} is not an object`);
    return value as Record<string, unknown>;
  }

  private typed(name: string, type: 'string' | 'number' | 'boolean'): unknown {
    const value = this.value(name);
    if (typeof value !== type) throw new Error(`[RedisStore] stored ${this.what} field ${name} is not a ${type}`);
    return value;
  }
}

/** A date as stored: its ms; anything but a valid Date is payload_invalid. */
function ms(date: Date): number {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw new AppError('payload_invalid', 'dates must be valid Dates');
  return date.getTime();
}

const nullableMs = (date: Date | null | undefined): number | null => (date === null || date === undefined ? null : ms(date));

// ---- tenants ----

export function tenantHash(record: TenantRecord): HashFields {
  return {
    tenant_id: record.tenant_id,
    name: record.name,
    api_key: record.api_key,
    api_secret_sha256: record.api_secret_sha256,
    limits: limitsFields(record.limits),
    webhook: webhookFields(record.webhook),
    created_at: ms(record.created_at),
  };
}

/**
 * A tenant upsert's hash fields: the declared ones (DECLARED_TENANT_FIELDS), set on create and
 * on update, and the rest of the record, set only when the upsert creates it.
 */
export function tenantUpsertHashes(record: TenantRecord): { declared: HashFields; createOnly: HashFields } {
  const all = tenantHash(record);
  const declared: HashFields = {};
  const createOnly: HashFields = {};
  for (const [name, value] of Object.entries(all)) {
    if ((DECLARED_TENANT_FIELDS as readonly string[]).includes(name)) declared[name] = value;
    else createOnly[name] = value;
  }
  return { declared, createOnly };
}

/** A string field as HGET/HMGET return it (its JSON text), as the string. */
export function storedString(text: string, what: string): string {
  return new StoredHash({ [what]: text }, 'tenant').string(what);
}

/** The fields a tenant update may set: name, limits, webhook (undefined: unchanged). */
export function tenantPatchHash(patch: Partial<Pick<TenantRecord, 'name' | 'limits' | 'webhook'>>): HashFields {
  const fields: HashFields = {};
  if (patch.name !== undefined) fields.name = patch.name;
  if (patch.limits !== undefined) fields.limits = limitsFields(patch.limits);
  if (patch.webhook !== undefined) fields.webhook = webhookFields(patch.webhook);
  return fields;
}

export function tenantOfHash(hash: Record<string, string>): TenantRecord {
  const h = new StoredHash(hash, 'tenant');
  const limits = new StoredHash(stringifyValues(h.object('limits')), 'tenant limits');
  const webhook = h.value('webhook') === null ? null : new StoredHash(stringifyValues(h.object('webhook')), 'tenant webhook');
  return {
    tenant_id: h.string('tenant_id'),
    name: h.string('name'),
    api_key: h.string('api_key'),
    api_secret_sha256: h.string('api_secret_sha256'),
    limits: {
      max_rooms: limits.number('max_rooms'),
      max_participants: limits.number('max_participants'),
      mesh_threshold: limits.number('mesh_threshold'),
      max_token_lifetime_s: limits.number('max_token_lifetime_s'),
      auto_create_rooms: limits.boolean('auto_create_rooms'),
      ...(limits.has('max_screen_shares') ? { max_screen_shares: limits.number('max_screen_shares') } : {}),
    },
    webhook: webhook ? { url: webhook.string('url'), secret: webhook.string('secret') } : null,
    created_at: h.date('created_at'),
  };
}

/** A parsed object's values as JSON texts, to read it with StoredHash's checks. */
function stringifyValues(object: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(object).map(([key, value]) => [key, JSON.stringify(value)]));
}

// ---- rooms ----

export function roomHash(record: RoomRecord): HashFields {
  return {
    tenant_id: record.tenant_id,
    room_id: record.room_id,
    name: record.name,
    description: record.description,
    max_participants: record.max_participants ?? null,
    mesh_threshold: record.mesh_threshold ?? null,
    max_screen_shares: record.max_screen_shares ?? null,
    mode: record.mode,
    locked: record.locked,
    metadata: record.metadata ?? {},
    expires_at: nullableMs(record.expires_at),
    created_at: ms(record.created_at),
    updated_at: ms(record.updated_at),
  };
}

/** The fields a room update sets: the patch's allowed, defined fields and updated_at. */
export function roomPatchHash(patch: RoomPatch, updatedAt: Date): HashFields {
  const fields: HashFields = {};
  if (patch.name !== undefined) fields.name = patch.name;
  if (patch.description !== undefined) fields.description = patch.description;
  if (patch.max_participants !== undefined) fields.max_participants = patch.max_participants;
  if (patch.mesh_threshold !== undefined) fields.mesh_threshold = patch.mesh_threshold;
  if (patch.max_screen_shares !== undefined) fields.max_screen_shares = patch.max_screen_shares;
  if (patch.mode !== undefined) fields.mode = patch.mode;
  if (patch.locked !== undefined) fields.locked = patch.locked;
  if (patch.metadata !== undefined) fields.metadata = patch.metadata;
  if (patch.expires_at !== undefined) fields.expires_at = nullableMs(patch.expires_at);
  fields.updated_at = ms(updatedAt);
  return fields;
}

export function roomOfHash(hash: Record<string, string>): RoomRecord {
  const h = new StoredHash(hash, 'room');
  return {
    tenant_id: h.string('tenant_id'),
    room_id: h.string('room_id'),
    name: h.string('name'),
    description: h.string('description'),
    max_participants: h.nullableNumber('max_participants'),
    mesh_threshold: h.nullableNumber('mesh_threshold'),
    max_screen_shares: h.has('max_screen_shares') ? h.nullableNumber('max_screen_shares') : null,
    mode: h.string('mode') as RoomModePolicy,
    locked: h.boolean('locked'),
    metadata: h.object('metadata') as Metadata,
    expires_at: h.nullableDate('expires_at'),
    created_at: h.date('created_at'),
    updated_at: h.date('updated_at'),
  };
}

// ---- tokens: revoked_at is a field of its own, absent until revoked ----

/** Every field of a token record but revoked_at. */
export function tokenHash(record: Omit<TokenRecord, 'revoked_at'>): HashFields {
  return {
    jti: record.jti,
    tenant_id: record.tenant_id,
    room_id: record.room_id,
    user_id: record.user_id,
    token_sha256: record.token_sha256,
    expires_at: ms(record.expires_at),
    created_at: ms(record.created_at),
  };
}

export function tokenOfHash(hash: Record<string, string>): TokenRecord {
  const h = new StoredHash(hash, 'token');
  return {
    jti: h.string('jti'),
    tenant_id: h.string('tenant_id'),
    room_id: h.string('room_id'),
    user_id: h.string('user_id'),
    token_sha256: h.string('token_sha256'),
    expires_at: h.date('expires_at'),
    revoked_at: h.has('revoked_at') ? h.date('revoked_at') : null,
    created_at: h.date('created_at'),
  };
}

// ---- sessions ----

/**
 * A session as stored: a segment's `to` is stored only when given at open(), otherwise it
 * ends where the next segment starts, or at disconnected_at (sessionOfHash); current_mode is
 * the open segment's mode while connected, else null (the guard of changeMode); duration_ms
 * is derived on read.
 */
export function sessionHash(record: SessionRecord): HashFields {
  const segments = record.segments.map((segment) => ({ mode: segment.mode, from: ms(segment.from), to: nullableMs(segment.to) }));
  const last = record.segments.at(-1);
  return {
    session_id: record.session_id,
    tenant_id: record.tenant_id,
    room_id: record.room_id,
    user_id: record.user_id,
    jti: record.jti,
    peer_id: record.peer_id,
    address: record.address,
    node_id: record.node_id,
    connected_at: ms(record.connected_at),
    last_seen_at: ms(record.last_seen_at),
    disconnected_at: nullableMs(record.disconnected_at),
    disconnect_reason: record.disconnected_at ? record.disconnect_reason : null,
    segments,
    current_mode: !record.disconnected_at && last && last.to === null ? last.mode : null,
  };
}

/** A segment appended by changeMode, as the JSON element the script appends. */
export function segmentJson(mode: RoomMode, from: Date): string {
  return JSON.stringify({ mode, from: ms(from), to: null });
}

export function sessionOfHash(hash: Record<string, string>): SessionRecord {
  const h = new StoredHash(hash, 'session');
  const connectedAt = h.date('connected_at');
  const disconnectedAt = h.nullableDate('disconnected_at');
  const stored = h.value('segments');
  if (!Array.isArray(stored)) throw new Error('[RedisStore] stored session field segments is not an array');
  const segments = stored.map((value, i): ModeSegment => {
    const segment = new StoredHash(stringifyValues(value as Record<string, unknown>), 'session segment');
    const next = stored[i + 1] as { from?: unknown } | undefined;
    const to = segment.nullableNumber('to') ?? (typeof next?.from === 'number' ? next.from : null);
    return { mode: segment.string('mode') as RoomMode, from: segment.date('from'), to: to !== null ? new Date(to) : disconnectedAt };
  });
  return {
    session_id: h.string('session_id'),
    tenant_id: h.string('tenant_id'),
    room_id: h.string('room_id'),
    user_id: h.string('user_id'),
    jti: h.string('jti'),
    peer_id: h.string('peer_id'),
    address: h.string('address'),
    node_id: h.string('node_id'),
    connected_at: connectedAt,
    last_seen_at: h.date('last_seen_at'),
    disconnected_at: disconnectedAt,
    duration_ms: disconnectedAt ? disconnectedAt.getTime() - connectedAt.getTime() : null,
    disconnect_reason: h.nullableString('disconnect_reason'),
    segments,
  };
}

/** What a session id leads to: enough to name every key of the session without reading it. */
export interface SessionLocator {
  tenant_id: string;
  room_id: string;
  node_id: string;
  connected_at: number;
}

export function locatorOf(record: SessionRecord): SessionLocator {
  return { tenant_id: record.tenant_id, room_id: record.room_id, node_id: record.node_id, connected_at: ms(record.connected_at) };
}

export function parseLocator(text: string): SessionLocator {
  const h = new StoredHash(stringifyValues(JSON.parse(text) as Record<string, unknown>), 'session locator');
  return {
    tenant_id: h.string('tenant_id'),
    room_id: h.string('room_id'),
    node_id: h.string('node_id'),
    connected_at: h.number('connected_at'),
  };
}
