import type { Server, Socket } from 'socket.io';
import type { ClientToServerEvents, ServerToClientEvents } from '../../protocol/events.js';
import type { VerifiedToken } from '../auth/TokenService.js';
import type { Peer } from '../rooms/Peer.js';
import type { Room } from '../rooms/Room.js';
import type { RoomManager } from '../rooms/RoomManager.js';
import type { TopologyController } from '../rooms/TopologyController.js';
import type { TenantRecord } from '../store/Store.js';

/** Events between server nodes (serverSideEmit through the Redis adapter). */
export interface InterServerEvents {
  /** A token was revoked on another node: its sockets here are about to be disconnected (the reason peers see is `revoked`). */
  token_revoked: (tenantId: string, jti: string) => void;
}

/** What the handshake establishes for each socket. */
export interface SocketData {
  identity: VerifiedToken;
  tenant: TenantRecord;
  /** The key of the socket's room (Room.keyOf of its tenant and its token's room), computed once at the handshake. */
  roomKey: string;
  /** Set while the socket is joined to its room. */
  peer: SocketPeer | null;
  /** True while a join of this socket is under way (between its check and its admission). */
  joining?: boolean;
  /** Settles once the token was checked for a revocation written during the handshake. */
  revocationChecked?: Promise<void>;
  /** Why the server is disconnecting this socket, for peer_left and the session record. */
  closeReason?: string;
}

export type AppServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type AppSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

/** Rooms, peers and topology whose peers are on sockets of this server. */
export type SocketPeer = Peer<AppSocket>;
export type SocketRoom = Room<AppSocket>;
export type SocketRooms = RoomManager<AppSocket>;
export type SocketTopology = TopologyController<AppSocket>;

/** Socket.IO room names. Kept in one place so cross-node actions address the same names. */
export const channels = {
  room: (roomKey: string) => `room:${roomKey}`,
  /** Per token; jtis are a tenant's, so the tenant is part of the name. */
  token: (tenantId: string, jti: string) => `jti:${JSON.stringify([tenantId, jti])}`,
} as const;
