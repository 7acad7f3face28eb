/**
 * Rooms moving between nodes when one drains (SIGTERM with SHUTDOWN_DRAIN_MS): each room this
 * node owns goes to a live serving node, its clients follow, and nobody leaves the room.
 *
 * A move, for one room:
 * 1. the lease is handed over to the target (epoch+1): from then on only the target serves new
 *    connections of the room, and this node redirects them there;
 * 2. the target is sent the room (`rooms.move-in`: settings, mode, participants with their peer
 *    ids) and starts it: a place held for each participant, and on the SFU a router ready
 *    before anyone arrives;
 * 3. the clients here get `room_moved {ws_url}` and join the target with their old peer ids
 *    (`resume`): the others keep their links to those ids and see no leave or join. The room
 *    keeps serving here (its SFU router carries media) until each client closed its connection
 *    here, which it does once the target carries its media (make-before-break).
 *
 * Invariants: a room moves at most once per drain; a move whose hand-over failed leaves the
 * room here (it ends with the node, as without another node); a move-in is accepted only with
 * the lease in hand (claim answers `mine`), so a stale or repeated request cannot start a
 * second copy of a room.
 */
import { z } from 'zod';
import { externalId, Limits, peerId, safeJsonObject, trackId, trackSource } from '../../protocol/schemas.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { Room } from '../rooms/Room.js';
import type { RoomManager } from '../rooms/RoomManager.js';
import type { TopologyController } from '../rooms/TopologyController.js';
import type { HandleOptions, RequestHandler } from './ClusterBus.js';
import { roomKey } from './keys.js';
import type { NodeInfo } from './NodeRegistry.js';
import type { RoomLeases } from './RoomLeases.js';
import type { RoomOwnership } from './RoomOwnership.js';

const mutedSchema = z.strictObject({ audio: z.boolean(), video: z.boolean() });

/** A room as one node hands it to another (a move, or the snapshot a dead owner left in Redis). */
export const moveInPayload = z.strictObject({
  tenant_id: externalId,
  room_id: externalId,
  config: z.strictObject({
    max_participants: z.number().int().min(1).max(100_000),
    mesh_threshold: z.number().int().min(1).max(100_000),
    mode_policy: z.enum(['auto', 'mesh', 'sfu']),
    locked: z.boolean(),
    /** Optional: a node of an earlier version sends none. */
    max_screen_shares: z.number().int().min(0).max(100).optional(),
  }),
  mode: z.enum(['mesh', 'sfu']),
  expires_at: z.string().datetime().nullable(),
  peers: z
    .array(
      z.strictObject({
        id: peerId,
        user_id: z.string().min(1).max(Limits.idLength),
        name: z.string().max(Limits.nameLength),
        metadata: safeJsonObject(),
        hidden: z.boolean(),
        admin_muted: mutedSchema,
        /** Optional: a node of an earlier version sends none. */
        self_muted: mutedSchema.optional(),
        /** Optional: a node of an earlier version sends none. */
        tracks: z
          .array(
            z.strictObject({ track_id: trackId, kind: z.enum(['audio', 'video']), source: trackSource, stream_id: trackId.optional() }),
          )
          .max(64)
          .optional(),
        joined_at: z.string().datetime(),
        /** The participant's token (a kick of its held place revokes it). */
        token: z.strictObject({ jti: z.string().min(1).max(Limits.idLength), expires_at: z.string().datetime() }).optional(),
      }),
    )
    .max(100_000),
});

export type MoveInPayload = z.output<typeof moveInPayload>;

const closeMovedPayload = z.strictObject({ tenant_id: externalId, room_id: externalId, reason: z.string().min(1).max(64) });

export type RoomMoveKinds = {
  'rooms.move-in': { payload: MoveInPayload; answer: { ws_url: string } };
  /** The room that moved from the addressee ended on its new node: its clients still there hear room_closed too. */
  'rooms.close-moved': { payload: z.output<typeof closeMovedPayload>; answer: boolean };
};

/** What RoomMoves uses of a ClusterBus. */
export interface RoomMovesBus {
  request<K extends keyof RoomMoveKinds & string>(
    nodeId: string,
    kind: K,
    payload: RoomMoveKinds[K]['payload'],
    options?: { timeoutMs?: number },
  ): Promise<RoomMoveKinds[K]['answer']>;
  handle<K extends keyof RoomMoveKinds & string>(
    kind: K,
    handler: RequestHandler<RoomMoveKinds[K]['payload'], RoomMoveKinds[K]['answer']>,
    options?: HandleOptions<RoomMoveKinds[K]['payload']>,
  ): () => void;
}

