import { randomBytes } from 'node:crypto';
import type { ConnectionQuality, Grants, LinkQuality, Metadata, PeerInfo, TrackInfo, TrackSource } from '../../protocol/events.js';
import type { VerifiedToken } from '../auth/TokenService.js';

/**
 * What observers of rooms (session records, the HTTP API) read of the connection a peer is on.
 * The signaling layer's socket is one. Rooms carry the connection and never use it: the
 * signaling layer sends on it and closes it, on the rooms' events.
 */
export interface PeerConnection {
  /** The client's address, as the handshake saw it; `issued`: when the handshake was made (ms since the epoch). */
  readonly handshake: { readonly address: string; readonly issued?: number };
  /** What the handshake verified. */
  readonly data: { readonly identity: VerifiedToken };
}

/** A fresh peer id: `p_` and 12 base64url characters (protocol/schemas.ts peerId). */
export function newPeerId(): string {
  return `p_${randomBytes(9).toString('base64url')}`;
}

/**
 * A place held in a room for a participant whose connection is elsewhere for a moment: its
 * connection dropped, or the room moved here from another node, and the participant has not
 * reconnected yet. Others see it as present; the participant takes it back (same peer id) by
 * joining with `resume`.
 */
export interface ExpectedPeer {
  id: string;
  userId: string;
  name: string;
  metadata: Metadata;
  hidden: boolean;
  adminMuted: { audio: boolean; video: boolean };
  /** What the participant muted of its own (the `mute` event), when known. */
  selfMuted?: { audio: boolean; video: boolean };
  /** The tracks it published (kept for its return: the others still see them). */
  tracks?: TrackInfo[];
  /** When the participant first joined the room (on whichever node). */
  joinedAt: Date;
  /** The token it joined with, when known: a kick of the place revokes it. */
  token?: { jti: string; expiresAt: Date };
  /** Removes the place (the participant did not come back in time). */
  timer: NodeJS.Timeout | null;
}

/** An expected peer as the others see it. */
export function expectedPeerInfo(expected: ExpectedPeer): PeerInfo {
  return {
    id: expected.id,
    user_id: expected.userId,
    name: expected.name,
    metadata: expected.metadata,
    ...mutedInfo(expected.adminMuted, expected.selfMuted),
    ...(expected.tracks?.length ? { tracks: expected.tracks.map((track) => ({ ...track })) } : {}),
  };
}

/** True when `grants` let a participant publish a track of `source` (canPublish, and canPublishSources absent or naming it). */
export function mayPublishSource(grants: Grants, source: TrackSource): boolean {
  return grants.canPublish && (grants.canPublishSources === undefined || grants.canPublishSources.includes(source));
}

/** PeerInfo's `muted` and `self_muted`, each present only while something is muted. */
function mutedInfo(
  adminMuted: { audio: boolean; video: boolean },
  selfMuted: { audio: boolean; video: boolean } | undefined,
): Pick<PeerInfo, 'muted' | 'self_muted'> {
  return {
    ...(adminMuted.audio || adminMuted.video ? { muted: { ...adminMuted } } : {}),
    ...(selfMuted && (selfMuted.audio || selfMuted.video) ? { self_muted: { ...selfMuted } } : {}),
  };
}

/**
 * One joined connection: a user in a room over one connection. `Connection` is the type of
 * that connection (the signaling layer's socket type); rooms only pass it along.
 */
export class Peer<Connection extends PeerConnection = PeerConnection> {
  /**
   * Server-assigned id; signals are addressed to it. Not the socket id, which is not ours to
   * leak. A resumed peer keeps the id of the place it takes back (see Room.expected).
   */
  readonly id: string;
  readonly joinedAt: Date;
  metadata: Metadata;
  /** The latest quality summary the client reported, for operators (API, metrics). */
  quality: { at: Date; links: LinkQuality[] } | null = null;
  /** Its connection quality from those links (protocol/connectionQuality.ts); null until one measured something. */
  connectionQuality: ConnectionQuality | null = null;
  /** What a room admin muted (admin:mute): paused on the SFU, disabled by the peer's SDK in a mesh. */
  readonly adminMuted = { audio: false, video: false };
  /** What the peer muted of its own (the `mute` event): its SDK disabled those tracks; the others are told. */
  readonly selfMuted = { audio: false, video: false };
  /** The tracks it announced (`publish_track`), by track id. */
  readonly tracks = new Map<string, TrackInfo>();

  constructor(
    readonly socket: Connection,
    readonly userId: string,
    readonly name: string,
    readonly grants: Grants,
    readonly jti: string,
    metadata: Metadata,
    /** The place it takes back (a resumed peer keeps its id, join time and own mute). */
    place?: { id: string; joinedAt: Date; selfMuted?: { audio: boolean; video: boolean }; tracks?: TrackInfo[] },
  ) {
    this.metadata = metadata;
    this.id = place?.id ?? newPeerId();
    this.joinedAt = place?.joinedAt ?? new Date();
    if (place?.selfMuted) Object.assign(this.selfMuted, place.selfMuted);
    for (const track of place?.tracks ?? []) if (mayPublishSource(grants, track.source)) this.tracks.set(track.track_id, { ...track });
  }

  /** Its tracks as the room sees them. */
  trackInfos(): TrackInfo[] {
    return [...this.tracks.values()].map((track) => ({ ...track }));
  }

  get hidden(): boolean {
    return this.grants.hidden;
  }

  info(): PeerInfo {
    return {
      id: this.id,
      user_id: this.userId,
      name: this.name,
      metadata: this.metadata,
      ...mutedInfo(this.adminMuted, this.selfMuted),
      ...(this.tracks.size > 0 ? { tracks: this.trackInfos() } : {}),
    };
  }
}
