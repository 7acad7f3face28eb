import { randomUUID } from 'node:crypto';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { z } from 'zod';
import type { ClientEventName, IceServer, JsonValue, SfuInfo } from '../../protocol/events.js';
import { anonymousAuth, clientEventSchemas, describeIssues } from '../../protocol/schemas.js';
import { DEFAULT_ROLES, NO_GRANTS, type Config } from '../../config/index.js';
import type { TokenService, VerifiedToken } from '../auth/TokenService.js';
import type { WireError } from '../../protocol/errors.js';
import { AppError, toWireError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../Metrics.js';
import type { Peer } from '../rooms/Peer.js';
import { Room } from '../rooms/Room.js';
import type { RoomManager } from '../rooms/RoomManager.js';
import type { Store, TenantRecord } from '../store/Store.js';
import { EventWindow } from './EventWindow.js';
import { sdpSendsMedia } from './sdp.js';
import { isPlainSignal } from './signalShape.js';
import { channels, type AppServer, type AppSocket } from './types.js';

export interface SignalingGatewayOptions {
  io: AppServer;
  config: Readonly<Config>;
  tokens: TokenService;
  store: Store;
  rooms: RoomManager;
  logger: Logger;
  metrics: Metrics;
  /** ICE servers (with fresh TURN credentials) for a user. */
  iceServers: (userId: string) => IceServer[];
  /** True once shutdown began: new handshakes are refused. */
  isShuttingDown: () => boolean;
  /** SFU details for a join ack when the room is on the SFU. */
  sfuJoinInfo?: (room: Room, peer: Peer) => SfuInfo | undefined;
}

type Schemas = typeof clientEventSchemas;
type Payload<E extends ClientEventName> = z.output<Schemas[E]>;
/** A handler's extra ack fields; void for a bare `{ ok: true }`. */
export type Handler<E extends ClientEventName> = (socket: AppSocket, payload: Payload<E>) => Promise<object | void> | object | void;

/** An sfu:* request slower than this is logged (the SDK gives up on an answer after 10 s). */
const SLOW_REQUEST_SECONDS = 5;

/** The ack of a handler with nothing to add (signal, leave, ...): one shared object, only ever serialized. */
const OK_ACK = Object.freeze({ ok: true as const });
type Ack = (response: object) => void;

/**
 * Checks ahead of zod that accept a subset of what the event's schema accepts (and need no
 * transforms); anything they do not accept goes through zod, which also words the error.
 */
const QUICK_CHECKS: Partial<Record<ClientEventName, (payload: unknown) => boolean>> = { signal: isPlainSignal };

/** Query parameters that would carry a token in the URL (refused: URLs end up in logs). */
const TOKEN_QUERY_KEYS = ['token', 'access_token', 'jwt', 'auth', 'authorization'];
const JWT_SHAPE = /^eyJ[\w-]*\.[\w-]*\.[\w-]*$/;

/** connect_error carries err.message = code and err.data = {code, message}. */
function connectError(error: unknown): Error & { data: unknown } {
  const wire = toWireError(error);
  return Object.assign(new Error(wire.code), { data: wire });
}

/**
 * The Socket.IO side: handshake auth, rate limits, schema checks, and one handler per
 * client event. Handlers get validated payloads only; every error reaches the client as
 * an ack `{ok:false, error:{code,message}}` (or an `error` event when no ack was given).
 */
export class SignalingGateway {
  private readonly logger: Logger;
  private readonly handshakeLimiter: RateLimiterMemory;
  private readonly eventsPerSocketPerSecond: number;
  private readonly strikeLimiter: RateLimiterMemory;
  private readonly handlers = new Map<string, Handler<ClientEventName>>();

  constructor(private readonly options: SignalingGatewayOptions) {
    this.logger = options.logger.child({ module: 'signaling' });
    const limits = options.config.rateLimits;
    this.handshakeLimiter = new RateLimiterMemory({ keyPrefix: 'hs', points: limits.handshakesPerIpPerMinute, duration: 60 });
    this.eventsPerSocketPerSecond = limits.eventsPerSocketPerSecond;
    this.strikeLimiter = new RateLimiterMemory({ keyPrefix: 'st', points: limits.strikesBeforeDisconnect, duration: 60 });

    this.register('join', (socket, payload) => this.join(socket, payload));
    this.register('signal', (socket, payload) => this.signal(socket, payload));
    this.register('leave', (socket) => this.leave(socket));
    this.register('update_metadata', (socket, payload) => this.updateMetadata(socket, payload));
    this.register('stats', (socket, payload) => this.stats(socket, payload));
    this.register('admin:kick', (socket, payload) => this.adminKick(socket, payload));
    this.register('admin:lock', (socket, payload) => this.adminLock(socket, payload));
    this.register('admin:mute', (socket, payload) => this.adminMute(socket, payload));

    options.io.use((socket, next) => {
      this.authenticate(socket).then(
        () => {
          options.metrics.handshakes.inc({ result: 'ok' });
          next();
        },
        (error: unknown) => {
          const wireError = connectError(error);
          options.metrics.handshakes.inc({ result: wireError.message });
          next(wireError);
        },
      );
    });
    options.io.on('connection', (socket) => this.onConnection(socket));
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

  /** Registers the handler of a client event (its payload schema is in clientEventSchemas). */
  register<E extends ClientEventName>(event: E, handler: Handler<E>): void {
    this.handlers.set(event, handler as unknown as Handler<ClientEventName>);
  }

  private async authenticate(socket: AppSocket): Promise<void> {
    if (this.options.isShuttingDown()) throw new AppError('shutting_down', 'server is shutting down');
    const address = socket.handshake.address;
    try {
      await this.handshakeLimiter.consume(address);
    } catch (error) {
      if (error instanceof RateLimiterRes) {
        this.options.metrics.rateLimited.inc({ limiter: 'handshake' });
        throw new AppError('rate_limited', 'too many connection attempts');
      }
      throw error;
    }
    const query = socket.handshake.query;
    for (const [key, value] of Object.entries(query)) {
      const looksLikeJwt = typeof value === 'string' && JWT_SHAPE.test(value);
      if (TOKEN_QUERY_KEYS.includes(key.toLowerCase()) || looksLikeJwt) {
        throw new AppError('token_invalid', 'send the token in the handshake auth payload, never in the URL');
      }
    }
    const auth: unknown = socket.handshake.auth;
    const fields = auth && typeof auth === 'object' ? (auth as Record<string, unknown>) : {};
    if (fields.token === undefined && fields.room !== undefined && this.options.config.auth.anonymousRooms) {
      const tenant = await this.options.store.tenants.get(this.options.config.auth.anonymousTenant);
      if (!tenant) throw new AppError('internal', 'ANONYMOUS_TENANT names an unknown tenant');
      this.authenticated(socket, this.anonymousIdentity(fields), tenant);
      return;
    }
    const identity = this.options.tokens.verify(fields.token);
    if (!identity.grants.roomJoin) throw new AppError('forbidden', 'token does not grant roomJoin');
    if (await this.options.store.tokens.isRevoked(identity.tenantId, identity.jti)) throw new AppError('token_revoked', 'token was revoked');
    const tenant = await this.options.store.tenants.get(identity.tenantId);
    if (!tenant) throw new AppError('token_invalid', 'token names an unknown tenant');
    this.authenticated(socket, identity, tenant);
  }

  private authenticated(socket: AppSocket, identity: VerifiedToken, tenant: TenantRecord): void {
    socket.data.identity = identity;
    socket.data.tenant = tenant;
    socket.data.roomKey = Room.keyOf(tenant.tenant_id, identity.roomId);
    socket.data.peer = null;
  }

  /** Anonymous/demo rooms: {room, name} in the handshake auth payload, the "guest" preset. */
  private anonymousIdentity(fields: Record<string, unknown>): VerifiedToken {
    const parsed = anonymousAuth.safeParse({ room: fields.room, name: fields.name });
    if (!parsed.success) throw new AppError('payload_invalid', `anonymous join: ${describeIssues(parsed.error)}`);
    const { config } = this.options;
    const now = Date.now();
    const id = randomUUID();
    return {
      jti: `anonymous-${id}`,
      tenantId: config.auth.anonymousTenant,
      roomId: parsed.data.room,
      userId: `anonymous-${id.slice(0, 8)}`,
      name: parsed.data.name,
      grants: { ...NO_GRANTS, ...(config.roles.guest ?? DEFAULT_ROLES.guest) },
      metadata: {},
      issuedAt: new Date(now),
      expiresAt: new Date(now + config.auth.maxTokenLifetimeS * 1000),
      anonymous: true,
    };
  }

  private onConnection(socket: AppSocket): void {
    const log = this.logger.child({ socket: socket.id, tenant: socket.data.tenant.tenant_id, room: socket.data.identity.roomId });
    this.options.metrics.socketsConnected.inc();
    socket.join(channels.token(socket.data.identity.tenantId, socket.data.identity.jti));
    // A revocation written after the handshake's check found no socket in the token's channel to
    // disconnect: look again now that this one is in it. Joins wait for the answer.
    if (!socket.data.identity.anonymous) socket.data.revocationChecked = this.recheckRevocation(socket, log);

    // Every inbound packet passes here before any handler runs: an unknown event is answered
    // with an error (and still counted), then the per-socket rate limit (synchronously: a fixed
    // window per socket, see EventWindow). One middleware and no onAny listener (socket.io copies
    // the onAny listener array and applies each listener for every packet).
    const events = new EventWindow(this.eventsPerSocketPerSecond, 1000);
    let refused = 0;
    socket.use((packet, next) => {
      // Packets read in the same chunk as a disconnect still arrive here: drop them.
      if (socket.disconnected) return;
      const event: unknown = packet[0];
      const ack = packet.at(-1);
      const refuse = (error: WireError) => (typeof ack === 'function' ? ack({ ok: false, error }) : socket.emit('error', error));
      if (events.take()) {
        if (typeof event === 'string' && this.handlers.has(event)) return next();
        // An unknown event counts against the limit too, and is answered (its ack as well).
        refuse({ code: 'payload_invalid', message: 'unknown event' });
        return;
      }
      this.options.metrics.rateLimited.inc({ limiter: 'events' });
      refused++;
      refuse({ code: 'rate_limited', message: 'too many events; slow down' });
      this.strikeLimiter.consume(socket.id).catch(() => {
        // One line per socket, however many of its events were refused.
        if (socket.data.closeReason === 'rate_limited') return;
        log.warn({ refused }, 'socket kept flooding after rate limiting; disconnecting');
        socket.data.closeReason = 'rate_limited';
        socket.disconnect(true);
      });
    });

    for (const [event, handler] of this.handlers) {
      socket.on(event as ClientEventName, (...args: unknown[]) => this.dispatch(socket, event as ClientEventName, handler, args, log));
    }

    socket.on('disconnect', (reason) => {
      this.options.metrics.socketsConnected.dec();
      const peer = socket.data.peer;
      const room = peer ? this.roomOf(socket) : undefined;
      if (peer && room) this.options.rooms.removePeer(room, peer, socket.data.closeReason ?? disconnectReason(reason));
      this.strikeLimiter.delete(socket.id).catch(() => undefined);
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

  private dispatch(socket: AppSocket, event: ClientEventName, handler: Handler<ClientEventName>, args: unknown[], log: Logger): void {
    const ack = typeof args.at(-1) === 'function' ? (args.pop() as Ack) : undefined;
    try {
      const pending = handler(socket, this.payload(event, args));
      // Most handlers (signal above all) answer synchronously: no promise, no turn of the microtask queue.
      if (pending instanceof Promise) {
        if (event.startsWith('sfu:')) {
          const timer = this.options.metrics.sfuRequestDuration.startTimer({ event });
          void pending.finally(() => {
            const seconds = timer();
            if (seconds > SLOW_REQUEST_SECONDS) log.warn({ event, seconds }, 'slow SFU request');
          }).catch(() => undefined);
        }
        pending.then((result) => this.succeeded(event, ack, result)).catch((error: unknown) => this.failed(socket, event, ack, error, log));
      } else {
        this.succeeded(event, ack, pending);
      }
    } catch (error) {
      this.failed(socket, event, ack, error, log);
    }
  }

  /** The event's one payload, checked: by its quick check when there is one and it passes, else by its zod schema. */
  private payload(event: ClientEventName, args: unknown[]): Payload<ClientEventName> {
    if (args.length > 1) throw new AppError('payload_invalid', 'send one payload object');
    const payload = args[0];
    if (QUICK_CHECKS[event]?.(payload)) return payload as Payload<ClientEventName>;
    const parsed = clientEventSchemas[event].safeParse(payload);
    if (!parsed.success) throw new AppError('payload_invalid', describeIssues(parsed.error));
    return parsed.data as Payload<ClientEventName>;
  }

  private succeeded(event: ClientEventName, ack: Ack | undefined, result: object | void): void {
    this.okCounter(event).inc();
    ack?.(result ? { ok: true, ...result } : OK_ACK);
  }

  private failed(socket: AppSocket, event: ClientEventName, ack: Ack | undefined, error: unknown, log: Logger): void {
    if (!(error instanceof AppError)) log.error({ err: error, event }, 'handler failed');
    const wire = toWireError(error);
    this.options.metrics.events.inc({ event, result: wire.code });
    if (ack) ack({ ok: false, error: wire });
    else socket.emit('error', wire);
  }

  /** The events{event, result="ok"} counter child, bound once per event (label lookup is per call otherwise). */
  private okCounter(event: ClientEventName): { inc(): void } {
    let counter = this.okCounters.get(event);
    if (!counter) {
      counter = this.options.metrics.events.labels({ event, result: 'ok' });
      this.okCounters.set(event, counter);
    }
    return counter;
  }
  private readonly okCounters = new Map<ClientEventName, { inc(): void }>();

  private roomOf(socket: AppSocket): Room | undefined {
    return this.options.rooms.getByKey(socket.data.roomKey);
  }

  /** The caller's peer and room, or not_in_room. */
  joined(socket: AppSocket): { peer: Peer; room: Room } {
    const peer = socket.data.peer;
    const room = peer ? this.roomOf(socket) : undefined;
    if (!peer || !room) throw new AppError('not_in_room', 'join a room first');
    return { peer, room };
  }

  private async join(socket: AppSocket, payload: Payload<'join'>): Promise<object> {
    // Claimed before the first await: a second join on this socket while this one waits for the store is refused.
    if (socket.data.peer || socket.data.joining) throw new AppError('already_joined', 'already joined');
    socket.data.joining = true;
    const { identity, tenant } = socket.data;
    if (identity.anonymous) this.logger.warn({ tenant: tenant.tenant_id, room: identity.roomId, user: identity.userId }, 'anonymous join (ANONYMOUS_ROOMS is on)');
    const endTimer = this.options.metrics.joinDuration.startTimer();
    let admitted;
    try {
      await socket.data.revocationChecked;
      admitted = await this.options.rooms.admit(socket, identity, tenant, payload?.metadata as Record<string, JsonValue> | undefined);
    } finally {
      socket.data.joining = false;
    }
    const { room, peer } = admitted;
    endTimer();
    const sfu = room.mode === 'sfu' ? this.options.sfuJoinInfo?.(room, peer) : undefined;
    return {
      self: { ...peer.info(), grants: peer.grants },
      room: { id: room.id, mode: room.mode, config: room.config },
      peers: room.visiblePeers(peer),
      ice_servers: this.options.iceServers(peer.userId),
      ...(sfu ? { sfu } : {}),
    };
  }

  private signal(socket: AppSocket, payload: Payload<'signal'>): void {
    const { peer, room } = this.joined(socket);
    const target = room.peers.get(payload.to);
    if (!target || target === peer) throw new AppError('peer_not_found', 'no such peer in this room');
    const { description } = payload;
    if (description?.sdp && !peer.grants.canPublish && sdpSendsMedia(description.sdp)) {
      throw new AppError('forbidden', 'token does not grant canPublish: offer/answer must not send audio or video');
    }
    this.options.metrics.signalsRelayed.inc();
    target.socket.emit('signal', description ? { from: peer.id, description } : { from: peer.id, candidate: payload.candidate });
  }

  private leave(socket: AppSocket): object {
    const { peer, room } = this.joined(socket);
    this.options.rooms.removePeer(room, peer, 'left');
    return {};
  }

  private updateMetadata(socket: AppSocket, payload: Payload<'update_metadata'>): object {
    const { peer, room } = this.joined(socket);
    if (!peer.grants.canUpdateOwnMetadata) throw new AppError('forbidden', 'token does not grant canUpdateOwnMetadata');
    peer.metadata = payload.metadata as Record<string, JsonValue>;
    if (!peer.hidden) socket.to(channels.room(room.key)).emit('peer_updated', peer.info());
    return { self: peer.info() };
  }

  private stats(socket: AppSocket, payload: Payload<'stats'>): object {
    const { peer } = this.joined(socket);
    if (payload.migration) {
      this.options.metrics.migrationDuration.observe({ to: payload.migration.to }, payload.migration.duration_ms / 1000);
      this.options.metrics.migrationMediaGap.observe({ to: payload.migration.to }, payload.migration.media_gap_ms / 1000);
      if (payload.links.length === 0) return {};
    }
    peer.quality = { at: new Date(), links: payload.links };
    for (const link of payload.links) {
      if (link.rtt_ms !== undefined) this.options.metrics.clientRtt.observe({ candidate_type: link.candidate_type ?? 'unknown' }, link.rtt_ms / 1000);
      if (link.packet_loss !== undefined) this.options.metrics.clientPacketLoss.observe(link.packet_loss);
    }
    return {};
  }

  private async adminKick(socket: AppSocket, payload: Payload<'admin:kick'>): Promise<object> {
    const { peer, room } = this.joined(socket);
    if (!peer.grants.roomAdmin) throw new AppError('forbidden', 'token does not grant roomAdmin');
    const target = room.peers.get(payload.peer_id);
    if (!target) throw new AppError('peer_not_found', 'no such peer in this room');
    // A kicked token cannot rejoin: its jti is revoked until it expires.
    await this.options.store.tokens.revoke(room.tenantId, target.jti, target.socket.data.identity.expiresAt);
    this.options.rooms.removePeer(room, target, payload.reason ?? 'kicked', { kick: true });
    // The kick is of the token: a session it reopened while the revocation was written ends too.
    this.disconnectToken(room.tenantId, target.jti);
    return {};
  }

  /**
   * Mutes (or unmutes) a peer's audio or video for everyone: the peer and the room learn it
   * from peer_updated (`muted`); on the SFU its producers of that kind are paused, so nothing
   * flows whatever its client does; in a mesh its SDK disables its tracks of that kind.
   */
  private adminMute(socket: AppSocket, payload: Payload<'admin:mute'>): object {
    const { peer, room } = this.joined(socket);
    if (!peer.grants.roomAdmin) throw new AppError('forbidden', 'token does not grant roomAdmin');
    const target = room.peers.get(payload.peer_id);
    if (!target) throw new AppError('peer_not_found', 'no such peer in this room');
    target.adminMuted[payload.kind] = payload.muted;
    const info = target.info();
    if (!target.hidden) target.socket.to(channels.room(room.key)).emit('peer_updated', info);
    target.socket.emit('peer_updated', info);
    this.options.rooms.emit('peer_muted', room, target, payload.kind, payload.muted);
    return {};
  }

  private adminLock(socket: AppSocket, payload: Payload<'admin:lock'>): object {
    const { peer, room } = this.joined(socket);
    if (!peer.grants.roomAdmin) throw new AppError('forbidden', 'token does not grant roomAdmin');
    this.options.rooms.updateConfig(room, { locked: payload.locked });
    return { locked: room.config.locked };
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
