import type { RoomMode, SfuInfo } from '../../protocol/events.js';
import type { Config } from '../../config/index.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../Metrics.js';
import type { SfuRoom, SfuService } from '../sfu/SfuService.js';
import type { Handler, SignalingGateway } from '../signaling/SignalingGateway.js';
import { channels, type AppServer, type AppSocket } from '../signaling/types.js';
import type { Peer } from './Peer.js';
import type { Room } from './Room.js';
import type { RoomManager } from './RoomManager.js';

export interface TopologyControllerOptions {
  io: AppServer;
  rooms: RoomManager;
  gateway: SignalingGateway;
  /** null when SFU_ENABLED=false: rooms stay mesh. */
  sfu: SfuService | null;
  config: Readonly<Config>;
  logger: Logger;
  metrics: Metrics;
  /** Called after every mode change (sessions audit, webhooks). */
  onModeChanged?: (room: Room, reason: string) => void;
}

/** Per-room topology state that is not the room's business. */
interface TopologyState {
  sfuRoom: SfuRoom | null;
  demoteTimer: NodeJS.Timeout | null;
  /** A promotion or rebuild is under way. */
  busy: boolean;
}

const REBUILD_RETRY_MS = 250;

/**
 * Decides each room's topology and moves it: promotion to the SFU when the participant count
 * exceeds mesh_threshold, demotion after the count stayed at or below threshold-1 for
 * DEMOTE_DELAY_MS (hysteresis), pins by mode policy, re-evaluation on any change. Clients do
 * the make-before-break migration when they receive mode_changed. Also serves the sfu:*
 * requests, checking grants and ownership.
 */
export class TopologyController {
  private readonly states = new Map<string, TopologyState>();
  private readonly logger: Logger;

  constructor(private readonly options: TopologyControllerOptions) {
    this.logger = options.logger.child({ module: 'topology' });
    const { rooms, sfu } = options;
    rooms.on('peer_joined', (room) => this.evaluate(room));
    rooms.on('peer_left', (room, peer) => {
      this.state(room).sfuRoom?.removePeer(peer.id);
      this.evaluate(room);
    });
    rooms.on('room_updated', (room) => this.evaluate(room));
    rooms.on('peer_muted', (room, peer, kind, muted) => {
      this.state(room).sfuRoom?.setMuted(peer.id, kind, muted).catch((error: unknown) => this.logger.warn({ err: error, room: room.key }, 'could not apply an admin mute on the SFU'));
    });
    rooms.on('room_finished', (room) => this.forget(room));
    sfu?.on('rooms_lost', (keys) => {
      for (const key of keys) {
        const room = rooms.getByKey(key);
        // The lost router may be a demoted one still retiring: rebuild only a room whose own router is gone.
        if (room && room.mode === 'sfu' && this.states.get(key)?.sfuRoom?.closed !== false) void this.rebuild(room, Date.now());
      }
    });
    this.registerHandlers(options.gateway);
  }

  /** The SFU part of a join ack for a room on the SFU. */
  joinInfo(room: Room, peer: Peer): SfuInfo | undefined {
    const sfuRoom = this.state(room).sfuRoom;
    if (!sfuRoom || sfuRoom.closed) return undefined;
    return { router_rtp_capabilities: sfuRoom.rtpCapabilities, producers: sfuRoom.producers(peer.id) };
  }

  /** The mode the room should be in now. */
  desiredMode(room: Room): RoomMode {
    if (!this.options.sfu?.alive) return 'mesh';
    const policy = room.config.mode_policy;
    if (policy !== 'auto') return policy;
    const threshold = room.config.mesh_threshold;
    if (room.size > threshold) return 'sfu';
    if (room.mode === 'sfu' && room.size <= threshold - 1) return 'mesh';
    return room.mode;
  }

  /** Re-evaluates a room after any change (joins, leaves, config updates). */
  evaluate(room: Room): void {
    if (room.closed) return;
    const state = this.state(room);
    if (state.busy) return; // re-evaluated when the move finishes
    const desired = this.desiredMode(room);
    if (desired === room.mode) {
      this.cancelDemotion(state);
      return;
    }
    if (desired === 'sfu') {
      this.cancelDemotion(state);
      void this.promote(room, room.config.mode_policy === 'sfu' ? 'pinned' : 'threshold');
      return;
    }
    // Back to mesh: at once when pinned, else after the count stayed low for the delay.
    if (room.config.mode_policy === 'mesh' || !this.options.sfu?.alive) {
      this.cancelDemotion(state);
      this.demote(room, room.config.mode_policy === 'mesh' ? 'pinned' : 'sfu_unavailable');
      return;
    }
    if (state.demoteTimer) return;
    state.demoteTimer = setTimeout(() => {
      state.demoteTimer = null;
      if (!room.closed && this.desiredMode(room) === 'mesh') this.demote(room, 'threshold');
    }, this.options.config.rooms.demoteDelayMs);
    state.demoteTimer.unref();
  }

