import type { Metadata, RoomMode, TrackSource } from '../../protocol/events.js';
import type { DataInfo, DataPayload } from './DataEnvelope.js';
import type { SwitchboardError } from './errors.js';
import type { LocalParticipant, ParticipantQuality, RemoteParticipant, TrackPublication } from './Participant.js';
import type { ReconnectPolicy } from './ReconnectPolicy.js';

/** Room events, as a string enum (LiveKit's style); listener signatures are in RoomEventCallbacks. */
export enum RoomEvent {
  ParticipantJoined = 'participantJoined',
  ParticipantLeft = 'participantLeft',
  ParticipantUpdated = 'participantUpdated',
  TrackSubscribed = 'trackSubscribed',
  TrackUnsubscribed = 'trackUnsubscribed',
  /** A remote participant announced a track (its source included), before its media arrives. */
  TrackPublished = 'trackPublished',
  /** A remote participant stopped publishing a track. */
  TrackUnpublished = 'trackUnpublished',
  /** This client published a track (publish() resolved for it). */
  LocalTrackPublished = 'localTrackPublished',
  /** This client stopped publishing a track (unpublish()). */
  LocalTrackUnpublished = 'localTrackUnpublished',
  Data = 'data',
  ModeChanged = 'modeChanged',
  MutedByAdmin = 'mutedByAdmin',
  ConnectionStateChanged = 'connectionStateChanged',
  /** The room reached Disconnected for good (once per Room), with the reason. */
  Disconnected = 'disconnected',
  /** A participant, remote or this client (room.localParticipant), muted its own audio or video (setMicrophoneEnabled/setCameraEnabled(false)). */
  TrackMuted = 'trackMuted',
  /** A participant, remote or this client, unmuted its own audio or video. */
  TrackUnmuted = 'trackUnmuted',
  /** The room moved to another server node (a cluster drain) and this client followed it, without leaving. */
  Moved = 'moved',
  /** Signaling was lost (a drop, a server shutting down): the SDK rejoins by itself; the reason says why. */
  Reconnecting = 'reconnecting',
  /** Joined again after Reconnecting; `resumed`: under the same peer id (the others saw nothing). */
  Reconnected = 'reconnected',
  /** Who speaks changed: the speaking participants, loudest first (this client's among them when it speaks); empty when nobody does. */
  ActiveSpeakersChanged = 'activeSpeakersChanged',
  /** A participant's connection quality changed (remote, or room.localParticipant). */
  ConnectionQualityChanged = 'connectionQualityChanged',
  Error = 'error',
}

export enum ConnectionState {
  Connecting = 'connecting',
  Connected = 'connected',
  Reconnecting = 'reconnecting',
  Disconnected = 'disconnected',
}

/** Why a Room ended (RoomEvent.Disconnected), as a string enum (LiveKit's DisconnectReason). */
export enum DisconnectReason {
  /** leave() was called, or the page went away (pagehide). */
  ClientInitiated = 'client_initiated',
  /** A room admin removed this participant (admin:kick). */
  Kicked = 'kicked',
  /** The room was closed (deleted through the API, expired). */
  RoomClosed = 'room_closed',
  /** The server shut down and closed its rooms. */
  ServerShutdown = 'server_shutdown',
  /** The token was revoked. */
  TokenRevoked = 'token_revoked',
  /** The token expired, and a rejoin had no fresh one (tokenRefresher). */
  TokenExpired = 'token_expired',
  /** A rejoin was refused for good (token invalid, forbidden, room full or locked). */
  JoinRefused = 'join_refused',
  /** connect() failed (it rejected with the error). */
  JoinFailed = 'join_failed',
  /** The connection dropped and the reconnect policy gave up. */
  ReconnectFailed = 'reconnect_failed',
  /** The connection dropped, and reconnectPolicy is null. */
  ConnectionLost = 'connection_lost',
}

/** An input device kind, as MediaDeviceInfo.kind names it. */
export type InputDeviceKind = 'audioinput' | 'videoinput';

