import type { ClientEventName } from '../../../protocol/events.js';
import { AppError } from '../../errors.js';
import type { Store } from '../../store/Store.js';
import { EMPTY_ACK, type ClientEventHandlers } from '../EventPipeline.js';
import type { AppSocket, SocketPeer, SocketRoom, SocketRooms } from '../types.js';
import { joined } from './joined.js';

export type AdminEventName = Extract<ClientEventName, `admin:${string}`>;

export interface AdminHandlerOptions {
  rooms: SocketRooms;
  store: Store;
  /** Disconnects every socket of a token, on every node (see SignalingGateway.disconnectToken). */
  disconnectToken: (tenantId: string, jti: string) => void;
}

/** A room admin's actions on the caller's room: kick, lock, mute. Each needs the roomAdmin grant. */
export function adminHandlers(options: AdminHandlerOptions): Pick<ClientEventHandlers, AdminEventName> {
  const { rooms } = options;

  /** The caller's room, if the caller may administer it. */
  const administeredRoom = (socket: AppSocket): SocketRoom => {
    const { peer, room } = joined(rooms, socket);
    if (!peer.grants.roomAdmin) throw new AppError('forbidden', 'token does not grant roomAdmin');
    return room;
  };

  return {
    async 'admin:kick'(socket, payload) {
      const room = administeredRoom(socket);
      // A participant whose connection dropped is kicked from its held place: it cannot come back.
      const place = room.expected.get(payload.peer_id);
      if (place) {
        if (place.token) await options.store.tokens.revoke(room.tenantId, place.token.jti, place.token.expiresAt);
        rooms.removePlace(room, place, payload.reason ?? 'kicked');
        if (place.token) options.disconnectToken(room.tenantId, place.token.jti);
        return EMPTY_ACK;
      }
      const kicked = peerOf(room, payload.peer_id);
      // A kicked token cannot rejoin: its jti is revoked until it expires.
      await options.store.tokens.revoke(room.tenantId, kicked.jti, kicked.socket.data.identity.expiresAt);
      rooms.removePeer(room, kicked, payload.reason ?? 'kicked', { kick: true });
      // The kick is of the token: a session it reopened while the revocation was written ends too.
      options.disconnectToken(room.tenantId, kicked.jti);
      return EMPTY_ACK;
    },

    'admin:lock'(socket, payload) {
      const room = administeredRoom(socket);
      rooms.updateConfig(room, { locked: payload.locked });
      return { locked: room.config.locked };
    },

    /**
     * Mutes (or unmutes) a peer's audio or video for everyone: the peer and the room learn it
     * from peer_updated (`muted`); on the SFU its producers of that kind are paused, so nothing
     * flows whatever its client does; in a mesh its SDK disables its tracks of that kind.
     */
    'admin:mute'(socket, payload) {
      const room = administeredRoom(socket);
      rooms.setMuted(room, peerOf(room, payload.peer_id), payload.kind, payload.muted);
      return EMPTY_ACK;
    },
  };
}

/** A peer of the room, or peer_not_found. */
function peerOf(room: SocketRoom, peerId: string): SocketPeer {
  const peer = room.peers.get(peerId);
  if (!peer) throw new AppError('peer_not_found', 'no such peer in this room');
  return peer;
}
