import { randomBytes } from 'node:crypto';
import type { Grants, LinkQuality, Metadata, PeerInfo } from '../../protocol/events.js';
import type { AppSocket } from '../signaling/types.js';

/** One joined connection: a user in a room over one socket. */
export class Peer {
  /** Server-assigned id; signals are addressed to it. Not the socket id, which is not ours to leak. */
  readonly id = `p_${randomBytes(9).toString('base64url')}`;
  readonly joinedAt = new Date();
  metadata: Metadata;
  /** The latest quality summary the client reported, for operators (API, metrics). */
  quality: { at: Date; links: LinkQuality[] } | null = null;
  /** What a room admin muted (admin:mute): paused on the SFU, disabled by the peer's SDK in a mesh. */
  readonly adminMuted = { audio: false, video: false };

  constructor(
    readonly socket: AppSocket,
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