export interface RoomEventCallbacks {
  participantJoined: (participant: RemoteParticipant) => void;
  participantLeft: (participant: RemoteParticipant) => void;
  participantUpdated: (participant: RemoteParticipant) => void;
  /** `publication` says what the track is (its source); a track whose announcement is unknown counts as camera or microphone. */
  trackSubscribed: (
    track: MediaStreamTrack,
    participant: RemoteParticipant,
    stream: MediaStream | undefined,
    publication: TrackPublication,
  ) => void;
  trackUnsubscribed: (track: MediaStreamTrack, participant: RemoteParticipant) => void;
  trackPublished: (publication: TrackPublication, participant: RemoteParticipant) => void;
  trackUnpublished: (publication: TrackPublication, participant: RemoteParticipant) => void;
  localTrackPublished: (publication: TrackPublication, track: MediaStreamTrack) => void;
  localTrackUnpublished: (publication: TrackPublication, track: MediaStreamTrack) => void;
  data: (payload: DataPayload, participant: RemoteParticipant, info: DataInfo) => void;
  modeChanged: (mode: RoomMode, reason: string) => void;
  /** A room admin muted (or unmuted) this client's audio or video; the SDK disabled (re-enabled) those tracks. */
  mutedByAdmin: (kind: 'audio' | 'video', muted: boolean) => void;
  connectionStateChanged: (state: ConnectionState) => void;
  /** Emitted once, after connectionStateChanged(disconnected). */
  disconnected: (reason: DisconnectReason) => void;
  /**
   * The participant muted its own track(s) of `kind`; `participant.selfMuted` holds the state.
   * For this client's own change the participant is room.localParticipant (LiveKit's TrackMuted
   * fires for the local participant too), emitted when the change is applied to the tracks.
   */
  trackMuted: (participant: RemoteParticipant | LocalParticipant, kind: 'audio' | 'video') => void;
  trackUnmuted: (participant: RemoteParticipant | LocalParticipant, kind: 'audio' | 'video') => void;
  /** Joined the room again on the node at wsUrl; participants, links and data went on. */
  moved: (wsUrl: string) => void;
  reconnecting: (reason: string) => void;
  reconnected: (info: { resumed: boolean }) => void;
  activeSpeakersChanged: (speakers: Array<RemoteParticipant | LocalParticipant>) => void;
  connectionQualityChanged: (quality: ParticipantQuality, participant: RemoteParticipant | LocalParticipant) => void;
  error: (error: SwitchboardError) => void;
}

/** A WebRTC implementation: the browser's by default, @roamhq/wrtc in Node. */
export interface WebRtcImplementation {
  RTCPeerConnection: typeof RTCPeerConnection;
}

export interface RoomOptions {
  /** Inject a WebRTC implementation (Node bots: `import wrtc from '@roamhq/wrtc'`). */
  webrtc?: WebRtcImplementation;
  /** Relay every connection through TURN (iceTransportPolicy "relay"). */
  forceRelay?: boolean;
  /** Reconnect schedule after a signaling drop; null never reconnects. */
  reconnectPolicy?: ReconnectPolicy | null;
  /** Called before each reconnect attempt for a fresh token (long sessions). */
  tokenRefresher?: () => Promise<string>;
  /** Metadata announced on join. */
  metadata?: Metadata;
  /** Timeout of each request to the server, ms (default 10000). */
  requestTimeoutMs?: number;
  /** Interval of the quality summary sent to the server, ms (default 10000; 0 disables). */
  statsIntervalMs?: number;
  /** Extra socket.io-client options (for example transports). */
  socketOptions?: Record<string, unknown>;
  /**
   * How long a migration may keep the old topology before closing it anyway, ms (default
   * 30000). A healthy hand-over takes a second or two; the deadline is for a peer that never
   * confirms, and closing the old path earlier only turns a slow hand-over into a black tile.
   */
  migrationTimeoutMs?: number;
  /**
   * Captures devices for setCameraEnabled, setMicrophoneEnabled and switchDevice (default:
   * navigator.mediaDevices.getUserMedia; Node has none, pass one to test these there).
   */
  getUserMedia?: (constraints: MediaStreamConstraints) => Promise<MediaStream>;
  /**
   * On the SFU, send cameras as simulcast: VP8 at full, half and quarter resolution (two layers
   * from 360p, three from 540p; one below), so each subscriber gets the layer it needs (default
   * true). Mesh links always send one layer.
   */
  simulcast?: boolean;
  /**
   * On the SFU, tell the server how each remote video is shown (LiveKit's adaptive stream): the
   * largest size of the elements it is attached to with attachTrack, and whether any is
   * visible. The SFU forwards the simulcast layer that fits that size and pauses a video shown
   * nowhere (every element hidden or off screen, or the track detached). Tracks never attached
   * through attachTrack are sent in full (default true).
   */
  adaptiveStream?: boolean;
}

/** Options of Room.publish. */
export interface PublishOptions {
  /**
   * What the tracks are (default: camera for video, microphone for audio). `screen` (or
   * `screen_audio`) marks a screen share: its video goes as `screen`, its audio as
   * `screen_audio`, and likewise `camera`/`microphone` for the two kinds of a device stream.
   */
  source?: TrackSource;
}
