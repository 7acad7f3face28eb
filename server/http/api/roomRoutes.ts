/** Tenant: rooms (stored and live) and their live participants. */
import type { RoomConfigInfo } from '../../../protocol/events.js';
import { LocalLiveRooms, type LiveRoomView, type LiveRooms } from '../../cluster/LiveRooms.js';
import { AppError } from '../../errors.js';
import { DEFAULT_PAGE_SIZE, pageAfter, roomOrder } from '../../store/paging.js';
import type { RoomPatch, RoomRecord, TenantRecord } from '../../store/Store.js';
import type { ApiContext } from './context.js';
import { defineRoute, type ApiRoute } from './routes.js';
import {
  createRoomBody,
  roomListQuery,
  participantParams,
  participantsQuery,
  participantsResponse,
  roomListResponse,
  roomParams,
  roomResponse,
  updateRoomBody,
} from './schemas.js';
import { participantsOf, roomView } from './views.js';

type RoomFields = Partial<{
  name: string;
  description: string;
  max_participants: number | null;
  mesh_threshold: number | null;
  max_screen_shares: number | null;
  mode: RoomRecord['mode'];
  locked: boolean;
  metadata: Record<string, unknown>;
  expires_at: string | null;
}>;

/** Runs creations of one tenant one at a time, so the max_rooms check and the insert cannot interleave (on this node). */
class TenantSerializer {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(tenantId: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(tenantId) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.catch(() => undefined);
    this.tails.set(tenantId, tail);
    void tail.then(() => {
      if (this.tails.get(tenantId) === tail) this.tails.delete(tenantId);
    });
    return result;
  }
}

/** Checks the fields against the tenant's limits and the clock; returns the store patch. */
function roomPatch(tenant: TenantRecord, fields: RoomFields): RoomPatch {
  if (typeof fields.max_participants === 'number' && fields.max_participants > tenant.limits.max_participants) {
    throw new AppError('quota_exceeded', `max_participants exceeds the tenant limit (${tenant.limits.max_participants})`);
  }
  let expiresAt: Date | null | undefined;
  if (fields.expires_at !== undefined) {
    expiresAt = fields.expires_at === null ? null : new Date(fields.expires_at);
    if (expiresAt && expiresAt.getTime() <= Date.now()) throw new AppError('payload_invalid', 'body.expires_at: must be in the future');
  }
  const patch: RoomPatch = {};
  if (fields.name !== undefined) patch.name = fields.name;
  if (fields.description !== undefined) patch.description = fields.description;
  if (fields.max_participants !== undefined) patch.max_participants = fields.max_participants;
  if (fields.mesh_threshold !== undefined) patch.mesh_threshold = fields.mesh_threshold;
  if (fields.max_screen_shares !== undefined) patch.max_screen_shares = fields.max_screen_shares;
  if (fields.mode !== undefined) patch.mode = fields.mode;
  if (fields.locked !== undefined) patch.locked = fields.locked;
  if (fields.metadata !== undefined) patch.metadata = fields.metadata as RoomRecord['metadata'];
  if (expiresAt !== undefined) patch.expires_at = expiresAt;
  return patch;
}

