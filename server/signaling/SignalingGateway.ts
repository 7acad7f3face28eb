import type { IceServer } from '../../protocol/events.js';
import type { Config } from '../../config/index.js';
import type { TokenService } from '../auth/TokenService.js';
import type { Cluster } from '../cluster/Cluster.js';
import type { RateLimiterFactory } from '../cluster/rateLimiters.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../Metrics.js';
import { Room } from '../rooms/Room.js';
import type { Store } from '../store/Store.js';
import { EventPipeline, type ClientEventHandlers } from './EventPipeline.js';
import { adminHandlers } from './handlers/admin.js';
import { roomOf } from './handlers/joined.js';
import { sessionHandlers } from './handlers/session.js';
import { sfuHandlers } from './handlers/sfu.js';
import { trackHandlers } from './handlers/tracks.js';
import { handshakeMiddleware } from './handshake.js';
import { channels, type AppServer, type AppSocket, type SocketRooms, type SocketTopology } from './types.js';

export interface SignalingGatewayOptions {
  io: AppServer;
  config: Readonly<Config>;
  tokens: TokenService;
  store: Store;
  rooms: SocketRooms;
  topology: SocketTopology;
  logger: Logger;
  metrics: Metrics;
  /** ICE servers (with fresh TURN credentials) for a user. */
  iceServers: (userId: string) => IceServer[];
  /** True once shutdown began: new handshakes are refused (in a cluster, sent to another node). */
  isShuttingDown: () => boolean;
  /** Where the handshake rate-limit counters live. */
  limiters: RateLimiterFactory;
  /** This node's cluster membership; null on a single node. */
  cluster: Cluster | null;
}

/**
 * The Socket.IO side: every connection passes the handshake middleware, then its events go
 * through the EventPipeline to one handler each (handlers/: session, admin, sfu). A socket's
 * disconnect takes its peer out of its room.
 *
 * In a cluster, a room's lease is held while its live room or one of its sockets is on this
 * node (Cluster.ownership); a room whose lease another node took stops here at once.
 */
export class SignalingGateway {
  private readonly logger: Logger;
  private readonly pipeline: EventPipeline;

  constructor(private readonly options: SignalingGatewayOptions) {
    const { io, config, rooms, topology, metrics } = options;
    this.logger = options.logger.child({ module: 'signaling' });
    const handlers: ClientEventHandlers = {
      ...sessionHandlers({ rooms, topology, metrics, logger: this.logger, iceServers: options.iceServers }),
      ...adminHandlers({ rooms, store: options.store, disconnectToken: (tenantId, jti) => this.disconnectToken(tenantId, jti) }),
      ...sfuHandlers({ rooms, topology }),
      ...trackHandlers({ rooms, topology }),
    };
    this.pipeline = new EventPipeline({ handlers, limits: config.rateLimits, metrics });
    io.use(
      handshakeMiddleware({
        config,
        tokens: options.tokens,
        store: options.store,
        metrics,
        isShuttingDown: options.isShuttingDown,
        limiters: options.limiters,
        placement: options.cluster,
      }),
    );
    io.on('connection', (socket) => this.onConnection(socket));
    if (options.cluster) this.joinCluster(options.cluster);
  }

  /** Where clients of a room should connect (the token response's ws_url): this node's PUBLIC_URL, or in a cluster the room's node. */
  wsUrlFor(tenantId: string, roomId: string): Promise<string> {
    const { cluster, config } = this.options;
    return cluster ? cluster.placement(tenantId, roomId) : Promise.resolve(config.http.publicUrl);
  }

  /**
   * Disconnects every live socket of a revoked token, on this node and (through the
   * adapter) any other. The store already refuses the jti for new handshakes. The adapter
   * delivers the three messages in order, so other nodes mark their sockets before the disconnect.
   */
  disconnectToken(tenantId: string, jti: string, code: 'token_revoked' = 'token_revoked'): void {
    const { io, cluster } = this.options;
    const channel = channels.token(tenantId, jti);
    io.to(channel).emit('error', { code, message: 'token was revoked' });
    this.markRevoked(tenantId, jti);
    if (cluster) io.serverSideEmit('token_revoked', tenantId, jti);
    io.in(channel).disconnectSockets(true);
  }

  private markRevoked(tenantId: string, jti: string): void {
    for (const socket of this.localSockets(channels.token(tenantId, jti))) socket.data.closeReason = 'revoked';
    // A participant of that token whose place is held here (dropped, or not yet followed a move) cannot come back.
    this.options.rooms.removePlacesOfToken(tenantId, jti, 'revoked');
  }

  /** Leases follow the rooms and sockets of this node; revocations and lost rooms from the cluster act here. */
  private joinCluster(cluster: Cluster): void {
    const { io, rooms } = this.options;
    rooms.on('room_started', (room) => cluster.ownership.retain(room.tenantId, room.id));
    rooms.on('room_finished', (room) => cluster.ownership.unretain(room.tenantId, room.id));
    rooms.on('room_dropped', (room) => cluster.ownership.unretain(room.tenantId, room.id));
    io.on('token_revoked', (tenantId, jti) => this.markRevoked(tenantId, jti));
    cluster.onRoomLost((tenantId, roomId, by) => this.stopRoomHere(tenantId, roomId, by));
    cluster.onAdapterResubscribed(() => void this.recheckLiveRevocations());
  }

