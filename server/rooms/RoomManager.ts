import type { Metadata, RoomConfigInfo } from '../../protocol/events.js';
import type { Config } from '../../config/index.js';
import type { VerifiedToken } from '../auth/TokenService.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RoomRecord, Store, TenantRecord } from '../store/Store.js';
import { TypedEmitter } from '../TypedEmitter.js';
import { Peer, type ExpectedPeer, type PeerConnection } from './Peer.js';
import { Room } from './Room.js';

/** How a peer left its room, which decides what becomes of its connection. */
export type PeerExit =
  /** It left, or its connection dropped: a connection still open stays open. */
  | 'left'
  /** It was removed (kick, duplicate identity): its connection is told the reason and closed. */
  | 'kicked'
  /** Its room closed (room_closing came first): its connection is closed. */
  | 'room_closed'
  /** Its room stopped on this node without ending (it moved to another node): its connection is closed, nobody is told. */
  | 'moved'
  /** Its connection dropped; its place is held for it to come back (suspend): nobody is told unless the place is given up. */
  | 'suspended';

export type RoomManagerEvents<Connection extends PeerConnection = PeerConnection> = {
  /** A room started here: new, or moved in from another node (room.movedIn; it did not start for the tenant). */
  room_started: [room: Room<Connection>];
  /** close() began: every peer leaves next (peer_left with exit room_closed), then room_finished. */
  room_closing: [room: Room<Connection>, reason: string];
  room_finished: [room: Room<Connection>, reason: string];
  /** drop(): the room stopped on this node without ending (every peer left first with exit moved); no room_finished. */
  room_dropped: [room: Room<Connection>, reason: string];
  /** The room is moving to another node (moveOut): its clients are to join it at wsUrl. */
  room_moving: [room: Room<Connection>, wsUrl: string];
  /** resumed: the peer took back its place (Room.expected), under the same id; the others knew it already. */
  peer_joined: [room: Room<Connection>, peer: Peer<Connection>, resumed: boolean];
  /** A place held for a returning participant was given up (it did not come back in time, or came back anew). */
  expected_left: [room: Room<Connection>, expected: ExpectedPeer, reason: string];
  peer_left: [room: Room<Connection>, peer: Peer<Connection>, reason: string, exit: PeerExit];
  /** A peer changed its own metadata. */
  peer_updated: [room: Room<Connection>, peer: Peer<Connection>];
  room_updated: [room: Room<Connection>];
  /** A peer's connection quality changed (peer.connectionQuality), from the stats it reported. */
  peer_quality: [room: Room<Connection>, peer: Peer<Connection>];
  /** A room admin muted or unmuted a peer's audio or video. */
  peer_muted: [room: Room<Connection>, peer: Peer<Connection>, kind: 'audio' | 'video', muted: boolean];
};

/** A room that moves in from another node: what the clients coming with it find here. */
export interface MovedRoom {
  /** max_screen_shares is absent when a node of an earlier version sent the room: the server default applies. */
  config: Omit<RoomConfigInfo, 'max_screen_shares'> & { max_screen_shares?: number };
  expiresAt: Date | null;
  /** The participants that are to come back, with the ids they had. */
  peers: Array<Omit<ExpectedPeer, 'timer'>>;
  /** How long each place is held (ms). */
  graceMs: number;
}

export interface RoomManagerOptions {
  store: Store;
  defaults: Config['rooms'];
  logger: Logger;
}

/** A connection asking to join the room its token names. */
export interface Admission<Connection> {
  connection: Connection;
  identity: VerifiedToken;
  tenant: TenantRecord;
  /** The peer's metadata; the token's when undefined. */
  metadata: Metadata | undefined;
  /** The peer id this connection had before (JoinPayload.resume): its place is taken back when the room holds it for this user. */
  resumeId?: string;
  /**
   * Called after the stored room was read, in the same turn as the peer's insert: throws to
   * call the admission off (its connection closed or joined another way meanwhile).
   */
  confirm(): void;
}