  /** Stops all timers (shutdown). */
  close(): void {
    for (const state of this.states.values()) this.cancelDemotion(state);
    this.states.clear();
  }

  private state(room: Room): TopologyState {
    let state = this.states.get(room.key);
    if (!state) {
      state = { sfuRoom: null, demoteTimer: null, busy: false };
      this.states.set(room.key, state);
    }
    return state;
  }

  private forget(room: Room): void {
    const state = this.states.get(room.key);
    if (!state) return;
    this.cancelDemotion(state);
    if (state.sfuRoom) this.options.sfu?.close(state.sfuRoom);
    this.states.delete(room.key);
  }

  private cancelDemotion(state: TopologyState): void {
    if (state.demoteTimer) clearTimeout(state.demoteTimer);
    state.demoteTimer = null;
  }

  private async promote(room: Room, reason: string): Promise<void> {
    const state = this.state(room);
    const sfu = this.options.sfu;
    if (!sfu) return;
    state.busy = true;
    try {
      const sfuRoom = await sfu.open(room.key, room.tenantId);
      if (room.closed) {
        sfu.close(sfuRoom);
        return;
      }
      this.attach(room, state, sfuRoom);
      this.setMode(room, 'sfu', reason, sfuRoom);
    } catch (error) {
      this.logger.error({ err: error, room: room.key }, 'promotion to the SFU failed; the room stays a mesh');
    } finally {
      state.busy = false;
    }
    this.evaluate(room);
  }

  /** A room's router died with its worker: a new router, and clients re-migrate onto it. */
  private async rebuild(room: Room, since: number): Promise<void> {
    const state = this.state(room);
    const sfu = this.options.sfu;
    if (!sfu || room.closed || room.mode !== 'sfu') return;
    state.busy = true;
    try {
      const sfuRoom = await sfu.open(room.key, room.tenantId);
      if (room.closed) {
        sfu.close(sfuRoom);
        return;
      }
      this.attach(room, state, sfuRoom);
      this.setMode(room, 'sfu', 'sfu_restart', sfuRoom);
      this.options.metrics.sfuRebuilds.inc();
      state.busy = false;
      this.evaluate(room);
    } catch (error) {
      state.busy = false;
      // No worker yet (the replacement is starting): retry for a while, then fall back to mesh.
      if (Date.now() - since < 10_000) {
        setTimeout(() => void this.rebuild(room, since), REBUILD_RETRY_MS).unref();
      } else {
        this.logger.error({ err: error, room: room.key }, 'could not rebuild the SFU router; back to mesh');
        this.demote(room, 'sfu_unavailable');
      }
    }
  }

  private demote(room: Room, reason: string): void {
    const state = this.state(room);
    const retiring = state.sfuRoom;
    state.sfuRoom = null;
    this.setMode(room, 'mesh', reason);
    // Clients rebuild the mesh before closing their SFU transports; keep the router until then.
    if (retiring) {
      setTimeout(() => this.options.sfu?.close(retiring), this.options.config.sfu.migrationTimeoutMs + 5_000).unref();
    }
  }

  private attach(room: Room, state: TopologyState, sfuRoom: SfuRoom): void {
    state.sfuRoom = sfuRoom;
    const channel = channels.room(room.key);
    sfuRoom.on('producer_added', (info) => {
      const socketId = room.peers.get(info.peer_id)?.socket.id;
      (socketId ? this.options.io.to(channel).except(socketId) : this.options.io.to(channel)).emit('sfu:new_producer', info);
    });
    sfuRoom.on('producer_removed', (info) => this.options.io.to(channel).emit('sfu:producer_closed', info));
    sfuRoom.on('transport_failed', (failure) => {
      const peer = room.peers.get(failure.peerId);
      this.options.metrics.sfuTransportFailures.inc();
      this.logger.warn(
        { room: room.key, peer: failure.peerId, user: peer?.userId, direction: failure.direction, iceState: failure.iceState, dtlsState: failure.dtlsState, announcedIp: this.options.config.sfu.announcedIp ?? null },
        'an SFU transport did not connect: the client gets no media over the SFU (check SFU_ANNOUNCED_IP and that browsers reach the SFU ports)',
      );
      peer?.socket.emit('error', { code: 'unavailable', message: `media could not reach the SFU: the ${failure.direction} transport did not connect (ICE ${failure.iceState}, DTLS ${failure.dtlsState})` });
    });
  }

