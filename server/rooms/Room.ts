import type { PeerInfo, RoomConfigInfo, RoomMode } from '../../protocol/events.js';
import type { Peer, PeerConnection } from './Peer.js';

/**
 * A live room: its peers (by id and by user), resolved config and current topology.
 * `Connection` is the type of its peers' connections (see Peer).
 */
export class Room<Connection extends PeerConnection = PeerConnection> {
  readonly key: string;
  readonly createdAt = new Date();
  mode: RoomMode = 'mesh';
  closed = false;
  readonly peers = new Map<string, Peer<Connection>>();
  private readonly peersByUser = new Map<string, Peer<Connection>>();
  /** Pending close while empty (grace period). */
  emptyTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly tenantId: string,
    readonly id: string,
    public config: RoomConfigInfo,
  ) {
    this.key = Room.keyOf(tenantId, id);
  }

  /** Rooms are addressed per tenant: A's "x" and B's "x" are different rooms. */
  static keyOf(tenantId: string, roomId: string): string {
    return `${tenantId}/${roomId}`;
  }

  get size(): number {
    return this.peers.size;
  }

  add(peer: Peer<Connection>): void {
    this.peers.set(peer.id, peer);
    this.peersByUser.set(peer.userId, peer);
  }

  remove(peer: Peer<Connection>): boolean {
    if (!this.peers.delete(peer.id)) return false;
    if (this.peersByUser.get(peer.userId) === peer) this.peersByUser.delete(peer.userId);
    return true;
  }

  peerByUser(userId: string): Peer<Connection> | undefined {
    return this.peersByUser.get(userId);
  }

  /** Peers others may see (hidden peers excluded), optionally without one. */
  visiblePeers(except?: Peer<Connection>): PeerInfo[] {
    const list: PeerInfo[] = [];
    for (const peer of this.peers.values()) if (peer !== except && !peer.hidden) list.push(peer.info());
    return list;
  }
}
