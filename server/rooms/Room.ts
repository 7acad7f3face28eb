import type { PeerInfo, RoomConfigInfo, RoomMode } from '../../protocol/events.js';
import { expectedPeerInfo, type ExpectedPeer, type Peer, type PeerConnection } from './Peer.js';

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
  /** Places held for participants coming back (the room moved here), by peer id. */
  readonly expected = new Map<string, ExpectedPeer>();
  /**
   * The room moved to another node: it serves the peers still connected here (their media
   * on this node's SFU keeps flowing) until they have joined there; no new peer, no topology change.
   */
  movingOut = false;
  /** When the room closes by itself (its stored expires_at), if ever. */
  expiresAt: Date | null = null;
  /** The room came here from another node (it did not start for the tenant here). */
  movedIn = false;
  private readonly expectedByUserId = new Map<string, ExpectedPeer>();
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

  /** Connected peers and the places held for returning ones (they count against size limits and for the topology). */
  get size(): number {
    return this.peers.size + this.expected.size;
  }

  /** Connected peers only. */
  get connectedCount(): number {
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

  /** Holds a place for a returning participant. */
  expect(place: ExpectedPeer): void {
    this.expected.set(place.id, place);
    this.expectedByUserId.set(place.userId, place);
  }

  unexpect(place: ExpectedPeer): void {
    if (this.expected.get(place.id) !== place) return;
    this.expected.delete(place.id);
    if (this.expectedByUserId.get(place.userId) === place) this.expectedByUserId.delete(place.userId);
  }

  expectedByUser(userId: string): ExpectedPeer | undefined {
    return this.expectedByUserId.get(userId);
  }

  /** Screen shares in the room (held places included), except the track `except` of the peer `exceptPeerId`. */
  screenShares(exceptPeerId?: string, exceptTrackId?: string): number {
    let count = 0;
    for (const peer of this.peers.values())
      for (const track of peer.tracks.values())
        if (track.source === 'screen' && !(peer.id === exceptPeerId && track.track_id === exceptTrackId)) count++;
    for (const place of this.expected.values()) for (const track of place.tracks ?? []) if (track.source === 'screen') count++;
    return count;
  }

  /** Peers others may see (hidden peers excluded), optionally without one. */
  visiblePeers(except?: Peer<Connection>): PeerInfo[] {
    const list: PeerInfo[] = [];
    for (const peer of this.peers.values()) if (peer !== except && !peer.hidden) list.push(peer.info());
    for (const expected of this.expected.values()) if (!expected.hidden) list.push(expectedPeerInfo(expected));
    return list;
  }
}
