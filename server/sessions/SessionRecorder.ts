/**
 * Records every join -> leave as a session (audit and billing): tenant, room, user, jti, peer
 * address, connected/disconnected times, duration, disconnect reason, and time per topology
 * as mode segments. Store writes never block signaling: RoomManager events enqueue them and
 * return; writes of one session run in order (open, mode changes, close) through a per-session
 * promise chain; failures are logged, never thrown into the room code.
 * A close that never lands (crash, kill -9, a store outage) must not count as usage forever:
 * every open session carries this node's id and a last_seen_at refreshed each heartbeat,
 * readers take a session not seen for a few heartbeats as ended then, start() closes the
 * lost ones, and close writes are retried.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../logger.js';
import type { Peer } from '../rooms/Peer.js';
import type { Room } from '../rooms/Room.js';
import type { RoomManager } from '../rooms/RoomManager.js';
import type { Store } from '../store/Store.js';

export interface SessionRecorderOptions {
  store: Store;
  logger: Logger;
  /** This server's NODE_ID, recorded in each session. */
  nodeId: string;
  /** How often the live sessions' last_seen_at is refreshed (ms). */
  heartbeatMs: number;
  /** Waits before each retry of a failed close (ms); default 250, 1000, 4000. */
  closeRetryDelaysMs?: readonly number[];
}

const DEFAULT_CLOSE_RETRY_DELAYS_MS = [250, 1000, 4000] as const;

interface LiveSession {
  sessionId: string;
  /** The last queued write of this session; the next one runs after it. */
  chain: Promise<void>;
}

export class SessionRecorder {
  private readonly logger: Logger;
  /** Live sessions by peer id (one per joined connection). */
  private readonly live = new Map<string, LiveSession>();
  /** Every chain still running, so close() can wait for the last writes. */
  private readonly pending = new Set<Promise<void>>();
  private readonly unsubscribers: (() => void)[] = [];
  private heartbeat: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly options: SessionRecorderOptions) {
    this.logger = options.logger.child({ module: 'sessions', node: options.nodeId });
  }

  /**
   * Closes the sessions lost before this start (this node's, and any other node's that stopped
   * heartbeating) at their last heartbeat, then starts the heartbeat. A failure is logged:
   * readers already take stale sessions as ended.
   */
  async start(): Promise<void> {
    try {
      const closed = await this.options.store.sessions.closeLost(this.options.nodeId, new Date());
      if (closed > 0) this.logger.warn({ closed }, 'closed sessions lost before this start at their last heartbeat');
    } catch (error) {
      this.logger.error({ err: error }, 'closing lost sessions failed');
    }
    if (this.stopped || this.heartbeat) return;
    this.heartbeat = setInterval(() => this.beat(), this.options.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Subscribes to joins and leaves. */
  attach(rooms: RoomManager): void {
    this.unsubscribers.push(
      rooms.on('peer_joined', (room, peer) => this.opened(room, peer)),
      rooms.on('peer_left', (_room, peer, reason) => this.closed(peer, reason)),
    );
  }

  /** The session id recorded for a joined peer (undefined once it left). */
  sessionIdOf(peer: Peer): string | undefined {
    return this.live.get(peer.id)?.sessionId;
  }

  /** Called by the SFU work after a room changed topology: every live session starts a segment in room.mode. */
  roomModeChanged(room: Room): void {
    const at = new Date();
    const mode = room.mode;
    for (const peer of room.peers.values()) {
      const session = this.live.get(peer.id);
      if (session) this.write(session, (store) => store.sessions.changeMode(session.sessionId, mode, at), 'changeMode');
    }
  }

  /** Waits (up to timeoutMs) for queued writes, then stops listening. Idempotent. */
  async close(timeoutMs = 2000): Promise<void> {
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    for (const unsubscribe of this.unsubscribers.splice(0)) unsubscribe();
    if (this.pending.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.pending]), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Resolves once every write queued so far has finished (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private opened(room: Room, peer: Peer): void {
    const session: LiveSession = { sessionId: `s_${randomUUID()}`, chain: Promise.resolve() };
    this.live.set(peer.id, session);
    const record = {
      session_id: session.sessionId,
      tenant_id: room.tenantId,
      room_id: room.id,
      user_id: peer.userId,
      jti: peer.jti,
      peer_id: peer.id,
      address: peer.socket.handshake.address,
      node_id: this.options.nodeId,
      connected_at: peer.joinedAt,
      last_seen_at: peer.joinedAt,
      disconnected_at: null,
      duration_ms: null,
      disconnect_reason: null,
      segments: [{ mode: room.mode, from: peer.joinedAt, to: null }],
    };
    this.write(session, (store) => store.sessions.open(record), 'open');
  }

  private closed(peer: Peer, reason: string): void {
    const session = this.live.get(peer.id);
    if (!session) return;
    this.live.delete(peer.id);
    const at = new Date();
    this.write(session, (store) => this.retried(() => store.sessions.close(session.sessionId, at, reason), session.sessionId), 'close');
  }

  /** One store call refreshing last_seen_at of every live session of this node. */
  private beat(): void {
    const ids = [...this.live.values()].map((session) => session.sessionId);
    if (ids.length === 0) return;
    this.options.store.sessions.touch(ids, new Date()).catch((error: unknown) => {
      this.logger.error({ err: error, sessions: ids.length }, 'session heartbeat failed');
    });
  }

  /** Runs `operation`, retrying with backoff: a close lost to a short outage would stay open. */
  private async retried(operation: () => Promise<void>, sessionId: string): Promise<void> {
    const delays = this.options.closeRetryDelaysMs ?? DEFAULT_CLOSE_RETRY_DELAYS_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return await operation();
      } catch (error) {
        const delay = delays[attempt];
        if (delay === undefined) throw error;
        this.logger.warn({ err: error, session: sessionId, attempt: attempt + 1 }, 'session close failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  private write(session: LiveSession, operation: (store: Store) => Promise<void>, what: string): void {
    const next = session.chain
      .then(() => operation(this.options.store))
      .catch((error: unknown) => {
        this.logger.error({ err: error, session: session.sessionId, operation: what }, 'session write failed');
      });
    session.chain = next;
    this.pending.add(next);
    void next.finally(() => this.pending.delete(next));
  }
}