  private setMode(room: Room, mode: RoomMode, reason: string, sfuRoom?: SfuRoom): void {
    const previous = room.mode;
    room.mode = mode;
    const sfu = sfuRoom ? { router_rtp_capabilities: sfuRoom.rtpCapabilities, producers: sfuRoom.producers() } : undefined;
    this.options.io.to(channels.room(room.key)).emit('mode_changed', { mode, reason, ...(sfu ? { sfu } : {}) });
    if (previous !== mode) {
      this.options.metrics.roomsActive.dec({ mode: previous });
      this.options.metrics.roomsActive.inc({ mode });
      this.options.metrics.migrations.inc({ to: mode, reason });
    }
    this.logger.info({ room: room.key, mode, reason, peers: room.size }, 'room topology changed');
    this.options.onModeChanged?.(room, reason);
  }

  /** The caller's SFU room, or sfu_unavailable. */
  private sfuOf(socket: AppSocket): { peer: Peer; room: Room; sfuRoom: SfuRoom } {
    const { peer, room } = this.options.gateway.joined(socket);
    const sfuRoom = this.states.get(room.key)?.sfuRoom;
    if (!sfuRoom || sfuRoom.closed) throw new AppError('sfu_unavailable', 'the room is not on the SFU');
    return { peer, room, sfuRoom };
  }

  private registerHandlers(gateway: SignalingGateway): void {
    const on = <E extends Parameters<SignalingGateway['register']>[0]>(event: E, handler: Handler<E>) => gateway.register(event, handler);
    on('sfu:create_transport', async (socket, payload) => {
      const { peer, sfuRoom } = this.sfuOf(socket);
      return { transport: await sfuRoom.createTransport(peer.id, !peer.hidden, payload.direction) };
    });
    on('sfu:connect_transport', async (socket, payload) => {
      const { peer, sfuRoom } = this.sfuOf(socket);
      await sfuRoom.connectTransport(peer.id, payload.transport_id, payload.dtls_parameters as never);
      return {};
    });
    on('sfu:produce', async (socket, payload) => {
      const { peer, sfuRoom } = this.sfuOf(socket);
      if (!peer.grants.canPublish) throw new AppError('forbidden', 'token does not grant canPublish');
      const paused = peer.adminMuted[payload.kind];
      return { producer_id: await sfuRoom.produce(peer.id, payload.transport_id, payload.kind, payload.rtp_parameters as never, payload.app_data ?? {}, paused) };
    });
    on('sfu:produce_data', async (socket, payload) => {
      const { peer, sfuRoom } = this.sfuOf(socket);
      if (!peer.grants.canPublishData) throw new AppError('forbidden', 'token does not grant canPublishData');
      return { producer_id: await sfuRoom.produceData(peer.id, payload.transport_id, payload.sctp_stream_parameters as never, payload.label ?? '', payload.protocol ?? '') };
    });
    on('sfu:consume', async (socket, payload) => {
      const { peer, sfuRoom } = this.sfuOf(socket);
      if (!peer.grants.canSubscribe) throw new AppError('forbidden', 'token does not grant canSubscribe');
      return { consumer: await sfuRoom.consume(peer.id, payload.transport_id, payload.producer_id, payload.rtp_capabilities as never) };
    });
    on('sfu:consume_data', async (socket, payload) => {
      const { peer, sfuRoom } = this.sfuOf(socket);
      return { consumer: await sfuRoom.consumeData(peer.id, payload.transport_id, payload.producer_id) };
    });
    on('sfu:resume', async (socket, payload) => {
      const { peer, sfuRoom } = this.sfuOf(socket);
      await sfuRoom.resume(peer.id, payload.consumer_id);
      return {};
    });
    on('sfu:close_producer', (socket, payload) => {
      const { peer, sfuRoom } = this.sfuOf(socket);
      sfuRoom.closeProducer(peer.id, payload.producer_id);
      return {};
    });
  }
}
