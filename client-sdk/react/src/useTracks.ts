import { RoomEvent, type RemoteParticipant, type Room } from '@switchboard/client';
import { useRoomOrContext } from './RoomProvider.js';
import { useRoomValue } from './useRoomValue.js';

/** A track another participant sends us. */
export interface TrackReference {
  participant: RemoteParticipant;
  track: MediaStreamTrack;
  kind: 'audio' | 'video';
  /** The participant turned this kind off (its camera or microphone), or a room admin muted it. */
  muted: boolean;
}

/** Which tracks useTracks lists. */
export interface UseTracksOptions {
  /** Only tracks of this kind. */
  kind?: 'audio' | 'video';
  /** Pass a Room instead of the provider's. */
  room?: Room;
}

/** What adds or removes a remote track, or changes its mute state. */
const EVENTS = [
  RoomEvent.TrackSubscribed,
  RoomEvent.TrackUnsubscribed,
  RoomEvent.ParticipantLeft,
  RoomEvent.TrackMuted,
  RoomEvent.TrackUnmuted,
  RoomEvent.ConnectionStateChanged,
] as const;

function referencesOf(participant: RemoteParticipant, kind: 'audio' | 'video' | undefined): TrackReference[] {
  const refs: TrackReference[] = [];
  for (const track of participant.tracks.values()) {
    if (track.kind !== 'audio' && track.kind !== 'video') continue;
    if (kind && track.kind !== kind) continue;
    const muted = participant.selfMuted[track.kind] || participant.muted[track.kind];
    refs.push({ participant, track, kind: track.kind, muted });
  }
  return refs;
}

/** Every track the others send us (TrackSubscribed to TrackUnsubscribed), by participant in the order they came. */
export function useTracks(options: UseTracksOptions = {}): TrackReference[] {
  const { kind } = options;
  return useRoomValue(useRoomOrContext(options.room), EVENTS, (r) => [...r.participants.values()].flatMap((p) => referencesOf(p, kind)), [
    kind,
  ]);
}

/** The tracks one participant sends us. */
export function useParticipantTracks(participant: RemoteParticipant, options: UseTracksOptions = {}): TrackReference[] {
  const { kind } = options;
  return useRoomValue(useRoomOrContext(options.room), EVENTS, () => referencesOf(participant, kind), [participant, kind]);
}
