import { AppError } from '../../errors.js';
import type { AppSocket, SocketPeer, SocketRoom, SocketRooms } from '../types.js';

/** The room of a socket's peer, if the socket is joined and the room is live. */
export function roomOf(rooms: SocketRooms, socket: AppSocket): SocketRoom | undefined {
  return socket.data.peer ? rooms.getByKey(socket.data.roomKey) : undefined;
}

/** The caller's peer and room, or not_in_room. */
export function joined(rooms: SocketRooms, socket: AppSocket): { peer: SocketPeer; room: SocketRoom } {
  const peer = socket.data.peer;
  const room = roomOf(rooms, socket);
  if (!peer || !room) throw new AppError('not_in_room', 'join a room first');
  return { peer, room };
}
