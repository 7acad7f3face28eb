/**
 * Records every join -> leave as a session (audit and billing): tenant, room, user, jti, peer
 * address, connected/disconnected times, duration, disconnect reason, and time per topology
 * as mode segments. Store writes never block signaling: RoomManager events enqueue them and
 * return; writes of one session run in order (open, mode changes, close) through a per-session
 * promise chain; failures are logged, never thrown into the room code.
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
}

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

  constructor(private readonly options: SessionRecorderOptions) {
    this.logger = options.logger.child({ module: 'sessions' });
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
      connected_at: peer.joinedAt,
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
    this.write(session, (store) => store.sessions.close(session.sessionId, at, reason), 'close');
  }

  private write(session: LiveSession, operation: (store: Store) => Promise<void>, what: string): void {
    const next = session.chain.then(() => operation(this.options.store)).catch((error: unknown) => {
      this.logger.error({ err: error, session: session.sessionId, operation: what }, 'session write failed');
    });
    session.chain = next;
    this.pending.add(next);
    void next.finally(() => this.pending.delete(next));
  }
}
