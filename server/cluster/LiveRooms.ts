/**
 * What the HTTP API needs of live rooms, wherever they run: a room's live state and
 * participants, the tenant's live rooms, a stored room's change applied to its live room,
 * close, kick.
 *
 * - LocalLiveRooms acts on this node's RoomManager: the single-node server's behaviour.
 * - ClusterLiveRooms sends each operation to the room's owner node: the node whose lease the
 *   room has (RoomLeases). Owner = this node, or no live owner (no lease, or its holder has no
 *   registry entry: dead) -> this node's RoomManager answers (the room is not live unless it
 *   runs here); owner = another live node -> one ClusterBus request to that node, with a
 *   timeout, whose handler runs the local operation there. The owner's errors come back with
 *   their codes; an owner that does not answer in time is `unavailable`.
 *
 * Invariants:
 * - apply() and close() tell admissions under way that the stored record changed
 *   (RoomManager.recordChanged) in the same turn as they act on the room, on this node and on
 *   the owner, so a join that read the record before the store write reads it again: callers
 *   call them right after the store write;
 * - answers are JSON (dates as ISO strings), the same whether they come from this node or
 *   through Redis; inbound payloads and answers are checked with zod schemas;
 * - cluster-wide listing: every owner keeps, per tenant, a sorted set of the rooms it runs
 *   (sb:cluster:live:<tenant>, members = room ids, all scored 0). A room is added only while
 *   its lease names the adding node, and removed only while no other node holds its lease
 *   (Lua, atomic with the lease check), so a room that moved to another node stays listed; a
 *   room whose lease is gone (owner died) is pruned by the next listing. The set is a hint:
 *   each listed room's live state still comes from its owner.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { PeerInfo, RoomConfigInfo, RoomMode } from '../../protocol/events.js';
import { Limits } from '../../protocol/schemas.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { expectedPeerInfo, type Peer } from '../rooms/Peer.js';
import type { Room } from '../rooms/Room.js';
import type { RoomManager } from '../rooms/RoomManager.js';
import type { Store } from '../store/Store.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, type HandleOptions, type RequestHandler } from './ClusterBus.js';
import { ClusterKeys, DEFAULT_CLUSTER_PREFIX, parseRoomKey, roomKey } from './keys.js';
import type { RoomLeases } from './RoomLeases.js';

/** A live participant as the API shows it. */
/** A participant; `reconnecting` while its place is held (its connection dropped, or it has not followed a move yet). */
export type ParticipantView = PeerInfo & { joined_at: string; hidden: boolean; reconnecting?: true };

/** A live room's state, without its participants (listings). */
export interface LiveRoomSummary {
  room_id: string;
  /** The live room's effective settings (admin:lock included). */
  config: RoomConfigInfo;
  mode: RoomMode;
  created_at: string;
  /** Every participant, hidden ones included. */
  num_participants: number;
}

/** A live room's state with every participant (hidden ones included, flagged). */
export interface LiveRoomView extends LiveRoomSummary {
  participants: ParticipantView[];
}

/** A stored room's change, as its live room takes it. */
export interface LiveRoomChange {
  /** The resolved values (RoomManager.resolveConfig) of the changed settings only. */
  config: Partial<RoomConfigInfo>;
  /** The new expiry (null clears it); absent leaves it as it is. */
  expiresAt?: Date | null;
}

export interface LiveRooms {
  /** The live room with its participants, or null when it is not live. */
  get(tenantId: string, roomId: string): Promise<LiveRoomView | null>;
  /** The ids of the tenant's live rooms (a superset in a cluster: summaries() tells which are live), in room id order. */
  roomIds(tenantId: string): Promise<string[]>;
  /** The live state of those of the rooms that are live; a room that is not has no entry. */
  summaries(tenantId: string, roomIds: readonly string[]): Promise<Map<string, LiveRoomSummary>>;
  /**
   * Applies a stored room's change to its live room (peers get room_updated when a setting
   * really changed; a given expiry is re-armed). Call right after the store write (it reports
   * the change to admissions under way). The live room after it, or null when not live.
   */
  apply(tenantId: string, roomId: string, change: LiveRoomChange): Promise<LiveRoomView | null>;
  /** Closes the live room (peers get room_closed with the reason). Call right after the store write. True when it was live. */
  close(tenantId: string, roomId: string, reason: string): Promise<boolean>;
  /** Kicks a participant: its token is revoked, it gets kicked and is disconnected. `peer_not_found` when the user is not in the live room. */
  kick(tenantId: string, roomId: string, userId: string): Promise<void>;
}

