import { RemoteParticipant, RoomEvent, type LocalParticipant, type Room } from '@switchboard/client';
import { useRoomOrContext } from './RoomProvider.js';
import { useRoomValue } from './useRoomValue.js';

/** This client or another participant of the room. */
export type Participant = LocalParticipant | RemoteParticipant;

/** What changes who is in the room or what we know of them (name, metadata, mute state). */
const EVENTS = [
  RoomEvent.ConnectionStateChanged,
  RoomEvent.ParticipantJoined,
  RoomEvent.ParticipantLeft,
  RoomEvent.ParticipantUpdated,
  RoomEvent.TrackMuted,
  RoomEvent.TrackUnmuted,
  RoomEvent.MutedByAdmin,
] as const;

/** Every participant: this client first (once it joined), then the others in the order they came. */
export function useParticipants(room?: Room): Participant[] {
  return useRoomValue(useRoomOrContext(room), EVENTS, (r) => [
    ...(r.localParticipant ? [r.localParticipant] : []),
    ...r.participants.values(),
  ]);
}

/** The other participants, in the order they came. */
export function useRemoteParticipants(room?: Room): RemoteParticipant[] {
  return useRoomValue(useRoomOrContext(room), EVENTS, (r) => [...r.participants.values()]);
}

/** This client as the room sees it; null until it joined. */
export function useLocalParticipant(room?: Room): LocalParticipant | null {
  const r = useRoomOrContext(room);
  // A copy: the Room changes its localParticipant in place (metadata, admin mute), and a new object re-renders.
  return useRoomValue(r, EVENTS, (current) => (current.localParticipant ? { ...current.localParticipant } : null));
}

/** Whether an entry of useParticipants is this client. */
export function isLocalParticipant(participant: Participant): participant is LocalParticipant {
  return !(participant instanceof RemoteParticipant);
}