/**
 * Owns every live room of this node. All lookups are by key; nothing here scans all rooms
 * on a per-message path. Room state changes go through these methods so observers
 * (signaling, sessions, webhooks, metrics, topology) see one stream of events; rooms never
 * talk to clients themselves. `Connection` is the type of the peers' connections (see Peer).
 */
export class RoomManager<Connection extends PeerConnection = PeerConnection> extends TypedEmitter<RoomManagerEvents<Connection>> {
  private readonly rooms = new Map<string, Room<Connection>>();
  /** Live rooms by tenant, then room id (counts for quotas, listings for the API). */
  private readonly liveRoomsByTenant = new Map<string, Map<string, Room<Connection>>>();
  private readonly logger: Logger;
  /** Pending expiry closes, by room key (one timer per live room with an expiry; no scans). */
  private readonly expiryTimers = new Map<string, NodeJS.Timeout>();
  /** Admissions reading a room's stored record, by room key; recordChanged marks them. */
  private readonly recordReads = new Map<string, Set<{ changed: boolean }>>();
  /**
   * In a cluster: how many of the tenant's rooms other than `roomId` are live on any node, so
   * the tenant's max_rooms holds across nodes (null: this node's rooms are all there is).
   */
  tenantLiveRoomsElsewhere: ((tenantId: string, roomId: string) => Promise<number>) | null = null;

  constructor(private readonly options: RoomManagerOptions) {
    super(options.logger);
    this.logger = options.logger.child({ module: 'rooms' });
  }

  get(tenantId: string, roomId: string): Room<Connection> | undefined {
    return this.rooms.get(Room.keyOf(tenantId, roomId));
  }

  getByKey(key: string): Room<Connection> | undefined {
    return this.rooms.get(key);
  }

  /** Every live room of this node. */
  all(): Room<Connection>[] {
    return [...this.rooms.values()];
  }

  get roomCount(): number {
    return this.rooms.size;
  }

  liveRoomCount(tenantId: string): number {
    return this.liveRoomsByTenant.get(tenantId)?.size ?? 0;
  }

