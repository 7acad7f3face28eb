import { RoomEvent, type Room } from '@switchboard/client';
import { useRoomOrContext } from './RoomProvider.js';
import type { Participant } from './useParticipants.js';
import { useRoomValue } from './useRoomValue.js';

const SPEAKER_EVENTS = [RoomEvent.ActiveSpeakersChanged, RoomEvent.ParticipantLeft, RoomEvent.ConnectionStateChanged] as const;

/** The participants speaking now, loudest first (this client among them when it speaks). */
export function useActiveSpeakers(room?: Room): Participant[] {
  return useRoomValue(useRoomOrContext(room), SPEAKER_EVENTS, (r) => r.activeSpeakers);
}

const QUALITY_EVENTS = [RoomEvent.ConnectionQualityChanged, RoomEvent.ConnectionStateChanged] as const;

/** A participant's connection quality (excellent, good, poor, lost; unknown before a measure), re-rendered on change. */
export function useConnectionQuality(participant: Participant | null | undefined, room?: Room): Participant['connectionQuality'] {
  return useRoomValue(
    useRoomOrContext(room),
    QUALITY_EVENTS,
    // The room's own object: useLocalParticipant hands out copies, whose quality would not change.
    (r) => {
      if (!participant) return 'unknown';
      const current = participant.id === r.localParticipant?.id ? r.localParticipant : r.participants.get(participant.identity);
      return (current ?? participant).connectionQuality;
    },
    [participant],
  );
}