export interface RoomMovesOptions {
  rooms: RoomManager;
  topology: Pick<TopologyController, 'resume'>;
  leases: Pick<RoomLeases, 'handOver' | 'claim'>;
  ownership: Pick<RoomOwnership, 'claimed'>;
  bus: RoomMovesBus;
  /** Live serving nodes other than this one (the targets). */
  otherServingNodes: () => Promise<NodeInfo[]>;
  /** This node's ws_url (a moved-in room's clients connect there). */
  publicUrl: string;
  /** How long a moved-in room holds each participant's place (ms). */
  placeGraceMs: number;
  logger: Logger;
}

/** How long a move-in may take on the target (a router opens there for an SFU room). */
const MOVE_IN_TIMEOUT_MS = 10_000;

export class RoomMoves {
  private readonly logger: Logger;
  private readonly stoppers: Array<() => void> = [];
  /** Rooms that moved in, by room key: the node they came from, while clients may still be there. */
  private readonly movedInFrom = new Map<string, { from: string; timer: NodeJS.Timeout }>();

  constructor(private readonly options: RoomMovesOptions) {
    this.logger = options.logger.child({ module: 'room-moves' });
  }

  /** Accepts rooms moving in from other nodes. */
  start(): void {
    if (this.stoppers.length > 0) return;
    const { bus, rooms } = this.options;
    this.stoppers.push(
      bus.handle('rooms.move-in', (payload, { from }) => this.moveIn(payload, from), { parse: (raw) => moveInPayload.parse(raw) }),
      bus.handle('rooms.close-moved', (payload) => this.closeMoved(payload.tenant_id, payload.room_id, payload.reason), {
        parse: (raw) => closeMovedPayload.parse(raw),
      }),
      // A room that ends here soon after it moved in (deleted, closed by the API) ends for the clients still on its old node too.
      rooms.on('room_finished', (room, why) => {
        const moved = this.movedInFrom.get(room.key);
        if (!moved) return;
        clearTimeout(moved.timer);
        this.movedInFrom.delete(room.key);
        bus
          .request(moved.from, 'rooms.close-moved', { tenant_id: room.tenantId, room_id: room.id, reason: why })
          .catch((error: unknown) =>
            this.logger.debug({ room: room.key, to: moved.from, err: reason(error) }, 'room end not forwarded to its old node'),
          );
      }),
    );
  }

  stop(): void {
    for (const stop of this.stoppers.splice(0)) stop();
    for (const { timer } of this.movedInFrom.values()) clearTimeout(timer);
    this.movedInFrom.clear();
  }

  /** The room that moved away from here ended on its new node: it ends here too (room_closed to the clients still here). */
  private closeMoved(tenantId: string, roomId: string, reason: string): boolean {
    const room = this.options.rooms.get(tenantId, roomId);
    if (!room?.movingOut) return false;
    this.options.rooms.close(room, reason);
    return true;
  }

  /**
   * Moves every live room of this node to the other serving nodes (spread over them, least
   * loaded first). Resolves with how many moved; a room that could not move stays here.
   */
  async moveAll(): Promise<{ moved: number; stayed: number }> {
    const targets = (await this.options.otherServingNodes().catch(() => [])).sort((a, b) => a.load - b.load);
    const rooms = this.options.rooms.all().filter((room) => !room.closed && !room.movingOut);
    if (targets.length === 0) return { moved: 0, stayed: rooms.length };
    const outcomes = await Promise.all(
      rooms.map((room, index) => this.moveOut(room, targets[index % targets.length] as NodeInfo).catch(() => false)),
    );
    const moved = outcomes.filter(Boolean).length;
    this.logger.info({ moved, stayed: rooms.length - moved }, 'rooms moved to other nodes');
    return { moved, stayed: rooms.length - moved };
  }

  /** Moves one room to `target`; false when it stays here. */
  private async moveOut(room: Room, target: NodeInfo): Promise<boolean> {
    const key = roomKey(room.tenantId, room.id);
    const payload = snapshot(room);
    try {
      await this.options.leases.handOver(key, target.id);
    } catch (error) {
      this.logger.warn({ room: room.key, to: target.id, err: reason(error) }, 'room lease could not be handed over; the room stays here');
      return false;
    }
    let wsUrl = target.ws_url;
    try {
      wsUrl = (await this.options.bus.request(target.id, 'rooms.move-in', payload, { timeoutMs: MOVE_IN_TIMEOUT_MS })).ws_url;
    } catch (error) {
      // The lease is the target's: its clients are sent there all the same, and it starts the
      // room as the first of them arrives (without the held places: the others see them come back).
      this.logger.warn(
        { room: room.key, to: target.id, err: reason(error) },
        'the target did not take the room in; clients are sent there',
      );
    }
    this.options.rooms.moveOut(room, wsUrl);
    return true;
  }