  /**
   * The adapter's subscriber was disconnected, so revocations other nodes published meanwhile
   * never reached this node: the token of every live socket here is checked against the store
   * again (once per tenant and jti, a few at a time) and a revoked one's sockets are closed as
   * recheckRevocation closes them. A token the store cannot answer for is left connected.
   */
  private async recheckLiveRevocations(): Promise<void> {
    const tokens = new Map<string, { tenantId: string; jti: string }>();
    for (const socket of this.options.io.of('/').sockets.values()) {
      const { tenantId, jti, anonymous } = socket.data.identity;
      if (!anonymous) tokens.set(channels.token(tenantId, jti), { tenantId, jti });
    }
    const pending = [...tokens.values()];
    let revoked = 0;
    let failed = 0;
    while (pending.length > 0) {
      await Promise.all(
        pending.splice(0, REVOCATION_RECHECK_BATCH).map(async ({ tenantId, jti }) => {
          try {
            if (!(await this.options.store.tokens.isRevoked(tenantId, jti))) return;
          } catch {
            failed++;
            return;
          }
          revoked++;
          for (const socket of this.localSockets(channels.token(tenantId, jti))) closeRevoked(socket);
        }),
      );
    }
    if (failed > 0) this.logger.warn({ tokens: failed }, 'could not re-check some revocations after the adapter reconnected');
    this.logger.info({ tokens: tokens.size, revoked }, 'revocations re-checked after the adapter reconnected');
  }

  /**
   * Another node took the room's lease: stop acting for it at once. Its peers and the sockets
   * still joining it are disconnected without room_closed (they reconnect and are sent to the
   * new owner); the room is dropped without ending (RoomManager.drop).
   */
  private stopRoomHere(tenantId: string, roomId: string, by: string | null): void {
    const { io, rooms } = this.options;
    this.logger.warn({ tenant: tenantId, room: roomId, by }, 'room lease lost: the room stops on this node');
    const room = rooms.get(tenantId, roomId);
    if (room) rooms.drop(room, 'moved');
    const key = Room.keyOf(tenantId, roomId);
    for (const socket of io.of('/').sockets.values()) {
      if (socket.data.roomKey !== key) continue;
      socket.data.closeReason ??= 'moved';
      socket.disconnect(true);
    }
  }

  private *localSockets(channel: string): Iterable<AppSocket> {
    const ids = this.options.io.sockets.adapter.rooms.get(channel);
    if (!ids) return;
    for (const id of ids) {
      const socket = this.options.io.sockets.sockets.get(id);
      if (socket) yield socket;
    }
  }

  private onConnection(socket: AppSocket): void {
    const log = this.logger.child({ socket: socket.id, tenant: socket.data.tenant.tenant_id, room: socket.data.identity.roomId });
    this.options.metrics.socketsConnected.inc();
    const { tenant, identity } = socket.data;
    this.options.cluster?.ownership.retain(tenant.tenant_id, identity.roomId);
    socket.join(channels.token(socket.data.identity.tenantId, socket.data.identity.jti));
    // A revocation written after the handshake's check found no socket in the token's channel to
    // disconnect: look again now that this one is in it. Joins wait for the answer.
    if (!socket.data.identity.anonymous) socket.data.revocationChecked = this.recheckRevocation(socket, log);
    this.pipeline.serve(socket, log);
    socket.on('disconnect', (reason) => {
      this.options.metrics.socketsConnected.dec();
      this.options.cluster?.ownership.unretain(tenant.tenant_id, identity.roomId);
      const peer = socket.data.peer;
      const room = roomOf(this.options.rooms, socket);
      if (peer && room) {
        // A drop the server did not decide (no close reason) may come back: its place is held.
        const closeReason = socket.data.closeReason;
        const left = closeReason ?? disconnectReason(reason);
        // An anonymous identity is new on every connection: it could never take its place back.
        if (closeReason === undefined && !identity.anonymous && (left === 'timeout' || left === 'disconnected'))
          this.options.rooms.suspendPeer(room, peer, left, this.options.config.rooms.resumeGraceMs);
        else this.options.rooms.removePeer(room, peer, left);
      }
      log.debug({ reason }, 'socket disconnected');
    });
  }

  private async recheckRevocation(socket: AppSocket, log: Logger): Promise<void> {
    const { tenantId, jti } = socket.data.identity;
    let revoked: boolean;
    try {
      revoked = await this.options.store.tokens.isRevoked(tenantId, jti);
    } catch (error) {
      log.error({ err: error }, 'could not re-check the token revocation; disconnecting');
      // Not known to be revoked: the client may try again (token_revoked would end its session for good).
      if (socket.disconnected) return;
      socket.emit('error', { code: 'unavailable', message: 'the store cannot answer now; try again' });
      socket.disconnect(true);
      return;
    }
    if (revoked) closeRevoked(socket);
  }
}

/** Tokens of live sockets checked against the store at once after the adapter reconnected. */
const REVOCATION_RECHECK_BATCH = 50;

/** Closes a socket whose token the store says is revoked: error token_revoked, peers see reason revoked. */
function closeRevoked(socket: AppSocket): void {
  if (socket.disconnected) return;
  socket.data.closeReason = 'revoked';
  socket.emit('error', { code: 'token_revoked', message: 'token was revoked' });
  socket.disconnect(true);
}

/** Socket.IO's disconnect reasons, as the peer_left reasons integrators see. */
function disconnectReason(reason: string): string {
  switch (reason) {
    case 'client namespace disconnect':
      return 'left';
    case 'ping timeout':
      return 'timeout';
    case 'server shutting down':
      return 'server_shutdown';
    default:
      return 'disconnected';
  }
}
