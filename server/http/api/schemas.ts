/**
 * Schemas of the HTTP API: request bodies, queries and path parameters (strict: unknown keys,
 * operator objects and wrong types are refused), and the response shapes documented in the
 * OpenAPI document. Field names are snake_case, as on the wire.
 */
import { z } from 'zod';
import { ErrorCodes } from '../../../protocol/errors.js';
import { displayName, externalId, Limits, partialGrants, safeJsonObject, TRACK_SOURCES } from '../../../protocol/schemas.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../../store/paging.js';

/** 30 days: longer than any server maximum; the effective cap is applied by the handler. */
const MAX_DURATION_S = 30 * 24 * 3600;

/** A JSON object of bounded size with safe keys (see safeJsonObject). */
export const metadataSchema = safeJsonObject().meta({
  type: 'object',
  description: `JSON object, at most ${Limits.metadataBytes} bytes and ${Limits.metadataDepth} levels; no $-prefixed, dotted, NUL or prototype keys`,
});

export const isoDateTime = z.iso.datetime({ offset: true }).describe('ISO 8601 date-time, e.g. 2030-01-01T00:00:00Z');

export const grantsSchema = partialGrants.describe('Grants; with a role they override the preset, without one unnamed grants are false');

export const tenantLimitsSchema = z.strictObject({
  max_rooms: z.number().int().min(1).max(1_000_000).optional(),
  max_participants: z.number().int().min(1).max(10_000).optional(),
  mesh_threshold: z.number().int().min(1).max(1000).optional(),
  max_token_lifetime_s: z.number().int().min(60).max(MAX_DURATION_S).optional(),
  auto_create_rooms: z.boolean().optional(),
  max_screen_shares: z.number().int().min(0).max(100).optional(),
});

export const webhookInput = z.strictObject({
  url: z.string().min(1).max(2048).describe('http(s) URL receiving signed POSTs'),
  secret: z.string().min(16).max(256).optional().describe('HMAC-SHA256 key; generated (and shown once) when absent'),
});

// ---- path parameters ----
export const roomParams = z.strictObject({ roomId: externalId });
export const participantParams = z.strictObject({ roomId: externalId, userId: externalId });

// ---- queries (values are strings; a repeated key becomes an array and is refused) ----
export const emptyQuery = z.strictObject({});
const limitQuery = z
  .string()
  .regex(/^\d{1,3}$/, 'must be an integer')
  .transform(Number)
  .pipe(z.number().int().min(1).max(MAX_PAGE_SIZE))
  .optional()
  .describe(`page size, 1-${MAX_PAGE_SIZE} (default ${DEFAULT_PAGE_SIZE})`);
const cursorQuery = z
  .string()
  .max(512)
  .regex(/^[A-Za-z0-9_-]+$/, 'must be a cursor returned by a previous page')
  .optional()
  .describe('next_cursor of the previous page');

export const pageQuery = z.strictObject({ limit: limitQuery, cursor: cursorQuery });
export const roomListQuery = pageQuery.extend({
  live: z.enum(['true', 'false']).optional().describe('true: the live rooms instead (stored or created by a join), in room_id order'),
});
export const participantsQuery = z.strictObject({
  include_hidden: z.enum(['true', 'false']).optional().describe('also list hidden participants (recorders), marked hidden: true'),
});
/** The widest [from, to) of /usage and /sessions: bounds the sessions one request reads. */
export const MAX_WINDOW_DAYS = 31;
const MAX_WINDOW_MS = MAX_WINDOW_DAYS * 24 * 3600 * 1000;
const windowMessage = `from and to must be at most ${MAX_WINDOW_DAYS} days apart`;

export const sessionsQuery = z
  .strictObject({
    room_id: externalId.optional(),
    from: isoDateTime.optional().describe('sessions still open at or after this instant'),
    to: isoDateTime.optional().describe('sessions that started before this instant'),
    limit: limitQuery,
    cursor: cursorQuery,
  })
  .refine((q) => !q.from || !q.to || Date.parse(q.from) < Date.parse(q.to), { message: 'from must be before to', path: ['from'] })
  .refine((q) => !q.from || !q.to || Date.parse(q.to) - Date.parse(q.from) <= MAX_WINDOW_MS, { message: windowMessage, path: ['to'] });
