import type { ClientEventName, TrackInfo, TrackSource } from '../../../protocol/events.js';
import { AppError } from '../../errors.js';
import { mayPublishSource } from '../../rooms/Peer.js';
import type { SfuRoom } from '../../sfu/SfuService.js';
import { EMPTY_ACK, type ClientEventHandlers } from '../EventPipeline.js';
import type { SocketPeer, SocketRoom, SocketRooms, SocketTopology } from '../types.js';
import { joined } from './joined.js';

export type TrackEventName = Extract<ClientEventName, 'publish_track' | 'unpublish_track'>;

/** Tracks one participant may announce at once (bounds PeerInfo). */
export const MAX_TRACKS_PER_PEER = 16;

export interface TrackHandlerOptions {
  rooms: SocketRooms;
  topology: SocketTopology;
}

/** Refuses a source the peer's grants do not allow (canPublish, canPublishSources). */
export function assertMayPublish(peer: SocketPeer, source: TrackSource): void {
  if (!peer.grants.canPublish) throw new AppError('forbidden', 'token does not grant canPublish');
  if (!mayPublishSource(peer.grants, source))
    throw new AppError('forbidden', `token does not grant publishing the source ${source} (canPublishSources)`);
}

/**
 * Refuses a screen share past the room's max_screen_shares. Counted: every announced screen
 * track (held places included), and the SFU's screen producers (those being created too) whose
 * track its peer did not announce as a screen (a client that produces without publish_track,
 * or announced the track again as another source). The peer's own track `trackId` is not
 * counted, except, for a new producer (`producing`), a producer it already has for that track:
 * one track is one share, not one per m-section.
 */
export function assertScreenShareAllowed(
  room: SocketRoom,
  sfuRoom: SfuRoom | undefined,
  peer: SocketPeer,
  trackId: string | undefined,
  options: { producing?: boolean } = {},
): void {
  let inUse = room.screenShares(peer.id, trackId);
  for (const producer of sfuRoom?.mediaProducers() ?? []) {
    if (producer.source !== 'screen') continue;
    const own = producer.peer_id === peer.id && producer.track_id !== undefined && producer.track_id === trackId;
    if (own && !options.producing) continue;
    const announced =
      producer.track_id !== undefined && room.peers.get(producer.peer_id)?.tracks.get(producer.track_id)?.source === 'screen';
    if (own || !announced) inUse++;
  }
  const max = room.config.max_screen_shares;
  if (inUse >= max)
    throw new AppError('quota_exceeded', `the room allows ${max} screen share${max === 1 ? '' : 's'} at once (max_screen_shares)`);
}

/**
 * A participant's announced tracks (LiveKit's track publications): the source of each track it
 * sends, in a mesh and on the SFU. The room learns them from peer_updated (`tracks`), late
 * joiners from PeerInfo. Grants (canPublishSources) and the room's screen-share limit are
 * checked here; the media itself is checked on the SDP (mesh) and on produce (SFU).
 */
export function trackHandlers(options: TrackHandlerOptions): Pick<ClientEventHandlers, TrackEventName> {
  const { rooms, topology } = options;
  return {
    publish_track(socket, payload) {
      const { peer, room } = joined(rooms, socket);
      assertMayPublish(peer, payload.source);
      const track: TrackInfo = {
        track_id: payload.track_id,
        kind: payload.kind,
        source: payload.source,
        ...(payload.stream_id !== undefined ? { stream_id: payload.stream_id } : {}),
      };
      const existing = peer.tracks.get(payload.track_id);
      if (existing && existing.source === track.source && existing.kind === track.kind && existing.stream_id === track.stream_id)
        return { track };
      if (!existing && peer.tracks.size >= MAX_TRACKS_PER_PEER)
        throw new AppError('quota_exceeded', `at most ${MAX_TRACKS_PER_PEER} published tracks per participant`);
      if (track.source === 'screen')
        assertScreenShareAllowed(room, room.mode === 'sfu' ? topology.routerOf(room) : undefined, peer, track.track_id);
      peer.tracks.set(track.track_id, track);
      rooms.emit('peer_updated', room, peer);
      return { track };
    },

    unpublish_track(socket, payload) {
      const { peer, room } = joined(rooms, socket);
      if (peer.tracks.delete(payload.track_id)) rooms.emit('peer_updated', room, peer);
      return EMPTY_ACK;
    },
  };
}