export function participantView(peer: Peer): ParticipantView {
  return { ...peer.info(), joined_at: peer.joinedAt.toISOString(), hidden: peer.hidden };
}

export function liveRoomSummary(room: Room): LiveRoomSummary {
  return {
    room_id: room.id,
    config: { ...room.config },
    mode: room.mode,
    created_at: room.createdAt.toISOString(),
    num_participants: room.size,
  };
}

export function liveRoomView(room: Room): LiveRoomView {
  const held = [...room.expected.values()].map((place): ParticipantView => ({
    ...expectedPeerInfo(place),
    joined_at: place.joinedAt.toISOString(),
    hidden: place.hidden,
    reconnecting: true,
  }));
  return { ...liveRoomSummary(room), participants: [...[...room.peers.values()].map(participantView), ...held] };
}

export interface LocalLiveRoomsOptions {
  rooms: RoomManager;
  /** Where a kick revokes the token. */
  store: Pick<Store, 'tokens'>;
  /** Disconnects every socket of a token (SignalingGateway.disconnectToken). */
  disconnectToken(tenantId: string, jti: string): void;
}

/** Live rooms of this node's RoomManager. */
export class LocalLiveRooms implements LiveRooms {
  readonly rooms: RoomManager;
  private readonly options: LocalLiveRoomsOptions;

  constructor(options: LocalLiveRoomsOptions) {
    this.rooms = options.rooms;
    this.options = options;
  }

  get(tenantId: string, roomId: string): Promise<LiveRoomView | null> {
    const room = this.rooms.get(tenantId, roomId);
    return Promise.resolve(room ? liveRoomView(room) : null);
  }

  roomIds(tenantId: string): Promise<string[]> {
    return Promise.resolve(this.rooms.liveRooms(tenantId).map((room) => room.id));
  }

  summaries(tenantId: string, roomIds: readonly string[]): Promise<Map<string, LiveRoomSummary>> {
    const found = new Map<string, LiveRoomSummary>();
    for (const roomId of roomIds) {
      const room = this.rooms.get(tenantId, roomId);
      if (room) found.set(roomId, liveRoomSummary(room));
    }
    return Promise.resolve(found);
  }

  apply(tenantId: string, roomId: string, change: LiveRoomChange): Promise<LiveRoomView | null> {
    // recordChanged and the room's update happen in this one turn (see the module's invariants).
    this.rooms.recordChanged(tenantId, roomId);
    const room = this.rooms.get(tenantId, roomId);
    if (!room) return Promise.resolve(null);
    const config = Object.fromEntries(Object.entries(change.config).filter(([, value]) => value !== undefined)) as Partial<RoomConfigInfo>;
    const changed = (Object.keys(config) as (keyof RoomConfigInfo)[]).some((key) => config[key] !== room.config[key]);
    if (changed) this.rooms.updateConfig(room, config);
    if (change.expiresAt !== undefined) this.rooms.setExpiry(room, change.expiresAt);
    const after = this.rooms.get(tenantId, roomId);
    return Promise.resolve(after ? liveRoomView(after) : null);
  }

  close(tenantId: string, roomId: string, reason: string): Promise<boolean> {
    this.rooms.recordChanged(tenantId, roomId);
    const room = this.rooms.get(tenantId, roomId);
    if (room) this.rooms.close(room, reason);
    return Promise.resolve(room !== undefined);
  }