  /** A tenant's live rooms, in room id order. */
  liveRooms(tenantId: string): Room<Connection>[] {
    return [...(this.liveRoomsByTenant.get(tenantId)?.values() ?? [])].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Room settings from the stored room, then the tenant, then the server defaults. */
  resolveConfig(tenant: TenantRecord, record: RoomRecord | null): RoomConfigInfo {
    return {
      max_participants: record?.max_participants ?? tenant.limits.max_participants ?? this.options.defaults.maxParticipants,
      mesh_threshold: record?.mesh_threshold ?? tenant.limits.mesh_threshold ?? this.options.defaults.meshThreshold,
      max_screen_shares: record?.max_screen_shares ?? tenant.limits.max_screen_shares ?? this.options.defaults.maxScreenShares,
      mode_policy: record?.mode ?? 'auto',
      locked: record?.locked ?? false,
    };
  }

  /**
   * Admits a connection into the room named by its token: creates the live room if needed
   * (when the room is stored or the tenant auto-creates rooms), enforces lock and size, and
   * replaces an older connection of the same user (LiveKit's duplicate identity rule).
   */
  async admit(admission: Admission<Connection>): Promise<{ room: Room<Connection>; peer: Peer<Connection> }> {
    const { identity, tenant } = admission;
    // Read again while a change of the record was reported during the read (see recordChanged).
    // The check runs in this function's own continuation, in the same turn as the insert below.
    const key = Room.keyOf(tenant.tenant_id, identity.roomId);
    // Before the record's read: nothing may be awaited between that read and the insert.
    const liveElsewhere =
      this.tenantLiveRoomsElsewhere && !this.get(tenant.tenant_id, identity.roomId)
        ? await this.tenantLiveRoomsElsewhere(tenant.tenant_id, identity.roomId)
        : 0;
    let record: RoomRecord | null;
    for (;;) {
      const read = { changed: false };
      const reads = this.recordReads.get(key) ?? new Set();
      this.recordReads.set(key, reads.add(read));
      try {
        record = await this.options.store.rooms.get(tenant.tenant_id, identity.roomId);
      } finally {
        reads.delete(read);
        if (reads.size === 0 && this.recordReads.get(key) === reads) this.recordReads.delete(key);
      }
      if (!read.changed) break;
    }
    if (record?.expires_at && record.expires_at.getTime() <= Date.now()) throw new AppError('room_not_found', 'room has expired');
    // Everything below is synchronous: no other join can interleave between checks and insert.
    // A peer must never hold a dead connection (it would stay in the room with nobody behind it).
    admission.confirm();
    let room = this.get(tenant.tenant_id, identity.roomId);
    if (room?.movingOut) throw new AppError('unavailable', 'the room is moving to another node: connect again');
    if (!room) {
      if (!record && !tenant.limits.auto_create_rooms) throw new AppError('room_not_found', 'room does not exist');
      if (Math.max(this.liveRoomCount(tenant.tenant_id), liveElsewhere) >= tenant.limits.max_rooms)
        throw new AppError('quota_exceeded', 'tenant live room limit reached');
      room = this.create(tenant.tenant_id, identity.roomId, this.resolveConfig(tenant, record));
      if (record?.expires_at) this.setExpiry(room, record.expires_at);
    }

    const previous = room.peerByUser(identity.userId);
    const place = room.expectedByUser(identity.userId);
    // The same user, seen the same way by the others (a hidden token never takes a visible place, nor the reverse).
    const resumes = (candidate: { id: string; hidden: boolean } | undefined): boolean =>
      candidate !== undefined && candidate.id === admission.resumeId && candidate.hidden === identity.grants.hidden;
    const resumed = resumes(place) ? place : undefined;
    // A client back before the server noticed its connection dropped: the new connection takes the old one's place.
    const replaced = !resumed && resumes(previous) ? previous : undefined;
    // The newer connection of a user wins, whichever join lands first: an older connection's join
    // that arrives late (a page that reconnected while its first join was still on its way) must
    // not replace the connection the user has now.
    if (previous && (previous.socket.handshake.issued ?? 0) > (admission.connection.handshake.issued ?? 0))
      throw new AppError('conflict', 'a newer connection of this user is in the room');
    const refusal =
      room.config.locked && !identity.grants.roomAdmin && !resumed && !replaced
        ? new AppError('room_locked', 'room is locked')
        : room.size - (previous ? 1 : 0) - (place ? 1 : 0) >= room.config.max_participants
          ? new AppError('room_full', `room is full (${room.config.max_participants} participants)`)
          : null;
    if (refusal) {
      // A room this join just started (a stored locked room) must not outlive the refusal.
      if (room.size === 0) this.scheduleEmptyClose(room);
      throw refusal;
    }
    if (replaced) {
      // Quietly: its connection is closed (reason replaced), nobody is told.
      room.remove(replaced);
      this.emit('peer_left', room, replaced, 'replaced', 'suspended');
    } else if (previous) this.removePeer(room, previous, 'duplicate_identity', { kick: true });
    if (place) this.unexpect(room, place);
    // The user came back without its place's id (a new session): the place is given up as any older connection would be.
    if (place && !resumed) this.emit('expected_left', room, place, 'duplicate_identity');

    const before = resumed ?? replaced;
    const peer = new Peer(
      admission.connection,
      identity.userId,
      identity.name,
      identity.grants,
      identity.jti,
      before ? before.metadata : (admission.metadata ?? identity.metadata),
      before && {
        id: before.id,
        joinedAt: before.joinedAt,
        selfMuted: before.selfMuted,
        tracks: replaced ? replaced.trackInfos() : resumed?.tracks,
      },
    );
    if (before) Object.assign(peer.adminMuted, before.adminMuted);
    this.cancelEmptyTimer(room);
    room.add(peer);
    this.logger.debug({ room: room.key, peer: peer.id, resumed: Boolean(before) }, 'peer joined');
    this.emit('peer_joined', room, peer, Boolean(before));
    return { room, peer };
  }

  /**
   * Tells admissions under way that the room's stored record was created, changed or deleted.
   * Call it right after the store write and before applying the change to the live room, in
   * the same turn: an admission that read the record before then reads it again, so it never
   * starts a live room from a record that is gone or stale.
   */
  recordChanged(tenantId: string, roomId: string): void {
    for (const read of this.recordReads.get(Room.keyOf(tenantId, roomId)) ?? []) read.changed = true;
  }

  /**
   * Takes a peer out of its room. With kick, its connection is to be told why and closed (exit
   * kicked). In a room moving out, a peer leaves with exit moved (it joined the room's new node,
   * nobody is told), and the room is dropped here once its last peer has gone.
   */
  removePeer(room: Room<Connection>, peer: Peer<Connection>, reason: string, options: { kick?: boolean } = {}): void {
    if (!room.remove(peer)) return;
    this.logger.debug({ room: room.key, peer: peer.id, reason }, 'peer left');
    if (room.movingOut) {
      // A kick still reaches a peer that has not followed the room yet; any other leave is part of the move.
      this.emit('peer_left', room, peer, reason, options.kick ? 'kicked' : 'moved');
      if (room.connectedCount === 0) this.drop(room, 'moved');
      return;
    }
    this.emit('peer_left', room, peer, reason, options.kick ? 'kicked' : 'left');
    if (room.size === 0) this.scheduleEmptyClose(room);
  }

  /**
   * Starts a room that moved here from another node (it holds the room's lease already): the
   * room's settings as they were, and a place held for each of its participants for graceMs.
   * A participant joining with `resume` and its old id takes its place back: the others keep
   * their links to that id and see no leave or join. A place nobody takes back in time is
   * given up (expected_left). A room already live here (a client arrived first) gets the places
   * of the participants it does not have. No quota applies: the room was live in the cluster.
   */
  receive(tenantId: string, roomId: string, moved: MovedRoom): Room<Connection> {
    let room = this.get(tenantId, roomId);
    if (room?.movingOut) throw new AppError('conflict', 'the room is moving out of this node');
    if (!room) {
      const config = { ...moved.config, max_screen_shares: moved.config.max_screen_shares ?? this.options.defaults.maxScreenShares };
      room = this.create(tenantId, roomId, config, { movedIn: true });
      if (moved.expiresAt) this.setExpiry(room, moved.expiresAt);
    }
    for (const place of moved.peers) {
      if (room.peerByUser(place.userId) || room.expectedByUser(place.userId) || room.peers.has(place.id)) continue;
      this.hold(room, place, moved.graceMs, 'timeout');
    }
    if (room.size > 0) this.cancelEmptyTimer(room);
    else this.scheduleEmptyClose(room);
    return room;
  }

  /**
   * A peer's connection dropped without a leave (a network cut, a ping timeout, a proxy): its
   * place is held for graceMs, and a client joining with `resume` and its id takes it back, so
   * the others keep their links to it and hear nothing (LiveKit's reconnect window). A place
   * nobody takes back is given up with the drop's reason (expected_left). With graceMs 0, or
   * in a room moving out, this is removePeer.
   */
  suspendPeer(room: Room<Connection>, peer: Peer<Connection>, reason: string, graceMs: number): void {
    if (graceMs <= 0 || room.movingOut || room.closed) return this.removePeer(room, peer, reason);
    if (!room.remove(peer)) return;
    this.logger.debug({ room: room.key, peer: peer.id, reason }, 'peer suspended: its place is held');
    this.emit('peer_left', room, peer, reason, 'suspended');
    this.hold(
      room,
      {
        id: peer.id,
        userId: peer.userId,
        name: peer.name,
        metadata: peer.metadata,
        hidden: peer.hidden,
        adminMuted: { ...peer.adminMuted },
        selfMuted: { ...peer.selfMuted },
        tracks: peer.trackInfos(),
        joinedAt: peer.joinedAt,
        token: { jti: peer.jti, expiresAt: peer.socket.data.identity.expiresAt },
      },
      graceMs,
      reason,
    );
  }

  /** Gives up the held places of a revoked token in the tenant's rooms (the others see them leave with `reason`). */
  removePlacesOfToken(tenantId: string, jti: string, reason: string): void {
    for (const room of this.liveRooms(tenantId))
      for (const place of [...room.expected.values()]) if (place.token?.jti === jti) this.removePlace(room, place, reason);
  }

  /** Gives a held place up now (a kick, a revocation): the others see the participant leave with `reason`. */
  removePlace(room: Room<Connection>, place: ExpectedPeer, reason: string): void {
    if (room.expected.get(place.id) !== place) return;
    this.unexpect(room, place);
    this.logger.debug({ room: room.key, peer: place.id, reason }, 'held place given up');
    this.emit('expected_left', room, place, reason);
    if (room.size === 0) this.scheduleEmptyClose(room);
  }

  /** Holds a place in the room for graceMs; given up then with `reason` (expected_left). */
  private hold(room: Room<Connection>, place: Omit<ExpectedPeer, 'timer'>, graceMs: number, reason: string): void {
    const expected: ExpectedPeer = { ...place, adminMuted: { ...place.adminMuted }, timer: null };
    expected.timer = setTimeout(() => {
      expected.timer = null;
      if (room.expected.get(expected.id) !== expected || room.closed) return;
      this.unexpect(room, expected);
      this.logger.debug({ room: room.key, peer: expected.id, reason }, 'held place given up: the participant did not come back');
      this.emit('expected_left', room, expected, reason);
      if (room.size === 0) this.scheduleEmptyClose(room);
    }, graceMs);
    expected.timer.unref();
    room.expect(expected);
  }

  /**
   * The room moves to another node, which holds its lease now: its clients are told to join it
   * at wsUrl (room_moving), and it serves those still here until they have gone (removePeer).
   */
  moveOut(room: Room<Connection>, wsUrl: string): void {
    if (room.closed || room.movingOut) return;
    room.movingOut = true;
    this.setExpiry(room, null);
    this.cancelEmptyTimer(room);
    for (const place of [...room.expected.values()]) this.unexpect(room, place);
    this.logger.info({ room: room.key, to: wsUrl }, 'room moving to another node');
    this.emit('room_moving', room, wsUrl);
    if (room.connectedCount === 0) this.drop(room, 'moved');
  }

  /** Replaces a peer's own metadata. */
  updateMetadata(room: Room<Connection>, peer: Peer<Connection>, metadata: Metadata): void {
    peer.metadata = metadata;
    this.emit('peer_updated', room, peer);
  }

  /** A room admin's mute (or unmute) of a peer's audio or video. */
  setMuted(room: Room<Connection>, peer: Peer<Connection>, kind: 'audio' | 'video', muted: boolean): void {
    peer.adminMuted[kind] = muted;
    this.emit('peer_muted', room, peer, kind, muted);
  }

  /** Applies a config change to a live room. */
  updateConfig(room: Room<Connection>, patch: Partial<RoomConfigInfo>): void {
    room.config = { ...room.config, ...patch };
    this.emit('room_updated', room);
  }

  /** Closes a live room: room_closing, then every peer leaves (exit room_closed), then room_finished. Idempotent. */
  close(room: Room<Connection>, reason: string): void {
    if (room.closed) return;
    room.closed = true;
    this.setExpiry(room, null);
    this.cancelEmptyTimer(room);
    for (const place of [...room.expected.values()]) this.unexpect(room, place);
    this.emit('room_closing', room, reason);
    for (const peer of [...room.peers.values()]) {
      room.remove(peer);
      this.emit('peer_left', room, peer, reason, 'room_closed');
    }
    this.forget(room);
    this.logger.info({ room: room.key, reason }, 'room closed');
    this.emit('room_finished', room, reason);
  }

  /**
   * Stops a live room on this node without ending it (its lease moved to another node, which
   * serves it from now on): every peer leaves with exit `moved`, then room_dropped. No
   * room_closing or room_finished: the room goes on elsewhere. Idempotent.
   */
  drop(room: Room<Connection>, reason: string): void {
    if (room.closed) return;
    room.closed = true;
    this.setExpiry(room, null);
    this.cancelEmptyTimer(room);
    for (const place of [...room.expected.values()]) this.unexpect(room, place);
    for (const peer of [...room.peers.values()]) {
      room.remove(peer);
      this.emit('peer_left', room, peer, reason, 'moved');
    }
    this.forget(room);
    this.logger.info({ room: room.key, reason }, 'room dropped: it moved to another node');
    this.emit('room_dropped', room, reason);
  }

  /** Drops every room (a cluster node shutting down while other nodes serve). */
  dropAll(reason: string): void {
    for (const room of [...this.rooms.values()]) this.drop(room, reason);
  }

  /**
   * Closes the live room with reason "expired" at expiresAt; re-arming replaces the previous
   * timer and null clears it. A past instant closes it now.
   */
  setExpiry(room: Room<Connection>, expiresAt: Date | null): void {
    const previous = this.expiryTimers.get(room.key);
    if (previous) clearTimeout(previous);
    this.expiryTimers.delete(room.key);
    room.expiresAt = room.closed ? null : expiresAt;
    if (!expiresAt || room.closed) return;
    const delay = expiresAt.getTime() - Date.now();
    if (delay <= 0) {
      this.close(room, 'expired');
      return;
    }
    // setTimeout overflows past 2^31-1 ms (~24.8 days): wait in steps and re-check.
    const timer = setTimeout(
      () => {
        this.expiryTimers.delete(room.key);
        this.setExpiry(room, expiresAt);
      },
      Math.min(delay, 2 ** 31 - 1),
    );
    timer.unref();
    this.expiryTimers.set(room.key, timer);
  }

  /** Closes every room (shutdown). */
  closeAll(reason: string): void {
    for (const room of [...this.rooms.values()]) this.close(room, reason);
  }

  private create(tenantId: string, roomId: string, config: RoomConfigInfo, options: { movedIn?: boolean } = {}): Room<Connection> {
    const room = new Room<Connection>(tenantId, roomId, config);
    room.movedIn = options.movedIn ?? false;
    this.rooms.set(room.key, room);
    let live = this.liveRoomsByTenant.get(tenantId);
    if (!live) this.liveRoomsByTenant.set(tenantId, (live = new Map()));
    live.set(roomId, room);
    this.logger.info({ room: room.key, movedIn: room.movedIn }, room.movedIn ? 'room moved in' : 'room started');
    this.emit('room_started', room);
    return room;
  }

  /** Gives up a held place (its timer with it). */
  private unexpect(room: Room<Connection>, place: ExpectedPeer): void {
    if (place.timer) clearTimeout(place.timer);
    place.timer = null;
    room.unexpect(place);
  }

  private forget(room: Room<Connection>): void {
    this.rooms.delete(room.key);
    const live = this.liveRoomsByTenant.get(room.tenantId);
    live?.delete(room.id);
    if (live?.size === 0) this.liveRoomsByTenant.delete(room.tenantId);
  }

  private scheduleEmptyClose(room: Room<Connection>): void {
    if (room.emptyTimer || room.closed) return;
    room.emptyTimer = setTimeout(() => {
      room.emptyTimer = null;
      if (room.size === 0) this.close(room, 'empty');
    }, this.options.defaults.emptyTimeoutMs);
    room.emptyTimer.unref();
  }

  private cancelEmptyTimer(room: Room<Connection>): void {
    if (room.emptyTimer) clearTimeout(room.emptyTimer);
    room.emptyTimer = null;
  }
}