export const usageQuery = z
  .strictObject({ from: isoDateTime, to: isoDateTime })
  .refine((q) => Date.parse(q.from) < Date.parse(q.to), { message: 'from must be before to', path: ['from'] })
  .refine((q) => Date.parse(q.to) - Date.parse(q.from) <= MAX_WINDOW_MS, { message: windowMessage, path: ['to'] });

// ---- request bodies ----
export const createTenantBody = z.strictObject({
  name: z.string().min(1).max(256),
  limits: tenantLimitsSchema.optional().describe('overrides of the server defaults'),
  webhook: webhookInput.optional(),
});

export const createTokenBody = z.strictObject({
  room_id: externalId,
  user_id: externalId.optional().describe('generated when absent'),
  user_name: displayName,
  duration: z
    .number()
    .int()
    .min(1)
    .max(MAX_DURATION_S)
    .optional()
    .describe('seconds (default 3600), capped by the tenant and server maximum token lifetime'),
  role: z
    .string()
    .regex(/^[a-z][a-z0-9_-]{0,31}$/, 'must be a role name')
    .optional()
    .describe(
      'grant preset from the server config (host, presenter, guest, listener, recorder, ...); guest when neither role nor grants is given',
    ),
  grants: grantsSchema.optional(),
  metadata: metadataSchema.optional(),
});

export const revokeTokenBody = z.strictObject({
  jti: z
    .string()
    .min(8)
    .max(128)
    .regex(/^[A-Za-z0-9_.:-]+$/, 'must be a token id'),
});

const roomFields = {
  name: z.string().max(Limits.nameLength).optional(),
  description: z.string().max(4096).optional(),
  max_participants: z.number().int().min(1).max(10_000).nullable().optional().describe('null: the tenant default'),
  mesh_threshold: z.number().int().min(1).max(1000).nullable().optional().describe('null: the tenant default'),
  max_screen_shares: z
    .number()
    .int()
    .min(0)
    .max(100)
    .nullable()
    .optional()
    .describe('screen shares at once; one more is refused with quota_exceeded. null: the tenant default'),
  mode: z.enum(['auto', 'mesh', 'sfu']).optional(),
  locked: z.boolean().optional(),
  metadata: metadataSchema.optional(),
  expires_at: isoDateTime.nullable().optional().describe('future instant at which the room closes (reason "expired"); null: never'),
};
export const createRoomBody = z.strictObject({ room_id: externalId, ...roomFields });
export const updateRoomBody = z.strictObject(roomFields).refine((b) => Object.keys(b).length > 0, { message: 'give at least one field' });

// ---- responses (documentation) ----
const dateTime = z.string().meta({ format: 'date-time' });
const grantsOut = z.object({
  roomJoin: z.boolean(),
  canPublish: z.boolean(),
  canSubscribe: z.boolean(),
  canPublishData: z.boolean(),
  roomAdmin: z.boolean(),
  hidden: z.boolean(),
  canUpdateOwnMetadata: z.boolean(),
  canPublishSources: z.array(z.enum(TRACK_SOURCES)).optional().describe('sources it may publish; absent: every source'),
});
const limitsOut = z.object({
  max_rooms: z.number().int(),
  max_participants: z.number().int(),
  mesh_threshold: z.number().int(),
  max_token_lifetime_s: z.number().int(),
  auto_create_rooms: z.boolean(),
  max_screen_shares: z.number().int(),
});
const jsonObject = z.record(z.string(), z.unknown());
const iceServerOut = z.object({
  urls: z.union([z.string(), z.array(z.string())]),
  username: z.string().optional(),
  credential: z.string().optional(),
});

export const errorResponse = z.object({
  error: z.object({ code: z.enum(Object.keys(ErrorCodes) as [keyof typeof ErrorCodes]), message: z.string() }),
});

