import { randomBytes } from 'node:crypto';
import type { Grants, LinkQuality, Metadata, PeerInfo } from '../../protocol/events.js';
import type { VerifiedToken } from '../auth/TokenService.js';

/**
 * What observers of rooms (session records, the HTTP API) read of the connection a peer is on.
 * The signaling layer's socket is one. Rooms carry the connection and never use it: the
 * signaling layer sends on it and closes it, on the rooms' events.
 */
export interface PeerConnection {
  /** The client's address, as the handshake saw it. */
  readonly handshake: { readonly address: string };
  /** What the handshake verified. */
  readonly data: { readonly identity: VerifiedToken };
}

/**
 * One joined connection: a user in a room over one connection. `Connection` is the type of
 * that connection (the signaling layer's socket type); rooms only pass it along.
 */
export class Peer<Connection extends PeerConnection = PeerConnection> {
  /** Server-assigned id; signals are addressed to it. Not the socket id, which is not ours to leak. */
  readonly id = `p_${randomBytes(9).toString('base64url')}`;
  readonly joinedAt = new Date();
  metadata: Metadata;
  /** The latest quality summary the client reported, for operators (API, metrics). */
  quality: { at: Date; links: LinkQuality[] } | null = null;
  /** What a room admin muted (admin:mute): paused on the SFU, disabled by the peer's SDK in a mesh. */
  readonly adminMuted = { audio: false, video: false };

  constructor(
    readonly socket: Connection,
    readonly userId: string,
    readonly name: string,
    readonly grants: Grants,
    readonly jti: string,
    metadata: Metadata,
  ) {
    this.metadata = metadata;
  }

  get hidden(): boolean {
    return this.grants.hidden;
  }

  info(): PeerInfo {
    const muted = this.adminMuted.audio || this.adminMuted.video ? { muted: { ...this.adminMuted } } : {};
    return { id: this.id, user_id: this.userId, name: this.name, metadata: this.metadata, ...muted };
  }
}