  async kick(tenantId: string, roomId: string, userId: string): Promise<void> {
    const room = this.rooms.get(tenantId, roomId);
    const peer = room?.peerByUser(userId);
    const place = room?.expectedByUser(userId);
    if (room && !peer && place) {
      // Its connection dropped (or it has not followed a move yet): its held place goes, and its token cannot bring it back.
      if (place.token) await this.options.store.tokens.revoke(tenantId, place.token.jti, place.token.expiresAt);
      this.rooms.removePlace(room, place, 'kicked');
      if (place.token) this.options.disconnectToken(tenantId, place.token.jti);
      return;
    }
    if (!room || !peer) throw new AppError('peer_not_found', 'no such participant in this room');
    await this.options.store.tokens.revoke(tenantId, peer.jti, peer.socket.data.identity.expiresAt);
    // The peer may have left while the revocation was written.
    if (room.peers.get(peer.id) === peer) this.rooms.removePeer(room, peer, 'kicked', { kick: true });
    this.options.disconnectToken(tenantId, peer.jti);
  }
}

// ---- the bus requests (payloads and answers are JSON) ----

const id = z.string().min(1).max(Limits.idLength);
const count = z.number().int().nonnegative();
const roomRef = z.strictObject({ tenant_id: id, room_id: id });
const configPatch = z.strictObject({
  max_participants: count.optional(),
  mesh_threshold: count.optional(),
  max_screen_shares: count.optional(),
  mode_policy: z.enum(['auto', 'mesh', 'sfu']).optional(),
  locked: z.boolean().optional(),
});

/** The payloads each node's handlers accept (strict: anything else answers payload_invalid). */
export const liveRoomPayloads = {
  get: roomRef,
  summaries: z.strictObject({ tenant_id: id, room_ids: z.array(id).max(1000) }),
  apply: z.strictObject({
    tenant_id: id,
    room_id: id,
    config: configPatch,
    expires_at: z.iso.datetime({ offset: true }).nullable().optional(),
  }),
  close: z.strictObject({ tenant_id: id, room_id: id, reason: z.string().min(1).max(64) }),
  kick: z.strictObject({ tenant_id: id, room_id: id, user_id: id }),
};

const isoString = z.string().min(1).max(64);
const summarySchema = z.object({
  room_id: id,
  config: z.object({
    max_participants: count,
    mesh_threshold: count,
    /** Optional: a node of an earlier version sends none. */
    max_screen_shares: count.optional(),
    mode_policy: z.enum(['auto', 'mesh', 'sfu']),
    locked: z.boolean(),
  }),
  mode: z.enum(['mesh', 'sfu']),
  created_at: isoString,
  num_participants: count,
});
/** Participants pass through as the owner shows them (fields added later included). */
const participantSchema = z.looseObject({ id: z.string(), user_id: z.string(), joined_at: isoString, hidden: z.boolean() });
const viewSchema = summarySchema.extend({ participants: z.array(participantSchema) });

/** The answers, checked on the requesting node (an owner's malformed answer is `internal`). */
const liveRoomAnswers = {
  view: viewSchema.nullable(),
  summaries: z.array(summarySchema),
  closed: z.boolean(),
};

export type LiveRoomKinds = {
  'live-rooms.get': { payload: z.output<typeof liveRoomPayloads.get>; answer: LiveRoomView | null };
  'live-rooms.summaries': { payload: z.output<typeof liveRoomPayloads.summaries>; answer: LiveRoomSummary[] };
  'live-rooms.apply': { payload: z.output<typeof liveRoomPayloads.apply>; answer: LiveRoomView | null };
  'live-rooms.close': { payload: z.output<typeof liveRoomPayloads.close>; answer: boolean };
  'live-rooms.kick': { payload: z.output<typeof liveRoomPayloads.kick>; answer: null };
};

/** What ClusterLiveRooms uses of a ClusterBus (a ClusterBus whose kinds include LiveRoomKinds is one). */
export interface LiveRoomsBus {
  request<K extends keyof LiveRoomKinds & string>(
    nodeId: string,
    kind: K,
    payload: LiveRoomKinds[K]['payload'],
    options?: { timeoutMs?: number },
  ): Promise<LiveRoomKinds[K]['answer']>;
  handle<K extends keyof LiveRoomKinds & string>(
    kind: K,
    handler: RequestHandler<LiveRoomKinds[K]['payload'], LiveRoomKinds[K]['answer']>,
    options?: HandleOptions<LiveRoomKinds[K]['payload']>,
  ): () => void;
}

