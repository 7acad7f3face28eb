import type { ClientEventName, Grants, IceServer } from '../../../protocol/events.js';
import { participantQuality } from '../../../protocol/connectionQuality.js';
import { AppError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { Metrics } from '../../Metrics.js';
import { EMPTY_ACK, type ClientEventHandlers } from '../EventPipeline.js';
import { mayPublishSource } from '../../rooms/Peer.js';
import { sdpSentKinds } from '../sdp.js';
import type { AppSocket, SocketRooms, SocketTopology } from '../types.js';
import { joined } from './joined.js';

export type SessionEventName = Extract<ClientEventName, 'join' | 'signal' | 'leave' | 'update_metadata' | 'stats' | 'mute'>;

export interface SessionHandlerOptions {
  rooms: SocketRooms;
  topology: SocketTopology;
  logger: Logger;
  metrics: Metrics;
  /** ICE servers (with fresh TURN credentials) for a user. */
  iceServers: (userId: string) => IceServer[];
}

/** A socket's life in its room: joining it, signalling its peers, its metadata and stats, leaving it. */
export function sessionHandlers(options: SessionHandlerOptions): Pick<ClientEventHandlers, SessionEventName> {
  const { rooms, topology, logger, metrics } = options;
  return {
    async join(socket, payload) {
      // Claimed before the first await: a second join on this socket while this one waits for the store is refused.
      if (socket.data.peer || socket.data.joining) throw new AppError('already_joined', 'already joined');
      socket.data.joining = true;
      const { identity, tenant } = socket.data;
      if (identity.anonymous)
        logger.warn({ tenant: tenant.tenant_id, room: identity.roomId, user: identity.userId }, 'anonymous join (ANONYMOUS_ROOMS is on)');
      const endTimer = metrics.joinDuration.startTimer();
      let admitted;
      try {
        await socket.data.revocationChecked;
        admitted = await rooms.admit({
          connection: socket,
          identity,
          tenant,
          metadata: payload?.metadata,
          resumeId: payload?.resume?.peer_id,
          confirm: () => stillJoining(socket),
        });
      } finally {
        socket.data.joining = false;
      }
      const { room, peer } = admitted;
      endTimer();
      const sfuRoom = room.mode === 'sfu' ? topology.routerOf(room) : undefined;
      return {
        self: { ...peer.info(), grants: peer.grants },
        room: { id: room.id, mode: room.mode, config: room.config },
        peers: room.visiblePeers(peer),
        ice_servers: options.iceServers(peer.userId),
        ...(sfuRoom ? { sfu: sfuRoom.info(peer.id) } : {}),
      };
    },

    signal(socket, payload) {
      const { peer, room } = joined(rooms, socket);
      const target = room.peers.get(payload.to);
      if (!target || target === peer) throw new AppError('peer_not_found', 'no such peer in this room');
      const { description } = payload;
      if (description?.sdp) assertMaySend(peer.grants, description.sdp);
      metrics.signalsRelayed.inc();
      target.socket.emit('signal', description ? { from: peer.id, description } : { from: peer.id, candidate: payload.candidate });
      return EMPTY_ACK;
    },

    leave(socket) {
      const { peer, room } = joined(rooms, socket);
      rooms.removePeer(room, peer, 'left');
      return EMPTY_ACK;
    },

    update_metadata(socket, payload) {
      const { peer, room } = joined(rooms, socket);
      if (!peer.grants.canUpdateOwnMetadata) throw new AppError('forbidden', 'token does not grant canUpdateOwnMetadata');
      rooms.updateMetadata(room, peer, payload.metadata);
      return { self: peer.info() };
    },

    /**
     * The peer muted (or unmuted) its own audio or video: the room learns it from peer_updated
     * (`self_muted`), late joiners from PeerInfo. Its SDK disabled the tracks (and paused its
     * producers on the SFU) itself; this is the news only, apart from the admin's mute.
     */
    mute(socket, payload) {
      const { peer, room } = joined(rooms, socket);
      if (!peer.grants.canPublish) throw new AppError('forbidden', 'token does not grant canPublish');
      if (peer.selfMuted[payload.kind] === payload.muted) return EMPTY_ACK;
      peer.selfMuted[payload.kind] = payload.muted;
      rooms.emit('peer_updated', room, peer);
      return EMPTY_ACK;
    },

    stats(socket, payload) {
      const { peer, room } = joined(rooms, socket);
      if (payload.migration) {
        metrics.migrationDuration.observe({ to: payload.migration.to }, payload.migration.duration_ms / 1000);
        metrics.migrationMediaGap.observe({ to: payload.migration.to }, payload.migration.media_gap_ms / 1000);
        if (payload.links.length === 0) return EMPTY_ACK;
      }
      peer.quality = { at: new Date(), links: payload.links };
      const quality = participantQuality(payload.links);
      if (quality !== undefined && quality !== peer.connectionQuality) {
        peer.connectionQuality = quality;
        rooms.emit('peer_quality', room, peer);
      }
      for (const link of payload.links) {
        if (link.rtt_ms !== undefined) metrics.clientRtt.observe({ candidate_type: link.candidate_type ?? 'unknown' }, link.rtt_ms / 1000);
        if (link.packet_loss !== undefined) metrics.clientPacketLoss.observe(link.packet_loss);
      }
      return EMPTY_ACK;
    },
  };
}

/** Refuses an admission whose socket went away or joined while the stored room was being read. */
function stillJoining(socket: AppSocket): void {
  if (socket.disconnected) throw new AppError('not_in_room', 'socket disconnected while joining');
  if (socket.data.peer) throw new AppError('already_joined', 'already joined');
}

/**
 * Refuses an offer or answer that would send media the grants do not allow: any audio or video
 * without canPublish; video without camera or screen, or audio without microphone or
 * screen_audio, in canPublishSources.
 */
function assertMaySend(grants: Grants, sdp: string): void {
  if (grants.canPublish && grants.canPublishSources === undefined) return;
  const kinds = sdpSentKinds(sdp);
  if (kinds.size === 0) return;
  if (!grants.canPublish) throw new AppError('forbidden', 'token does not grant canPublish: offer/answer must not send audio or video');
  if (kinds.has('video') && !mayPublishSource(grants, 'camera') && !mayPublishSource(grants, 'screen'))
    throw new AppError('forbidden', 'token does not grant a video source (canPublishSources): offer/answer must not send video');
  if (kinds.has('audio') && !mayPublishSource(grants, 'microphone') && !mayPublishSource(grants, 'screen_audio'))
    throw new AppError('forbidden', 'token does not grant an audio source (canPublishSources): offer/answer must not send audio');
}
