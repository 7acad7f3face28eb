import type { IceServer } from '../../protocol/events.js';
import type { Config } from '../../config/index.js';
import type { TokenService } from '../auth/TokenService.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../Metrics.js';
import type { Store } from '../store/Store.js';
import { EventPipeline, type ClientEventHandlers } from './EventPipeline.js';
import { adminHandlers } from './handlers/admin.js';
import { roomOf } from './handlers/joined.js';
import { sessionHandlers } from './handlers/session.js';
import { sfuHandlers } from './handlers/sfu.js';
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
  /** True once shutdown began: new handshakes are refused. */
  isShuttingDown: () => boolean;
}

/**
 * The Socket.IO side: every connection passes the handshake middleware, then its events go
 * through the EventPipeline to one handler each (handlers/: session, admin, sfu). A socket's
 * disconnect takes its peer out of its room.
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
    };
    this.pipeline = new EventPipeline({ handlers, limits: config.rateLimits, metrics });
    io.use(handshakeMiddleware({ config, tokens: options.tokens, store: options.store, metrics, isShuttingDown: options.isShuttingDown }));
    io.on('connection', (socket) => this.onConnection(socket));
  }

  /**
   * Disconnects every live socket of a revoked token, on this node and (through the
   * adapter) any other. The store already refuses the jti for new handshakes.
   */
  disconnectToken(tenantId: string, jti: string, code: 'token_revoked' = 'token_revoked'): void {
    const channel = channels.token(tenantId, jti);
    this.options.io.to(channel).emit('error', { code, message: 'token was revoked' });
    for (const socket of this.localSockets(channel)) socket.data.closeReason = 'revoked';
    this.options.io.in(channel).disconnectSockets(true);
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
    socket.join(channels.token(socket.data.identity.tenantId, socket.data.identity.jti));
    // A revocation written after the handshake's check found no socket in the token's channel to
    // disconnect: look again now that this one is in it. Joins wait for the answer.
    if (!socket.data.identity.anonymous) socket.data.revocationChecked = this.recheckRevocation(socket, log);
    this.pipeline.serve(socket, log);
    socket.on('disconnect', (reason) => {
      this.options.metrics.socketsConnected.dec();
      const peer = socket.data.peer;
      const room = roomOf(this.options.rooms, socket);
      if (peer && room) this.options.rooms.removePeer(room, peer, socket.data.closeReason ?? disconnectReason(reason));
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
      revoked = true;
    }
    if (!revoked || socket.disconnected) return;
    socket.data.closeReason = 'revoked';
    socket.emit('error', { code: 'token_revoked', message: 'token was revoked' });
    socket.disconnect(true);
  }
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
