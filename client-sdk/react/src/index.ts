/** React bindings of the Switchboard browser SDK (@switchboard/client), in the style of @livekit/components-react. */
export { RoomProvider, useRoom } from './RoomProvider.js';
export type { RoomProviderProps } from './RoomProvider.js';
export { useConnectionState } from './useConnectionState.js';
export { useParticipants, useRemoteParticipants, useLocalParticipant, isLocalParticipant } from './useParticipants.js';
export type { Participant } from './useParticipants.js';
export { useTracks, useParticipantTracks } from './useTracks.js';
export type { TrackReference, UseTracksOptions } from './useTracks.js';
export { VideoTrack, AudioTrack } from './MediaTrack.js';
export type { VideoTrackProps, AudioTrackProps, TrackSource } from './MediaTrack.js';
export { useDataMessages, useSendData } from './useData.js';
export type { ReceivedDataMessage, UseDataMessagesOptions, SendDataOptions } from './useData.js';
export { useLocalMedia } from './useLocalMedia.js';
export { useActiveSpeakers, useConnectionQuality } from './useActiveSpeakers.js';
export type { LocalMedia } from './useLocalMedia.js';