/** The owner's answer, once its shape is checked. */
function checkedAnswer<T>(schema: z.ZodType, answer: T, owner: string): T {
  if (!schema.safeParse(answer).success)
    throw new AppError('internal', `cluster: node ${owner} answered a live room request with a malformed answer`);
  return answer;
}

// ---- the tenants' live-room sets ----

/** KEYS tenant set, lease; ARGV node id, room id. Adds the room while its lease names this node. */
const ADD_SCRIPT = `
local lease = redis.call('GET', KEYS[2])
if lease and string.sub(lease, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then
  redis.call('ZADD', KEYS[1], 0, ARGV[2])
  return 1
end
return 0`;

/** KEYS tenant set, lease; ARGV node id, room id. Removes the room unless another node holds its lease. */
const REMOVE_SCRIPT = `
local lease = redis.call('GET', KEYS[2])
if (not lease) or string.sub(lease, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then
  return redis.call('ZREM', KEYS[1], ARGV[2])
end
return 0`;

/** KEYS tenant set, lease; ARGV room id. Removes the room when it has no lease. */
const PRUNE_SCRIPT = `
if redis.call('EXISTS', KEYS[2]) == 0 then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0`;

export interface ClusterLiveRoomsOptions extends LocalLiveRoomsOptions {
  /** This node's id (the bus's and the leases' node). */
  nodeId: string;
  leases: Pick<RoomLeases, 'owner' | 'epochOf' | 'held'>;
  bus: LiveRoomsBus;
  /** Command connection for the tenants' live-room sets; not closed here. */
  redis: Redis;
  /** Key prefix (default "sb:", as the leases'). */
  prefix?: string;
  /** How long a request waits for the owner (ms, default the bus default, 2000). */
  timeoutMs?: number;
  /** How often this node writes its rooms into the tenant sets again (repairs a write lost to a Redis outage; ms, default 10000). */
  resyncIntervalMs?: number;
  logger?: Logger;
}

type Route = { local: true } | { local: false; owner: string };
const LOCAL: Route = { local: true };

/** Live rooms across the cluster: each operation runs on the room's owner (see the module comment). */
export class ClusterLiveRooms implements LiveRooms {
  readonly local: LocalLiveRooms;
  private readonly nodeId: string;
  private readonly leases: ClusterLiveRoomsOptions['leases'];
  private readonly bus: LiveRoomsBus;
  private readonly redis: Redis;
  private readonly keys: ClusterKeys;
  private readonly timeoutMs: number;
  private readonly resyncIntervalMs: number;
  private readonly logger: Logger | undefined;
  private readonly detach: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(options: ClusterLiveRoomsOptions) {
    this.local = new LocalLiveRooms(options);
    this.nodeId = options.nodeId;
    this.leases = options.leases;
    this.bus = options.bus;
    this.redis = options.redis;
    this.keys = new ClusterKeys(options.prefix ?? DEFAULT_CLUSTER_PREFIX);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.resyncIntervalMs = options.resyncIntervalMs ?? 10_000;
    this.logger = options.logger?.child({ module: 'live-rooms' });
  }

  /** The sorted set of a tenant's live rooms: <prefix>cluster:live:<tenant>, a segment no other cluster key uses (see keys.ts). */
  tenantSetKey(tenantId: string): string {
    return `${this.keys.space}live:${encodeURIComponent(tenantId)}`;
  }

