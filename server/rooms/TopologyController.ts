import type { RoomMode } from '../../protocol/events.js';
import type { Config } from '../../config/index.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../Metrics.js';
import type { SfuRoom, SfuService } from '../sfu/SfuService.js';
import { TypedEmitter } from '../TypedEmitter.js';
import type { PeerConnection } from './Peer.js';
import type { Room } from './Room.js';
import type { RoomManager } from './RoomManager.js';

export interface TopologyControllerOptions<Connection extends PeerConnection> {
  rooms: RoomManager<Connection>;
  /** null when SFU_ENABLED=false: rooms stay mesh. */
  sfu: SfuService | null;
  config: Readonly<Config>;
  logger: Logger;
  metrics: Metrics;
}

export type TopologyEvents<Connection extends PeerConnection = PeerConnection> = {
  /**
   * The room changed topology (room.mode is the new one), or its router was replaced (reason
   * sfu_restart). `sfuRoom` is the new router the room is on (it emits the room's producer and
   * transport events); null when the room went back to a mesh.
   */
  mode_changed: [room: Room<Connection>, reason: string, sfuRoom: SfuRoom | null];
};

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
 * DEMOTE_DELAY_MS (hysteresis), pins by mode policy, re-evaluation on any change. Each move
 * is a mode_changed event; clients do the make-before-break migration when the signaling
 * layer relays it to them.
 */
export class TopologyController<Connection extends PeerConnection = PeerConnection> extends TypedEmitter<TopologyEvents<Connection>> {
  private readonly states = new Map<string, TopologyState>();
  private readonly logger: Logger;

  constructor(private readonly options: TopologyControllerOptions<Connection>) {
    super(options.logger);
    this.logger = options.logger.child({ module: 'topology' });
    const { rooms, sfu } = options;
    rooms.on('peer_joined', (room) => this.evaluate(room));
    rooms.on('peer_left', (room, peer) => {
      this.state(room).sfuRoom?.removePeer(peer.id);
      this.evaluate(room);
    });
    rooms.on('room_updated', (room) => this.evaluate(room));
    rooms.on('peer_muted', (room, peer, kind, muted) => {
      this.state(room)
        .sfuRoom?.setMuted(peer.id, kind, muted)
        .catch((error: unknown) => this.logger.warn({ err: error, room: room.key }, 'could not apply an admin mute on the SFU'));
    });
    rooms.on('room_finished', (room) => this.forget(room));
    rooms.on('room_dropped', (room) => this.forget(room));
    sfu?.on('rooms_lost', (keys) => {
      for (const key of keys) {
        const room = rooms.getByKey(key);
        // The lost router may be a demoted one still retiring: rebuild only a room whose own router is gone.
        if (room && room.mode === 'sfu' && this.states.get(key)?.sfuRoom?.closed !== false) void this.rebuild(room, Date.now());
      }
    });
  }

  /** The open router the room is on, if it is on the SFU. */
  routerOf(room: Room<Connection>): SfuRoom | undefined {
    const sfuRoom = this.states.get(room.key)?.sfuRoom;
    return sfuRoom && !sfuRoom.closed ? sfuRoom : undefined;
  }

  /** The mode the room should be in now. */
  desiredMode(room: Room<Connection>): RoomMode {
    if (!this.options.sfu?.alive) return 'mesh';
    const policy = room.config.mode_policy;
    if (policy !== 'auto') return policy;
    const threshold = room.config.mesh_threshold;
    if (room.size > threshold) return 'sfu';
    if (room.mode === 'sfu' && room.size <= threshold - 1) return 'mesh';
    return room.mode;
  }

  /**
   * A room that moved in from another node resumes its topology: on the SFU, a router opens
   * here before its clients arrive (they join straight onto it). Resolves once it is in place.
   */
  async resume(room: Room<Connection>, mode: RoomMode): Promise<void> {
    if (mode !== 'sfu' || room.mode === 'sfu' || room.closed) return;
    const state = this.state(room);
    if (state.busy) return;
    await this.promote(room, 'moved');
  }

  /** Re-evaluates a room after any change (joins, leaves, config updates). A room moving to another node keeps its topology until it has gone. */
  evaluate(room: Room<Connection>): void {
    if (room.closed || room.movingOut) return;
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

  private state(room: Room<Connection>): TopologyState {
    let state = this.states.get(room.key);
    if (!state) {
      state = { sfuRoom: null, demoteTimer: null, busy: false };
      this.states.set(room.key, state);
    }
    return state;
  }

  private forget(room: Room<Connection>): void {
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

  private async promote(room: Room<Connection>, reason: string): Promise<void> {
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
      state.sfuRoom = sfuRoom;
      this.setMode(room, 'sfu', reason, sfuRoom);
    } catch (error) {
      this.logger.error({ err: error, room: room.key }, 'promotion to the SFU failed; the room stays a mesh');
    } finally {
      state.busy = false;
    }
    this.evaluate(room);
  }

  /** A room's router died with its worker: a new router, and clients re-migrate onto it. */
  private async rebuild(room: Room<Connection>, since: number): Promise<void> {
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
      state.sfuRoom = sfuRoom;
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

  private demote(room: Room<Connection>, reason: string): void {
    const state = this.state(room);
    const retiring = state.sfuRoom;
    state.sfuRoom = null;
    this.setMode(room, 'mesh', reason);
    // Clients rebuild the mesh before closing their SFU transports; keep the router until then.
    if (retiring) {
      setTimeout(() => this.options.sfu?.close(retiring), this.options.config.sfu.migrationTimeoutMs + 5_000).unref();
    }
  }

  private setMode(room: Room<Connection>, mode: RoomMode, reason: string, sfuRoom?: SfuRoom): void {
    const previous = room.mode;
    room.mode = mode;
    if (previous !== mode) {
      this.options.metrics.roomsActive.dec({ mode: previous });
      this.options.metrics.roomsActive.inc({ mode });
      this.options.metrics.migrations.inc({ to: mode, reason });
    }
    this.logger.info({ room: room.key, mode, reason, peers: room.size }, 'room topology changed');
    this.emit('mode_changed', room, reason, sfuRoom ?? null);
  }
}
