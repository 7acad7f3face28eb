import type { ClientEventName, TrackSource } from '../../../protocol/events.js';
import { SOURCE_KIND, trackId, trackSource } from '../../../protocol/schemas.js';
import { AppError } from '../../errors.js';
import type { SfuRoom } from '../../sfu/SfuService.js';
import { EMPTY_ACK, type ClientEventHandlers } from '../EventPipeline.js';
import type { AppSocket, SocketPeer, SocketRoom, SocketRooms, SocketTopology } from '../types.js';
import { joined } from './joined.js';
import { assertMayPublish, assertScreenShareAllowed } from './tracks.js';

export type SfuEventName = Extract<ClientEventName, `sfu:${string}`>;

export interface SfuHandlerOptions {
  rooms: SocketRooms;
  topology: SocketTopology;
}

/**
 * The sfu:* requests of a peer whose room is on the SFU: its transports, producers and
 * consumers on the room's router. Grants are checked here; ownership by the router.
 */
export function sfuHandlers(options: SfuHandlerOptions): Pick<ClientEventHandlers, SfuEventName> {
  /** The caller's peer and its room's router, or sfu_unavailable. */
  const onRouter = (socket: AppSocket): { peer: SocketPeer; room: SocketRoom; sfuRoom: SfuRoom } => {
    const { peer, room } = joined(options.rooms, socket);
    const sfuRoom = options.topology.routerOf(room);
    if (!sfuRoom) throw new AppError('sfu_unavailable', 'the room is not on the SFU');
    return { peer, room, sfuRoom };
  };

  return {
    async 'sfu:create_transport'(socket, payload) {
      const { peer, sfuRoom } = onRouter(socket);
      return { transport: await sfuRoom.createTransport(peer.id, !peer.hidden, payload.direction) };
    },

    async 'sfu:connect_transport'(socket, payload) {
      const { peer, sfuRoom } = onRouter(socket);
      await sfuRoom.connectTransport(peer.id, payload.transport_id, payload.dtls_parameters);
      return EMPTY_ACK;
    },

    async 'sfu:produce'(socket, payload) {
      const { peer, room, sfuRoom } = onRouter(socket);
      if (!peer.grants.canPublish) throw new AppError('forbidden', 'token does not grant canPublish');
      const { source, track_id } = producedTrack(payload.kind, payload.app_data);
      assertMayPublish(peer, source);
      const announced = track_id !== undefined ? peer.tracks.get(track_id) : undefined;
      if (announced && announced.source !== source)
        throw new AppError('payload_invalid', `app_data.source: the track was announced as ${announced.source} (publish_track)`);
      const paused = peer.adminMuted[payload.kind];
      return {
        producer_id: await sfuRoom.produce(
          peer.id,
          payload.transport_id,
          payload.kind,
          payload.rtp_parameters,
          payload.app_data ?? {},
          paused,
          payload.kind === 'video' ? payload.video_size : undefined,
          source === 'screen' ? () => assertScreenShareAllowed(room, sfuRoom, peer, track_id, { producing: true }) : undefined,
        ),
      };
    },

    async 'sfu:produce_data'(socket, payload) {
      const { peer, sfuRoom } = onRouter(socket);
      if (!peer.grants.canPublishData) throw new AppError('forbidden', 'token does not grant canPublishData');
      return {
        producer_id: await sfuRoom.produceData(
          peer.id,
          payload.transport_id,
          payload.sctp_stream_parameters,
          payload.label ?? '',
          payload.protocol ?? '',
        ),
      };
    },

    async 'sfu:consume'(socket, payload) {
      const { peer, sfuRoom } = onRouter(socket);
      if (!peer.grants.canSubscribe) throw new AppError('forbidden', 'token does not grant canSubscribe');
      return { consumer: await sfuRoom.consume(peer.id, payload.transport_id, payload.producer_id, payload.rtp_capabilities) };
    },

    async 'sfu:consume_data'(socket, payload) {
      const { peer, sfuRoom } = onRouter(socket);
      return { consumer: await sfuRoom.consumeData(peer.id, payload.transport_id, payload.producer_id) };
    },

    async 'sfu:resume'(socket, payload) {
      const { peer, sfuRoom } = onRouter(socket);
      await sfuRoom.resume(peer.id, payload.consumer_id);
      return EMPTY_ACK;
    },

    async 'sfu:consumer_preferences'(socket, payload) {
      const { peer, sfuRoom } = onRouter(socket);
      const { consumer_id, ...preferences } = payload;
      await sfuRoom.setConsumerPreferences(peer.id, consumer_id, preferences);
      return EMPTY_ACK;
    },

    'sfu:close_producer'(socket, payload) {
      const { peer, sfuRoom } = onRouter(socket);
      sfuRoom.closeProducer(peer.id, payload.producer_id);
      return EMPTY_ACK;
    },
  };
}

/**
 * The source (required) and track id (optional) a producer's app_data carries: missing or
 * unknown, or a source of the other kind, is payload_invalid.
 */
function producedTrack(kind: 'audio' | 'video', appData: Record<string, unknown> | undefined): { source: TrackSource; track_id?: string } {
  const source = trackSource.safeParse(appData?.source);
  if (!source.success) throw new AppError('payload_invalid', 'app_data.source: must be one of camera, microphone, screen, screen_audio');
  if (SOURCE_KIND[source.data] !== kind) throw new AppError('payload_invalid', `app_data.source: ${source.data} is not ${kind}`);
  if (appData?.track_id === undefined) return { source: source.data };
  const id = trackId.safeParse(appData.track_id);
  if (!id.success) throw new AppError('payload_invalid', 'app_data.track_id: must be a track id');
  return { source: source.data, track_id: id.data };
}