  /** Answers other nodes' requests for rooms this node owns, and keeps this node's rooms in the tenant sets. Idempotent. */
  start(): void {
    if (this.detach.length > 0) return;
    const local = this.local;
    this.detach.push(
      this.bus.handle('live-rooms.get', (p) => local.get(p.tenant_id, p.room_id), { parse: (raw) => liveRoomPayloads.get.parse(raw) }),
      this.bus.handle('live-rooms.summaries', async (p) => [...(await local.summaries(p.tenant_id, p.room_ids)).values()], {
        parse: (raw) => liveRoomPayloads.summaries.parse(raw),
      }),
      this.bus.handle(
        'live-rooms.apply',
        (p) =>
          local.apply(p.tenant_id, p.room_id, {
            config: p.config,
            ...(p.expires_at !== undefined ? { expiresAt: p.expires_at === null ? null : new Date(p.expires_at) } : {}),
          }),
        { parse: (raw) => liveRoomPayloads.apply.parse(raw) },
      ),
      this.bus.handle('live-rooms.close', (p) => local.close(p.tenant_id, p.room_id, p.reason), {
        parse: (raw) => liveRoomPayloads.close.parse(raw),
      }),
      this.bus.handle(
        'live-rooms.kick',
        async (p) => {
          await local.kick(p.tenant_id, p.room_id, p.user_id);
          return null;
        },
        { parse: (raw) => liveRoomPayloads.kick.parse(raw) },
      ),
      local.rooms.on('room_started', (room) => void this.publish(room.tenantId, room.id)),
      local.rooms.on('room_finished', (room) => void this.unpublish(room.tenantId, room.id)),
      // Dropped = moved: the set keeps the room while its new owner holds the lease.
      local.rooms.on('room_dropped', (room) => void this.unpublish(room.tenantId, room.id)),
    );
    this.timer = setInterval(() => void this.resync(), this.resyncIntervalMs);
    this.timer.unref();
  }