export function roomRoutes(ctx: ApiContext): ApiRoute[] {
  const creations = new TenantSerializer();
  // Live rooms wherever they run (the owner node in a cluster); this node's own rooms when the server wires none.
  const live: LiveRooms =
    ctx.liveRooms ??
    new LocalLiveRooms({
      rooms: ctx.rooms,
      store: ctx.store,
      disconnectToken: (tenantId, jti) => ctx.gateway.disconnectToken(tenantId, jti),
    });

  /**
   * Applies the changed settings to the live room at once (peers get room_updated), and re-arms
   * its expiry. Called right after the store write. The live room after it, or null.
   */
  function applyToLive(tenant: TenantRecord, record: RoomRecord, patch: RoomPatch): Promise<LiveRoomView | null> {
    const resolved = ctx.rooms.resolveConfig(tenant, record);
    const config: Partial<RoomConfigInfo> = {};
    if (patch.max_participants !== undefined) config.max_participants = resolved.max_participants;
    if (patch.mesh_threshold !== undefined) config.mesh_threshold = resolved.mesh_threshold;
    if (patch.max_screen_shares !== undefined) config.max_screen_shares = resolved.max_screen_shares;
    if (patch.mode !== undefined) config.mode_policy = resolved.mode_policy;
    if (patch.locked !== undefined) config.locked = resolved.locked;
    return live.apply(tenant.tenant_id, record.room_id, {
      config,
      ...(patch.expires_at !== undefined ? { expiresAt: patch.expires_at } : {}),
    });
  }

  /** Stores a new room record (quota-checked) and applies it to a live room of that id; with the live room after it. */
  function createRecord(
    tenant: TenantRecord,
    roomId: string,
    fields: RoomFields,
  ): Promise<{ record: RoomRecord; live: LiveRoomView | null }> {
    const patch = roomPatch(tenant, fields);
    return creations.run(tenant.tenant_id, async () => {
      if ((await ctx.store.rooms.count(tenant.tenant_id)) >= tenant.limits.max_rooms) {
        throw new AppError('quota_exceeded', `tenant room limit reached (${tenant.limits.max_rooms})`);
      }
      const now = new Date();
      const record: RoomRecord = {
        tenant_id: tenant.tenant_id,
        room_id: roomId,
        name: patch.name ?? roomId,
        description: patch.description ?? '',
        max_participants: patch.max_participants ?? null,
        mesh_threshold: patch.mesh_threshold ?? null,
        max_screen_shares: patch.max_screen_shares ?? null,
        mode: patch.mode ?? 'auto',
        locked: patch.locked ?? false,
        metadata: patch.metadata ?? {},
        expires_at: patch.expires_at ?? null,
        created_at: now,
        updated_at: now,
      };
      await ctx.store.rooms.create(record);
      return { record, live: await applyToLive(tenant, record, patch) };
    });
  }

  return [
    defineRoute({
      operationId: 'listRooms',
      method: 'get',
      path: '/api/v1/rooms',
      tag: 'rooms',
      summary: 'List stored rooms, or with live=true the live ones (room_id order), with their live state',
      description:
        'Without live=true, rooms created by a join (auto_create_rooms) and never stored are not listed; live=true lists every live room of the tenant, stored or not, like LiveKit ListRooms.',
      auth: 'tenant',
      query: roomListQuery,
      responses: { 200: { description: 'a page of rooms', schema: roomListResponse } },
      async handle({ query, tenant }) {
        if (query.live === 'true') {
          const page = pageAfter(
            await live.roomIds(tenant.tenant_id),
            query.limit ?? DEFAULT_PAGE_SIZE,
            query.cursor,
            roomOrder,
            (roomId) => roomId,
          );
          // In a cluster a listed id may have stopped being live: it is left out of the page.
          const summaries = await live.summaries(tenant.tenant_id, page.items);
          const rooms = [];
          for (const roomId of page.items) {
            const summary = summaries.get(roomId);
            if (summary) rooms.push(roomView(ctx.rooms, tenant, await ctx.store.rooms.get(tenant.tenant_id, roomId), summary, false));
          }
          return { status: 200, body: { rooms, next_cursor: page.next } };
        }
        const page = await ctx.store.rooms.list(tenant.tenant_id, query.limit ?? DEFAULT_PAGE_SIZE, query.cursor ?? null);
        const summaries = await live.summaries(
          tenant.tenant_id,
          page.items.map((record) => record.room_id),
        );
        const rooms = page.items.map((record) => roomView(ctx.rooms, tenant, record, summaries.get(record.room_id) ?? null, false));
        return { status: 200, body: { rooms, next_cursor: page.next } };
      },
    }),
    defineRoute({
      operationId: 'createRoom',
      method: 'post',
      path: '/api/v1/rooms',
      tag: 'rooms',
      summary: 'Create a room',
      description:
        'If a live room of that id exists (created by a join), its settings apply to it at once. Counts against the tenant max_rooms.',
      auth: 'tenant',
      body: createRoomBody,
      errors: ['conflict', 'quota_exceeded'],
      responses: { 201: { description: 'created', schema: roomResponse } },
      async handle({ body, tenant }) {
        const { room_id: roomId, ...fields } = body;
        const created = await createRecord(tenant, roomId, fields);
        return { status: 201, body: roomView(ctx.rooms, tenant, created.record, created.live, true) };
      },
    }),
    defineRoute({
      operationId: 'getRoom',
      method: 'get',
      path: '/api/v1/rooms/:roomId',
      tag: 'rooms',
      summary: 'A room with its live participants (visible ones) and current mode',
      auth: 'tenant',
      params: roomParams,
      errors: ['not_found'],
      responses: { 200: { description: 'the room', schema: roomResponse } },
      async handle({ params, tenant }) {
        const record = await ctx.store.rooms.get(tenant.tenant_id, params.roomId);
        const room = await live.get(tenant.tenant_id, params.roomId);
        if (!record && !room) throw new AppError('not_found', 'no such room');
        return { status: 200, body: roomView(ctx.rooms, tenant, record, room, true) };
      },
    }),
    defineRoute({
      operationId: 'updateRoom',
      method: 'put',
      path: '/api/v1/rooms/:roomId',
      tag: 'rooms',
      summary: 'Change a room; a live room applies it at once',
      description:
        'Any subset of the room fields; absent fields stay as they are, null resets a limit to the tenant default or clears expires_at. ' +
        'max_participants, mesh_threshold, max_screen_shares, mode and locked apply to the live room immediately (peers get room_updated); ' +
        'a new expires_at re-arms the expiry. A live room created by a join gets a stored record.',
      auth: 'tenant',
      params: roomParams,
      body: updateRoomBody,
      errors: ['not_found', 'quota_exceeded'],
      responses: { 200: { description: 'the updated room', schema: roomResponse } },
      async handle({ params, body, tenant }) {
        const existing = await ctx.store.rooms.get(tenant.tenant_id, params.roomId);
        let result: { record: RoomRecord; live: LiveRoomView | null };
        if (existing) {
          const patch = roomPatch(tenant, body);
          const updated = await ctx.store.rooms.update(tenant.tenant_id, params.roomId, patch);
          if (!updated) throw new AppError('not_found', 'no such room');
          result = { record: updated, live: await applyToLive(tenant, updated, patch) };
        } else if (await live.get(tenant.tenant_id, params.roomId)) {
          result = await createRecord(tenant, params.roomId, body);
        } else {
          throw new AppError('not_found', 'no such room');
        }
        return { status: 200, body: roomView(ctx.rooms, tenant, result.record, result.live, true) };
      },
    }),
    defineRoute({
      operationId: 'deleteRoom',
      method: 'delete',
      path: '/api/v1/rooms/:roomId',
      tag: 'rooms',
      summary: 'Close the live room (peers get room_closed, reason "deleted") and remove the record',
      auth: 'tenant',
      params: roomParams,
      errors: ['not_found'],
      responses: { 204: { description: 'deleted' } },
      async handle({ params, tenant }) {
        const deleted = await ctx.store.rooms.delete(tenant.tenant_id, params.roomId);
        const wasLive = await live.close(tenant.tenant_id, params.roomId, 'deleted');
        if (!deleted && !wasLive) throw new AppError('not_found', 'no such room');
        return { status: 204 };
      },
    }),
    defineRoute({
      operationId: 'listParticipants',
      method: 'get',
      path: '/api/v1/rooms/:roomId/participants',
      tag: 'rooms',
      summary: 'Live participants of a room',
      description: 'Hidden participants (recorders) are left out unless include_hidden=true. A stored room that is not live has none.',
      auth: 'tenant',
      params: roomParams,
      query: participantsQuery,
      errors: ['not_found'],
      responses: { 200: { description: 'participants', schema: participantsResponse } },
      async handle({ params, query, tenant }) {
        const room = await live.get(tenant.tenant_id, params.roomId);
        if (!room && !(await ctx.store.rooms.get(tenant.tenant_id, params.roomId))) throw new AppError('not_found', 'no such room');
        return { status: 200, body: { participants: participantsOf(room, query.include_hidden === 'true') } };
      },
    }),
    defineRoute({
      operationId: 'kickParticipant',
      method: 'delete',
      path: '/api/v1/rooms/:roomId/participants/:userId',
      tag: 'rooms',
      summary: 'Kick a participant: it gets kicked and is disconnected, and its token is revoked so it cannot rejoin',
      auth: 'tenant',
      params: participantParams,
      errors: ['peer_not_found'],
      responses: { 204: { description: 'kicked' } },
      async handle({ params, tenant }) {
        await live.kick(tenant.tenant_id, params.roomId, params.userId);
        return { status: 204 };
      },
    }),
  ];
}