  /** A room moving in: only with its lease in hand. */
  private async moveIn(payload: MoveInPayload, from: string): Promise<{ ws_url: string }> {
    const key = roomKey(payload.tenant_id, payload.room_id);
    const claim = await this.options.leases.claim(key);
    if (!claim.mine) throw new AppError('conflict', `cluster: the room's lease is held by node ${claim.owner}`);
    this.options.ownership.claimed(key);
    await this.adopt(payload, from);
    const roomKeyHere = Room.keyOf(payload.tenant_id, payload.room_id);
    const previous = this.movedInFrom.get(roomKeyHere);
    if (previous) clearTimeout(previous.timer);
    const timer = setTimeout(() => this.movedInFrom.delete(roomKeyHere), this.options.placeGraceMs + MOVE_IN_TIMEOUT_MS);
    timer.unref();
    this.movedInFrom.set(roomKeyHere, { from, timer });
    return { ws_url: this.options.publicUrl };
  }

  /**
   * Starts a room this node holds the lease of from what another node had of it (a move, or
   * a dead owner's snapshot): its settings, a place for each participant, and its mode.
   */
  async adopt(payload: MoveInPayload, from: string): Promise<void> {
    const room = this.options.rooms.receive(payload.tenant_id, payload.room_id, {
      config: payload.config,
      expiresAt: payload.expires_at ? new Date(payload.expires_at) : null,
      graceMs: this.options.placeGraceMs,
      peers: payload.peers.map((peer) => ({
        id: peer.id,
        userId: peer.user_id,
        name: peer.name,
        metadata: peer.metadata,
        hidden: peer.hidden,
        adminMuted: peer.admin_muted,
        ...(peer.self_muted ? { selfMuted: peer.self_muted } : {}),
        ...(peer.tracks ? { tracks: peer.tracks } : {}),
        joinedAt: new Date(peer.joined_at),
        ...(peer.token ? { token: { jti: peer.token.jti, expiresAt: new Date(peer.token.expires_at) } } : {}),
      })),
    });
    await this.options.topology.resume(room, payload.mode);
    this.logger.info({ room: room.key, from, mode: room.mode, places: room.expected.size }, 'room taken over');
  }
}

/** What another node needs of a room to go on with it: its settings, mode and participants (connected ones and places still held). */
export function snapshot(room: Room): MoveInPayload {
  const peers: MoveInPayload['peers'] = [];
  for (const peer of room.peers.values()) {
    // An anonymous identity is new on every connection: it could never take a place back.
    if (peer.socket.data.identity.anonymous) continue;
    peers.push({
      id: peer.id,
      user_id: peer.userId,
      name: peer.name,
      metadata: peer.metadata,
      hidden: peer.hidden,
      admin_muted: { ...peer.adminMuted },
      self_muted: { ...peer.selfMuted },
      tracks: peer.trackInfos(),
      joined_at: peer.joinedAt.toISOString(),
      token: { jti: peer.jti, expires_at: peer.socket.data.identity.expiresAt.toISOString() },
    });
  }
  for (const place of room.expected.values()) {
    peers.push({
      id: place.id,
      user_id: place.userId,
      name: place.name,
      metadata: place.metadata,
      hidden: place.hidden,
      admin_muted: { ...place.adminMuted },
      ...(place.selfMuted ? { self_muted: { ...place.selfMuted } } : {}),
      ...(place.tracks ? { tracks: place.tracks.map((track) => ({ ...track })) } : {}),
      joined_at: place.joinedAt.toISOString(),
      ...(place.token ? { token: { jti: place.token.jti, expires_at: place.token.expiresAt.toISOString() } } : {}),
    });
  }
  return {
    tenant_id: room.tenantId,
    room_id: room.id,
    config: { ...room.config },
    mode: room.mode,
    expires_at: room.expiresAt ? room.expiresAt.toISOString() : null,
    peers,
  };
}

const reason = (error: unknown): string => (error instanceof Error ? error.message : String(error));