  /** Stops answering requests and keeping the sets (rooms listed stay until their leases go). */
  stop(): void {
    for (const detach of this.detach.splice(0)) detach();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async get(tenantId: string, roomId: string): Promise<LiveRoomView | null> {
    const route = await this.route(tenantId, roomId);
    if (route.local) return this.local.get(tenantId, roomId);
    const answer = await this.bus.request(
      route.owner,
      'live-rooms.get',
      { tenant_id: tenantId, room_id: roomId },
      { timeoutMs: this.timeoutMs },
    );
    return checkedAnswer(liveRoomAnswers.view, answer, route.owner);
  }

  /** The tenant set's rooms (rooms without a lease pruned) and this node's own live rooms, in room id order. */
  async roomIds(tenantId: string): Promise<string[]> {
    const setKey = this.tenantSetKey(tenantId);
    let listed: string[];
    try {
      listed = await this.redis.zrange(setKey, 0, -1);
    } catch (error) {
      this.logger?.debug({ err: error instanceof Error ? error.message : String(error), tenant: tenantId }, 'live rooms not listed');
      throw new AppError('unavailable', 'cluster: cannot list live rooms now (Redis does not answer); try again', { cause: error });
    }
    const ids = new Set([...listed, ...(await this.local.roomIds(tenantId))]);
    return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /**
   * How many of the tenant's rooms other than `exceptRoomId` are live in the whole cluster: those
   * of its set whose lease is held (the tenant's max_rooms counts them at join). 0 when Redis
   * cannot answer: joins then count this node's rooms only.
   */
  async liveRoomCount(tenantId: string, exceptRoomId: string): Promise<number> {
    if (this.redis.status !== 'ready') return 0;
    try {
      const ids = (await this.redis.zrange(this.tenantSetKey(tenantId), 0, -1)).filter((roomId) => roomId !== exceptRoomId);
      if (ids.length === 0) return 0;
      const pipeline = this.redis.pipeline();
      for (const roomId of ids) pipeline.exists(this.keys.lease(roomKey(tenantId, roomId)));
      const results = (await pipeline.exec()) ?? [];
      return results.filter(([error, exists]) => !error && exists === 1).length;
    } catch (error) {
      this.logger?.debug({ err: error instanceof Error ? error.message : String(error) }, 'live room count unavailable');
      return 0;
    }
  }

  /** One request per owner node of the rooms asked about (never one per node of the cluster). */
  async summaries(tenantId: string, roomIds: readonly string[]): Promise<Map<string, LiveRoomSummary>> {
    const routes = await Promise.all(roomIds.map(async (roomId) => ({ roomId, route: await this.route(tenantId, roomId, true) })));
    const localIds: string[] = [];
    const byOwner = new Map<string, string[]>();
    for (const { roomId, route } of routes) {
      if (route.local) localIds.push(roomId);
      else byOwner.set(route.owner, [...(byOwner.get(route.owner) ?? []), roomId]);
    }
    const found = await this.local.summaries(tenantId, localIds);
    const answers = await Promise.all(
      [...byOwner].map(async ([owner, ids]) => {
        const answer = await this.bus.request(
          owner,
          'live-rooms.summaries',
          { tenant_id: tenantId, room_ids: ids },
          { timeoutMs: this.timeoutMs },
        );
        return checkedAnswer(liveRoomAnswers.summaries, answer, owner).filter((summary) => ids.includes(summary.room_id));
      }),
    );
    for (const summary of answers.flat()) found.set(summary.room_id, summary);
    return found;
  }

  async apply(tenantId: string, roomId: string, change: LiveRoomChange): Promise<LiveRoomView | null> {
    // Admissions of the room under way here learn of the change before anything is awaited.
    this.local.rooms.recordChanged(tenantId, roomId);
    const route = await this.route(tenantId, roomId);
    if (route.local) return this.local.apply(tenantId, roomId, change);
    const expires = change.expiresAt === undefined ? {} : { expires_at: change.expiresAt?.toISOString() ?? null };
    const answer = await this.bus.request(
      route.owner,
      'live-rooms.apply',
      { tenant_id: tenantId, room_id: roomId, config: change.config, ...expires },
      { timeoutMs: this.timeoutMs },
    );
    return checkedAnswer(liveRoomAnswers.view, answer, route.owner);
  }

  async close(tenantId: string, roomId: string, reason: string): Promise<boolean> {
    // As in apply().
    this.local.rooms.recordChanged(tenantId, roomId);
    const route = await this.route(tenantId, roomId);
    if (route.local) return this.local.close(tenantId, roomId, reason);
    const answer = await this.bus.request(
      route.owner,
      'live-rooms.close',
      { tenant_id: tenantId, room_id: roomId, reason },
      { timeoutMs: this.timeoutMs },
    );
    return checkedAnswer(liveRoomAnswers.closed, answer, route.owner);
  }

  async kick(tenantId: string, roomId: string, userId: string): Promise<void> {
    const route = await this.route(tenantId, roomId);
    if (route.local) return this.local.kick(tenantId, roomId, userId);
    await this.bus.request(
      route.owner,
      'live-rooms.kick',
      { tenant_id: tenantId, room_id: roomId, user_id: userId },
      { timeoutMs: this.timeoutMs },
    );
  }

  /**
   * Where the room's operations run: here when this node holds its lease (no Redis round
   * trip), else at the lease's holder when that is another live node, else here. With prune,
   * a room without a lease leaves its tenant's set.
   */
  private async route(tenantId: string, roomId: string, prune = false): Promise<Route> {
    const key = roomKey(tenantId, roomId);
    if (this.leases.epochOf(key) !== null) return LOCAL;
    const lease = await this.leases.owner(key);
    if (lease === null && prune) void this.run('prune', PRUNE_SCRIPT, [this.tenantSetKey(tenantId), this.keys.lease(key)], [roomId]);
    if (lease && lease.owner !== this.nodeId && lease.node !== null) return { local: false, owner: lease.owner };
    return LOCAL;
  }

  private publish(tenantId: string, roomId: string): Promise<void> {
    const key = roomKey(tenantId, roomId);
    return this.run('add', ADD_SCRIPT, [this.tenantSetKey(tenantId), this.keys.lease(key)], [this.nodeId, roomId]);
  }

  private unpublish(tenantId: string, roomId: string): Promise<void> {
    const key = roomKey(tenantId, roomId);
    return this.run('remove', REMOVE_SCRIPT, [this.tenantSetKey(tenantId), this.keys.lease(key)], [this.nodeId, roomId]);
  }

  /** Writes every room this node holds and runs into its tenant's set again. Never throws. */
  async resync(): Promise<void> {
    const running = this.leases
      .held()
      .map(({ roomKey: key }) => parseRoomKey(key))
      .filter(({ tenantId, roomId }) => this.local.rooms.get(tenantId, roomId) !== undefined);
    await Promise.all(running.map(({ tenantId, roomId }) => this.publish(tenantId, roomId)));
  }

  /** Runs one of the set scripts; a failure is logged (the set is a hint, repaired by resync). */
  private async run(what: string, script: string, keys: string[], args: string[]): Promise<void> {
    try {
      await this.redis.eval(script, keys.length, ...keys, ...args);
    } catch (error) {
      this.logger?.debug({ err: error instanceof Error ? error.message : String(error), what }, 'live room set not updated');
    }
  }
}