export const tenantCreatedResponse = z.object({
  tenant_id: z.string(),
  name: z.string(),
  api_key: z.string().describe('public identifier of the tenant'),
  api_secret: z.string().describe('Bearer secret for the tenant API; shown only in this response, stored as a sha256 hash'),
  limits: limitsOut,
  webhook: z.object({ url: z.string(), secret: z.string().describe('shown only here') }).nullable(),
  created_at: dateTime,
});

export const webhookResponse = z.object({ url: z.string(), secret: z.string().describe('shown only in the PUT response') });
export const webhookStatusResponse = z.object({ webhook: z.object({ url: z.string() }).nullable() });

export const tokenResponse = z.object({
  token: z.string().describe('JWT for the Socket.IO handshake: io(ws_url, {auth:{token}})'),
  expires_at: dateTime,
  room_id: z.string(),
  user_id: z.string(),
  user_name: z.string(),
  jti: z.string().describe('token id, for POST /api/v1/tokens/revoke'),
  grants: grantsOut,
  ws_url: z.string(),
  ice_servers: z.array(iceServerOut),
});
export const revokeResponse = z.object({ jti: z.string(), revoked: z.literal(true) });

export const participantResponse = z.object({
  id: z.string().describe('server-assigned peer id of this connection'),
  user_id: z.string(),
  name: z.string(),
  metadata: jsonObject,
  joined_at: dateTime,
  hidden: z.boolean(),
  tracks: z
    .array(
      z.object({ track_id: z.string(), kind: z.enum(['audio', 'video']), source: z.enum(TRACK_SOURCES), stream_id: z.string().optional() }),
    )
    .optional()
    .describe('present while it publishes tracks: each with its source (camera, microphone, screen, screen_audio)'),
  reconnecting: z
    .literal(true)
    .optional()
    .describe('present while its connection dropped and its place is held for it to come back (RESUME_GRACE_MS)'),
});
export const participantsResponse = z.object({ participants: z.array(participantResponse) });

export const roomResponse = z.object({
  room_id: z.string(),
  name: z.string(),
  description: z.string(),
  max_participants: z.number().int().describe('effective value (room, else tenant, else server default)'),
  mesh_threshold: z.number().int().describe('effective value'),
  max_screen_shares: z.number().int().describe('effective value'),
  mode: z.enum(['auto', 'mesh', 'sfu']).describe('topology policy'),
  locked: z.boolean(),
  metadata: jsonObject,
  expires_at: dateTime.nullable(),
  created_at: dateTime,
  updated_at: dateTime,
  stored: z.boolean().describe('false for a live room created by a join (auto_create_rooms) and never stored'),
  live: z.boolean(),
  current_mode: z.enum(['mesh', 'sfu']).nullable().describe('topology of the live room, null when not live'),
  num_participants: z.number().int().describe('live connections, hidden ones included'),
  participants: z.array(participantResponse).optional().describe('visible live participants (GET one room only)'),
});
export const roomListResponse = z.object({ rooms: z.array(roomResponse), next_cursor: z.string().nullable() });

export const sessionResponse = z.object({
  session_id: z.string(),
  room_id: z.string(),
  user_id: z.string(),
  jti: z.string(),
  peer_id: z.string(),
  address: z.string().describe('client address seen by the server'),
  connected_at: dateTime,
  disconnected_at: dateTime.nullable(),
  duration_ms: z.number().nullable(),
  disconnect_reason: z.string().nullable(),
  segments: z.array(z.object({ mode: z.enum(['mesh', 'sfu']), from: dateTime, to: dateTime.nullable() })),
});
export const sessionListResponse = z.object({ sessions: z.array(sessionResponse), next_cursor: z.string().nullable() });

const byMode = z.object({ mesh: z.number(), sfu: z.number() });
export const usageResponse = z.object({
  from: dateTime,
  to: dateTime,
  participant_minutes: z.number(),
  by_mode: byMode,
  by_room: z.array(z.object({ room_id: z.string(), participant_minutes: z.number(), by_mode: byMode })),
});
