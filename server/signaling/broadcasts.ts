import type { Config } from '../../config/index.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../Metrics.js';
import type { SfuRoom } from '../sfu/SfuService.js';
import { channels, type AppServer, type SocketRoom, type SocketRooms, type SocketTopology } from './types.js';

/**
 * Tells clients what happens in their rooms: turns the RoomManager's events into Socket.IO
 * emits, and moves sockets in and out of their room's channel.
 *
 * Subscribe it before anything else subscribes to the rooms. Listeners run in subscription
 * order, so clients hear of a change before other observers act on it: the mode_changed of a
 * demotion a leave causes goes out after that leave's peer_left.
 *
 * Every emit here is local (io.local, socket.local, socket.emit): all the peers of a room are on
 * its owner node, and with the Redis adapter a non-local emit is published to Redis as well.
 */
export function broadcastRoomEvents(io: AppServer, rooms: SocketRooms): void {
  rooms.on('peer_joined', (room, peer, resumed) => {
    const socket = peer.socket;
    socket.data.peer = peer;
    socket.join(channels.room(room.key));
    // A resumed peer took back the place the others already see, under the same id: nothing new for them.
    if (!peer.hidden && !resumed) socket.local.to(channels.room(room.key)).emit('peer_joined', peer.info());
    // The others' connection quality as known now; changes follow (peer_quality).
    for (const other of room.peers.values())
      if (other !== peer && !other.hidden && other.connectionQuality)
        socket.emit('connection_quality', { peer_id: other.id, quality: other.connectionQuality });
  });

  rooms.on('expected_left', (room, place, reason) => {
    if (!place.hidden) io.local.to(channels.room(room.key)).emit('peer_left', { id: place.id, user_id: place.userId, reason });
  });

  rooms.on('room_moving', (room, wsUrl) => io.local.to(channels.room(room.key)).emit('room_moved', { ws_url: wsUrl }));

  rooms.on('peer_left', (room, peer, reason, exit) => {
    const socket = peer.socket;
    if (socket.data.peer === peer) socket.data.peer = null;
    if (exit === 'room_closed' || exit === 'moved' || exit === 'suspended') {
      // room_closed: the room heard room_closed already. moved: nobody is told; the client
      // joined the room's new node (room_moved), or reconnects and is sent there. suspended: its
      // connection dropped, its place is held. Either way every socket of it is disconnected.
      socket.data.closeReason = reason;
      socket.disconnect(true);
      return;
    }
    socket.leave(channels.room(room.key));
    if (!peer.hidden) io.local.to(channels.room(room.key)).emit('peer_left', { id: peer.id, user_id: peer.userId, reason });
    if (exit === 'kicked' && socket.connected) {
      socket.data.closeReason = reason;
      socket.emit('kicked', { reason });
      socket.disconnect(true);
    }
  });

  rooms.on('peer_updated', (room, peer) => {
    if (!peer.hidden) peer.socket.local.to(channels.room(room.key)).emit('peer_updated', peer.info());
  });

  // An admin mute is news for the muted peer too: its SDK disables its tracks in a mesh.
  rooms.on('peer_muted', (room, peer) => {
    const info = peer.info();
    if (!peer.hidden) peer.socket.local.to(channels.room(room.key)).emit('peer_updated', info);
    peer.socket.emit('peer_updated', info);
  });

  rooms.on('peer_quality', (room, peer) => {
    if (!peer.hidden && peer.connectionQuality)
      peer.socket.local.to(channels.room(room.key)).emit('connection_quality', { peer_id: peer.id, quality: peer.connectionQuality });
  });

  rooms.on('room_updated', (room) => io.local.to(channels.room(room.key)).emit('room_updated', { config: room.config }));

  rooms.on('room_closing', (room, reason) => io.local.to(channels.room(room.key)).emit('room_closed', { reason }));
}

export interface TopologyBroadcastOptions {
  io: AppServer;
  topology: SocketTopology;
  config: Readonly<Config>;
  logger: Logger;
  metrics: Metrics;
}

/**
 * Tells clients of their room's topology: mode_changed on every move (they migrate on it), and
 * the producers and transport failures of every router a room moves onto, for as long as that
 * router is open (a demoted router still retiring keeps announcing its closed producers).
 */
export function broadcastTopologyEvents(options: TopologyBroadcastOptions): void {
  const { io, topology } = options;
  topology.on('mode_changed', (room, reason, sfuRoom) => {
    if (sfuRoom) broadcastRouterEvents(room, sfuRoom, options);
    io.local.to(channels.room(room.key)).emit('mode_changed', { mode: room.mode, reason, ...(sfuRoom ? { sfu: sfuRoom.info() } : {}) });
  });
}

function broadcastRouterEvents(room: SocketRoom, sfuRoom: SfuRoom, options: TopologyBroadcastOptions): void {
  const { io, metrics } = options;
  const logger = options.logger.child({ module: 'sfu' });
  const channel = channels.room(room.key);
  sfuRoom.on('producer_added', (info) => {
    const socketId = room.peers.get(info.peer_id)?.socket.id;
    (socketId ? io.local.to(channel).except(socketId) : io.local.to(channel)).emit('sfu:new_producer', info);
  });
  sfuRoom.on('producer_removed', (info) => io.local.to(channel).emit('sfu:producer_closed', info));
  sfuRoom.on('active_speakers', (speakers) => io.local.to(channel).emit('active_speakers', { speakers }));
  sfuRoom.on('transport_failed', (failure) => {
    const peer = room.peers.get(failure.peerId);
    metrics.sfuTransportFailures.inc();
    logger.warn(
      {
        room: room.key,
        peer: failure.peerId,
        user: peer?.userId,
        direction: failure.direction,
        iceState: failure.iceState,
        dtlsState: failure.dtlsState,
        announcedIp: options.config.sfu.announcedIp ?? null,
      },
      'an SFU transport did not connect: the client gets no media over the SFU (check SFU_ANNOUNCED_IP and that browsers reach the SFU ports)',
    );
    peer?.socket.emit('error', {
      code: 'unavailable',
      message: `media could not reach the SFU: the ${failure.direction} transport did not connect (ICE ${failure.iceState}, DTLS ${failure.dtlsState})`,
    });
  });
}
