/** Switchboard client SDK: one API for mesh and SFU rooms. */
export { Room } from './Room.js';
export { attachTrack, detachTrack, attachedElements, type MediaElement } from './attach.js';
export { RoomEvent, ConnectionState, DisconnectReason } from './RoomTypes.js';
export type { RoomOptions, RoomEventCallbacks, WebRtcImplementation, InputDeviceKind, PublishOptions } from './RoomTypes.js';
export { RemoteParticipant } from './Participant.js';
export type { LocalParticipant, TrackPublication } from './Participant.js';
export type { DataPayload, DataInfo } from './DataEnvelope.js';
export type { ParticipantMediaStats } from './participantStats.js';
export type { VideoPathCounters } from './VideoGapMeter.js';
export type { MigrationReport } from './MigrationMonitor.js';
export { SwitchboardError } from './errors.js';
export type { AnonymousCredentials, Credentials } from './SignalClient.js';
export type { SwitchboardErrorCode, ClientErrorCode } from './errors.js';
export { DefaultReconnectPolicy } from './ReconnectPolicy.js';
export type { ReconnectPolicy, ReconnectContext } from './ReconnectPolicy.js';
export type { ErrorCode } from '../../protocol/errors.js';
export type { Grants, Metadata, RoomMode, PeerInfo, IceServer, TrackSource, TrackInfo } from '../../protocol/events.js';
