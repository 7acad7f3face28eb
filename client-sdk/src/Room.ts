import type {
  ActiveSpeaker,
  ConnectionQuality,
  IceServer,
  JoinResult,
  Metadata,
  PeerInfo,
  RoomConfigInfo,
  RoomMode,
  SfuInfo,
  SfuProducerInfo,
  TrackSource,
} from '../../protocol/events.js';
import { batches, isSyncKind, unpack, type DataPath, type DataPayload, type WireMessage } from './DataEnvelope.js';
import { Emitter } from './Emitter.js';
import { isPolicyRefusal } from './pagePolicy.js';
import { SwitchboardError } from './errors.js';
import { HandOver } from './HandOver.js';
import { MigrationMonitor, type MigrationReport } from './MigrationMonitor.js';
import { participantMediaStats, type ParticipantMediaStats } from './participantStats.js';
import { PeerLink } from './PeerLink.js';
import { QualityReporter, type MeasuredConnection } from './quality.js';
import { MeshLevelSampler, parseSpeakers, sameSpeakers } from './ActiveSpeakers.js';
import { participantQuality } from '../../protocol/connectionQuality.js';
import { DefaultReconnectPolicy, type ReconnectPolicy } from './ReconnectPolicy.js';
import { ReliableDelivery } from './ReliableDelivery.js';
import { bringUpSfu } from './SfuStart.js';
import { isFlowing } from './inboundStats.js';
import { loadMediasoupClient, SfuSession } from './SfuSession.js';
import type { Credentials, SignalClient } from './SignalClient.js';
import { disconnectReasonOf, joinRoom, TERMINAL_CODES, type RoomEventHandlers } from './RoomSignaling.js';
import {
  defaultSource,
  notMuted,
  RemoteParticipant,
  sourceFor,
  TRACK_SOURCES,
  type LocalParticipant,
  type ParticipantQuality,
  type TrackPublication,
} from './Participant.js';
import {
  ConnectionState,
  DisconnectReason,
  RoomEvent,
  type InputDeviceKind,
  type PublishOptions,
  type RoomEventCallbacks,
  type RoomOptions,
} from './RoomTypes.js';
import { VideoGapMeter, type VideoSample } from './VideoGapMeter.js';

/**
 * A failed SFU session start (transports refused or unanswered, device load failed) is retried
 * with a new connection at most this many times in a row.
 */
const MAX_SFU_START_RESTARTS = 2;
/**
 * How long after losing signaling an unreachable node (connection refused) is retried without
 * the policy's backoff: a cluster notices a dead node within a few seconds (its registry entry
 * expires) and then serves its rooms elsewhere; past this, the policy's schedule applies.
 */
const UNREACHABLE_RETRY_WINDOW_MS = 15_000;
/**
 * After a room moved to another node, how long the SFU session on the old node may keep
 * carrying media while the new one catches up (make-before-break); it closes earlier, as soon
 * as the new node carries everything it carried.
 */
const MOVE_OVERLAP_LIMIT_MS = 10_000;
const MOVE_OVERLAP_CHECK_MS = 100;
/**
 * Once the new session carries everything, how much longer the old one keeps sending: the
 * others, moving at the same moment, still receive our media from the old node until their
 * consumers of our new producers run.
 */
const MOVE_SENDER_GRACE_MS = 1_000;

type MediaKind = 'audio' | 'video';

/**
 * A connection to one Switchboard room: `new Room(options)`, listeners, then `connect(url,
 * token)` joins and builds the peer connections (`Room.connect()` does all three but the
 * listeners). The rest of the API (publish, send, devices, events) is the same whether the room
 * is a mesh or on the SFU.
 */
export class Room extends Emitter<RoomEventCallbacks> {
  state: ConnectionState = ConnectionState.Connecting;
  mode: RoomMode = 'mesh';
  roomId = '';
  config: RoomConfigInfo | null = null;
  localParticipant: LocalParticipant | null = null;
  /** Remote participants by identity. */
  readonly participants = new Map<string, RemoteParticipant>();
  /** The last migration this client went through. */
  lastMigration: MigrationReport | null = null;

  private signal: SignalClient | null = null;
  /** The URL and credentials given to connect(). */
  private url = '';
  private token: Credentials = '';
  /** connect() was called: a Room connects once. */
  private connectCalled = false;
  /** The join under way (connect, a reconnection or a move), if any. */
  private joining: Promise<void> | null = null;
  /** Participants met during connect(), announced once it is connected. Null outside connect(). */
  private announcements: RemoteParticipant[] | null = null;
  /** Why the room ended, once it did (RoomEvent.Disconnected is emitted once). */
  private disconnectReason: DisconnectReason | null = null;
  /** Tracks this room captured itself (setCameraEnabled, setMicrophoneEnabled, switchDevice), by kind. */
  private readonly captured: Record<MediaKind, MediaStreamTrack | null> = { audio: null, video: null };
  /** The constraints of the last capture per kind (setCameraEnabled's), kept for switchDevice. */
  private readonly constraints: Record<MediaKind, MediaTrackConstraints | undefined> = { audio: undefined, video: undefined };
  /** The device switchDevice chose per kind, for the next capture. */
  private readonly devices: Record<MediaKind, string | undefined> = { audio: undefined, video: undefined };
  /** What this participant muted of its own, by kind (the room hears it through the `mute` event). */
  private readonly selfMuted = notMuted();
  /** Device operations run one at a time. */
  private mediaQueue: Promise<unknown> = Promise.resolve();
  /**
   * The node this room last joined on (the URL given, or the one a cluster redirected to):
   * reconnections try it first; after a failed attempt they go back to the URL the
   * application gave (a load balancer, or any node, which redirects to the room's node).
   */
  private nodeUrl: string | null = null;
  private readonly links = new Map<string, PeerLink>();
  private readonly participantsById = new Map<string, RemoteParticipant>();
  private readonly localTracks = new Map<MediaStreamTrack, MediaStream | undefined>();
  /** The source of each local track (publish's option). */
  private readonly localSources = new Map<MediaStreamTrack, TrackSource>();
  /** Remote SFU producers we heard of (their source and track id), by producer id. */
  private readonly producerInfos = new Map<string, SfuProducerInfo>();
  private iceServers: IceServer[] = [];
  /** Our presence on the SFU while the room is (or is leaving) SFU mode. */
  private sfu: SfuSession | null = null;
  /** SFU session starts that failed in a row (each restarted with a new connection). */
  private failedSfuStarts = 0;
  private leaving = false;
  /**
   * The connection and SFU session left behind on the node the room moved away from: they go on
   * carrying media and data until the new node carries it all (closeRetired).
   */
  private retired: { signal: SignalClient; sfu: SfuSession | null; timer: ReturnType<typeof setTimeout> | null } | null = null;
  /** A move to another node is under way (room_moved). */
  private moving = false;
  /** The connection whose server said it was shutting down (its end is then reported as server_shutdown). */
  private shutdownHeardOn: SignalClient | null = null;
  /** Removes the page-hide listener (leaveWithPage). */
  private forgetPage: (() => void) | null = null;
  /** Why the room cannot go on (kicked, closed, token refused); `reported` once the app got it as an error event. */
  private terminalError: { error: SwitchboardError; reported: boolean; reason: DisconnectReason } | null = null;
  private readonly RTCPeerConnectionImpl: typeof RTCPeerConnection | undefined;
  private readonly reconnectPolicy: ReconnectPolicy | null;

  /** Data in and out, exactly once for reliable messages, over the paths the hand-over leaves open to our data. */
  private readonly delivery = new ReliableDelivery<RemoteParticipant>(
    {
      selfIdentity: () => this.localParticipant?.identity ?? null,
      peerIdOf: (identity) => this.participants.get(identity)?.id ?? null,
      canPublishData: () => Boolean(this.localParticipant?.grants.canPublishData),
      sfu: () => (this.handOver.sfuCarriesData ? this.sfu : null),
      meshPeerIds: () => this.links.keys(),
      mesh: (peerId, purpose) => (purpose === 'control' || this.handOver.linkCarriesData(peerId) ? (this.links.get(peerId) ?? null) : null),
    },
    (participant, payload, info) => this.emit(RoomEvent.Data, payload, participant, info),
  );

  /** The migration between mesh and SFU. */
  private readonly handOver = new HandOver(
    {
      mode: () => this.mode,
      selfId: () => this.localParticipant?.id ?? '',
      canPublishData: () => Boolean(this.localParticipant?.grants.canPublishData),
      sfu: () => this.sfu,
      takeSfu: () => {
        const session = this.sfu;
        this.sfu = null;
        return session;
      },
      timeoutMs: () => this.options.migrationTimeoutMs ?? 30_000,
      measure: (to) => new MigrationMonitor(to, () => this.videoSample()),
      reported: (report) => {
        this.lastMigration = report;
        void this.signal
          ?.request('stats', { links: [], migration: { to: report.to, duration_ms: report.durationMs, media_gap_ms: report.mediaGapMs } })
          .catch(() => undefined);
      },
    },
    {
      get: (peerId) => this.links.get(peerId),
      peerIds: () => [...this.links.keys()],
      participantIds: () => [...this.participants.values()].map((participant) => participant.id),
      open: (peerId, initiator) => {
        const participant = this.participantsById.get(peerId);
        return participant && this.link(participant, { initiator });
      },
      close: (peerId) => {
        const participant = this.participantsById.get(peerId);
        if (participant) this.closeLink(participant);
      },
    },
  );

  private readonly quality = new QualityReporter({
    links: () => {
      const sfu = this.sfu?.qualityLink();
      if (!sfu) return this.links;
      const links = new Map<string, { pc: MeasuredConnection }>(this.links);
      return links.set('sfu', { pc: sfu });
    },
    active: () => this.state === ConnectionState.Connected && this.signal !== null,
    send: (links) => this.signal?.request('stats', { links }),
    measured: (links) => {
      const quality = participantQuality(links);
      if (quality && this.localParticipant) this.setQuality(this.localParticipant, quality);
    },
  });

  /** The speakers last announced, loudest first (mesh: sampled here; SFU: from the server). */
  private speakers: ActiveSpeaker[] = [];

  private readonly meshLevels = new MeshLevelSampler({
    active: () => this.state === ConnectionState.Connected && this.mode === 'mesh',
    links: () => new Map([...this.links].map(([id, link]) => [id, { pc: link.pc }])),
    localId: () => (this.localParticipant?.trackPublications.size ? this.localParticipant.id : undefined),
    remoteSpeech: (peerId, track) => this.participantsById.get(peerId)?.trackInfo.get(track.id)?.source !== 'screen_audio',
    localSpeech: (trackId) => this.localParticipant?.trackPublications.get(trackId)?.source !== 'screen_audio',
    sampled: (speakers) => this.applySpeakers(speakers),
  });

  /** The participants speaking now, loudest first (RoomEvent.ActiveSpeakersChanged tells the changes). */
  get activeSpeakers(): Array<RemoteParticipant | LocalParticipant> {
    return this.speakers.flatMap((speaker) => {
      const participant = this.participantOf(speaker.peer_id);
      return participant ? [participant] : [];
    });
  }

  private participantOf(peerId: string): RemoteParticipant | LocalParticipant | undefined {
    return peerId === this.localParticipant?.id ? this.localParticipant : this.participantsById.get(peerId);
  }

  /** Applies who speaks now: every participant's isSpeaking and audioLevel, and the event when the list changed. */
  private applySpeakers(speakers: ActiveSpeaker[]): void {
    const known = speakers.filter((speaker) => this.participantOf(speaker.peer_id));
    const levels = new Map(known.map((speaker) => [speaker.peer_id, speaker.level]));
    for (const participant of [this.localParticipant, ...this.participantsById.values()]) {
      if (!participant) continue;
      participant.audioLevel = levels.get(participant.id) ?? 0;
      participant.isSpeaking = levels.has(participant.id);
    }
    const changed = !sameSpeakers(this.speakers, known);
    this.speakers = known;
    if (changed) this.emit(RoomEvent.ActiveSpeakersChanged, this.activeSpeakers);
  }

  private setQuality(participant: RemoteParticipant | LocalParticipant, quality: ParticipantQuality): void {
    if (participant.connectionQuality === quality) return;
    participant.connectionQuality = quality;
    this.emit(RoomEvent.ConnectionQualityChanged, quality, participant);
  }

  /** A Room not connected yet: attach listeners, then connect(). */
  constructor(private readonly options: RoomOptions = {}) {
    super();
    this.RTCPeerConnectionImpl =
      options.webrtc?.RTCPeerConnection ?? (globalThis as { RTCPeerConnection?: typeof RTCPeerConnection }).RTCPeerConnection;
    this.reconnectPolicy = options.reconnectPolicy === undefined ? new DefaultReconnectPolicy() : options.reconnectPolicy;
  }

  /**
   * Shorthand for `new Room(options)` then `connect(url, token)`: resolves with the connected
   * room. Its listeners come too late for the participants already there: read `participants`.
   */
  static async connect(url: string, token: Credentials, options: RoomOptions = {}): Promise<Room> {
    const room = new Room(options);
    await room.connect(url, token);
    return room;
  }

  /**
   * Connects, joins the room named in the token, and connects to every participant. Instead of
   * a token, `{ room, name }` joins an anonymous/demo room on a server that allows them. Once
   * connected (state Connected) and before this resolves, ParticipantJoined is emitted for each
   * participant already in the room. A Room connects once: a second call rejects with
   * `invalid_state`. A failed connect rejects, and the room ends (Disconnected, `join_failed`).
   */
  async connect(url: string, token: Credentials): Promise<void> {
    if (this.connectCalled)
      throw new SwitchboardError('invalid_state', 'this Room connected already: a Room connects once (create a new Room)');
    this.connectCalled = true;
    this.url = url;
    this.token = token;
    this.announcements = [];
    try {
      if (!this.RTCPeerConnectionImpl)
        throw new SwitchboardError('webrtc_unavailable', 'no RTCPeerConnection: pass options.webrtc (e.g. @roamhq/wrtc in Node)');
      await this.establish();
    } catch (error) {
      this.announcements = null;
      const leftByApp = this.leaving;
      this.leaving = true;
      this.teardown();
      this.ended(leftByApp ? DisconnectReason.ClientInitiated : DisconnectReason.JoinFailed);
      throw SwitchboardError.from(error);
    }
    const present = this.announcements;
    this.announcements = null;
    if (this.leaving) return;
    this.setState(ConnectionState.Connected);
    this.leaveWithPage();
    this.quality.start(this.options.statsIntervalMs ?? 10_000);
    this.meshLevels.start();
    this.delivery.start();
    for (const participant of present)
      if (this.participants.get(participant.identity) === participant) this.emit(RoomEvent.ParticipantJoined, participant);
  }

  /**
   * Publishes a track (or every track of a stream) to every participant. `options.source` says
   * what it is (default camera for video, microphone for audio; `screen` for a screen share,
   * sent with contentHint 'detail' and without downscaling). The room learns each track's
   * source before its media; a source the token does not grant (canPublishSources) rejects
   * with `forbidden`, a screen share past the room's max_screen_shares with `quota_exceeded`.
   */
  async publish(media: MediaStreamTrack | MediaStream, options: PublishOptions = {}): Promise<void> {
    this.assertConnected();
    const local = this.localParticipant;
    if (!local?.grants.canPublish) throw new SwitchboardError('forbidden', 'this token does not grant canPublish');
    if (options.source !== undefined && !TRACK_SOURCES.includes(options.source))
      throw new SwitchboardError('payload_invalid', `source must be one of ${TRACK_SOURCES.join(', ')}`);
    const isStream = typeof (media as MediaStream).getTracks === 'function';
    const tracks = isStream ? (media as MediaStream).getTracks() : [media as MediaStreamTrack];
    const stream = isStream ? (media as MediaStream) : undefined;
    for (const track of tracks) {
      if (this.localTracks.has(track)) continue;
      const source = sourceFor(track.kind, options.source);
      const allowed = local.grants.canPublishSources;
      if (allowed && !allowed.includes(source))
        throw new SwitchboardError('forbidden', `this token does not grant publishing the source ${source} (canPublishSources)`);
      await this.announceTrack(track, source, stream);
      const screen = source === 'screen';
      if (screen && 'contentHint' in track) track.contentHint = 'detail';
      // Muted by a room admin, or by ourselves (setCameraEnabled/setMicrophoneEnabled(false)).
      if (local.muted[track.kind as MediaKind] || this.selfMuted[track.kind as MediaKind]) track.enabled = false;
      this.localTracks.set(track, stream);
      this.localSources.set(track, source);
      for (const link of this.links.values()) link.addTrack(track, stream, screen);
      await this.sfu?.produce(track);
      const publication = local.trackPublications.get(track.id);
      if (publication) this.emit(RoomEvent.LocalTrackPublished, publication, track);
    }
  }

  /** Tells the room what `track` is (publish_track) and records it as ours. */
  private async announceTrack(track: MediaStreamTrack, source: TrackSource, stream: MediaStream | undefined): Promise<void> {
    const kind = track.kind as MediaKind;
    try {
      await this.signal?.request('publish_track', this.trackAnnouncement(track, source, stream));
    } catch (error) {
      throw SwitchboardError.from(error, 'internal');
    }
    this.localParticipant?.trackPublications.set(track.id, { trackId: track.id, kind, source, ...(stream ? { streamId: stream.id } : {}) });
  }

  /**
   * The publish_track request of a track. The stream id goes with it: a mesh receiver finds the
   * announcement by the stream and kind it receives (the SDP's msid names the sender, whose id
   * is the track's only when the sender was made for it).
   */
  private trackAnnouncement(track: MediaStreamTrack, source: TrackSource, stream: MediaStream | undefined) {
    return { track_id: track.id, kind: track.kind as MediaKind, source, ...(stream ? { stream_id: stream.id } : {}) };
  }

  /** The source of one of our tracks. */
  private sourceOfLocal(track: MediaStreamTrack): TrackSource {
    return this.localSources.get(track) ?? defaultSource(track.kind);
  }

  /** Stops sending a published track. */
  async unpublish(track: MediaStreamTrack): Promise<void> {
    const publication = this.localParticipant?.trackPublications.get(track.id);
    this.localParticipant?.trackPublications.delete(track.id);
    this.localSources.delete(track);
    if (this.localTracks.has(track)) void this.signal?.request('unpublish_track', { track_id: track.id }).catch(() => undefined);
    this.localTracks.delete(track);
    if (publication) this.emit(RoomEvent.LocalTrackUnpublished, publication, track);
    for (const kind of ['audio', 'video'] as const) if (this.captured[kind] === track) this.captured[kind] = null;
    for (const link of this.links.values()) link.removeTrack(track);
    await this.sfu?.unproduce(track);
  }

  /**
   * Sends data to every participant (or to the given identities): text, JSON, or bytes (a
   * Uint8Array travels as binary and arrives as a Uint8Array). Reliable messages arrive
   * exactly once and in order per sender; lossy ones may be dropped. `topic` (at most 128
   * characters) comes with the message (DataInfo.topic). Resolves once the message is written
   * to the data channels it goes on: awaiting it applies backpressure (a reliable send waits
   * while a channel holds over 1 MiB; a lossy one is dropped there). Not awaiting still sends
   * everything, in order. Throws `payload_too_large` (over 256 KiB on the wire) before sending
   * anything. A mesh room accepts data while it reconnects too: its links stay up until the
   * rejoin, and peers linked again afterwards get what they missed from the sent history.
   */
  send(payload: DataPayload, options: { reliable?: boolean; to?: string[]; topic?: string } = {}): Promise<void> {
    if (!(this.state === ConnectionState.Reconnecting && this.mode === 'mesh')) this.assertConnected();
    if (!this.localParticipant?.grants.canPublishData) throw new SwitchboardError('forbidden', 'this token does not grant canPublishData');
    return this.delivery.send(payload, options.reliable ?? true, options.to, options.topic);
  }

  /** Bytes of data sent and not on the network yet: waiting for backpressure, plus what the data channels buffer. */
  get bufferedDataBytes(): number {
    return this.delivery.bufferedBytes();
  }

  /**
   * The camera track: the one setCameraEnabled or switchDevice captured, else the first video
   * track published; null before (for a self-view; read it again after switchDevice).
   */
  get cameraTrack(): MediaStreamTrack | null {
    return this.deviceTrack('video');
  }

  /** The microphone track, as cameraTrack is the camera's. */
  get microphoneTrack(): MediaStreamTrack | null {
    return this.deviceTrack('audio');
  }

  /** A video track is published and we did not mute it. */
  get isCameraEnabled(): boolean {
    return this.deviceTrack('video') !== null && !this.selfMuted.video;
  }

  /** An audio track is published and we did not mute it. */
  get isMicrophoneEnabled(): boolean {
    return this.deviceTrack('audio') !== null && !this.selfMuted.audio;
  }

  /**
   * Turns the camera on or off. An enable with no video track published captures the camera
   * (getUserMedia with `constraints`, on the device switchDevice chose if any) and publishes
   * it; otherwise off mutes every local video track (track.enabled false, SFU producers
   * paused) and on unmutes them, without renegotiation. The others hear it
   * (TrackMuted/TrackUnmuted). Without getUserMedia (Node) a capture rejects with
   * `media_unavailable` unless options.getUserMedia is given.
   */
  setCameraEnabled(enabled: boolean, constraints?: MediaTrackConstraints): Promise<void> {
    return this.setSourceEnabled('video', enabled, constraints);
  }

  /** Turns the microphone on or off, as setCameraEnabled does the camera. */
  setMicrophoneEnabled(enabled: boolean, constraints?: MediaTrackConstraints): Promise<void> {
    return this.setSourceEnabled('audio', enabled, constraints);
  }

  /**
   * Switches the camera (videoinput) or microphone (audioinput, see cameraTrack) to another
   * device: a new track replaces the old one on every mesh link (RTCRtpSender.replaceTrack) and
   * on the SFU (producer.replaceTrack), without renegotiation, and the old track is stopped.
   * With no such track yet, the device is used by the next enable.
   */
  switchDevice(kind: InputDeviceKind, deviceId: string): Promise<void> {
    this.assertConnected();
    const mediaKind: MediaKind = kind === 'audioinput' ? 'audio' : 'video';
    return this.serialMedia(async () => {
      const previous = this.deviceTrack(mediaKind);
      if (!previous) {
        this.devices[mediaKind] = deviceId;
        return;
      }
      const { track } = await this.capture(mediaKind, deviceId, this.constraints[mediaKind]);
      this.devices[mediaKind] = deviceId;
      track.enabled = previous.enabled;
      const stream = this.localTracks.get(previous);
      const source = this.sourceOfLocal(previous);
      await this.announceTrack(track, source, stream);
      this.localParticipant?.trackPublications.delete(previous.id);
      void this.signal?.request('unpublish_track', { track_id: previous.id }).catch(() => undefined);
      this.localTracks.delete(previous);
      this.localSources.delete(previous);
      this.localTracks.set(track, stream);
      this.localSources.set(track, source);
      this.captured[mediaKind] = track;
      await Promise.all([
        ...[...this.links.values()].map((link) => link.replaceTrack(previous, track)),
        this.sfu?.replaceTrack(previous, track),
        this.retired?.sfu?.replaceTrack(previous, track),
      ]);
      // mediasoup-client enables a new track of a running producer: an admin's mute still holds.
      this.applyTrackEnabled(mediaKind);
      previous.stop();
    });
  }

  /** The camera's or microphone's track: the one we captured, else the first the app published. */
  private deviceTrack(kind: MediaKind): MediaStreamTrack | null {
    if (this.captured[kind]) return this.captured[kind];
    // A screen share is not the camera, nor its audio the microphone.
    for (const track of this.localTracks.keys()) if (track.kind === kind && this.sourceOfLocal(track) === defaultSource(kind)) return track;
    return null;
  }

  private setSourceEnabled(kind: MediaKind, enabled: boolean, constraints: MediaTrackConstraints | undefined): Promise<void> {
    this.assertConnected();
    return this.serialMedia(async () => {
      if (enabled && !this.deviceTrack(kind)) {
        if (!this.localParticipant?.grants.canPublish) throw new SwitchboardError('forbidden', 'this token does not grant canPublish');
        if (constraints) this.constraints[kind] = constraints;
        const { track, stream } = await this.capture(kind, this.devices[kind], this.constraints[kind]);
        this.captured[kind] = track;
        await this.setSelfMuted(kind, false);
        await this.publish(stream);
        return;
      }
      await this.setSelfMuted(kind, !enabled);
    });
  }

  /** Mutes (or unmutes) our tracks of `kind` (and pauses our SFU producers of it), and tells the room. */
  private async setSelfMuted(kind: MediaKind, muted: boolean): Promise<void> {
    if (this.selfMuted[kind] === muted) return;
    this.selfMuted[kind] = muted;
    // Before enabling tracks: a resumed producer enables its track, which an admin mute keeps disabled.
    this.sfu?.setPaused(kind, muted);
    this.retired?.sfu?.setPaused(kind, muted);
    this.applyTrackEnabled(kind);
    const local = this.localParticipant;
    if (local) {
      // A new object, as a remote participant's selfMuted is on each change (a UI compares them).
      local.selfMuted = { ...this.selfMuted };
      this.emit(muted ? RoomEvent.TrackMuted : RoomEvent.TrackUnmuted, local, kind);
    }
    try {
      await this.signal?.request('mute', { kind, muted });
    } catch (error) {
      // Reconnecting: the rejoin tells the room (applyJoin).
      if (this.state === ConnectionState.Connected) throw SwitchboardError.from(error, 'internal');
    }
  }

  /** Our tracks of `kind` carry media unless a room admin or we muted them. */
  private applyTrackEnabled(kind: MediaKind): void {
    const enabled = !this.selfMuted[kind] && !this.localParticipant?.muted[kind];
    for (const track of this.localTracks.keys()) if (track.kind === kind) track.enabled = enabled;
  }

  /** Captures one device of `kind` (getUserMedia, or options.getUserMedia). */
  private async capture(
    kind: MediaKind,
    deviceId: string | undefined,
    constraints: MediaTrackConstraints | undefined,
  ): Promise<{ track: MediaStreamTrack; stream: MediaStream }> {
    const mediaDevices = (globalThis as { navigator?: { mediaDevices?: MediaDevices } }).navigator?.mediaDevices;
    const getUserMedia = this.options.getUserMedia ?? mediaDevices?.getUserMedia?.bind(mediaDevices);
    if (!getUserMedia)
      throw new SwitchboardError(
        'media_unavailable',
        'no getUserMedia here (Node?): pass options.getUserMedia, or publish() tracks of your own',
      );
    const constraint: MediaTrackConstraints | boolean =
      deviceId || constraints ? { ...constraints, ...(deviceId ? { deviceId: { exact: deviceId } } : {}) } : true;
    let stream: MediaStream;
    try {
      stream = await getUserMedia(kind === 'audio' ? { audio: constraint } : { video: constraint });
    } catch (error) {
      const { name, message } = (error ?? {}) as { name?: string; message?: string };
      throw new SwitchboardError('media_unavailable', `could not capture ${kind}: ${name ?? 'Error'}: ${message ?? String(error)}`);
    }
    const track = stream.getTracks().find((candidate) => candidate.kind === kind);
    if (!track) throw new SwitchboardError('media_unavailable', `getUserMedia gave no ${kind} track`);
    return { track, stream };
  }

  /** Runs device operations one at a time (a switch while the first capture is under way waits for it). */
  private serialMedia(operation: () => Promise<void>): Promise<void> {
    const run = this.mediaQueue.then(operation, operation);
    this.mediaQueue = run.catch(() => undefined);
    return run;
  }

  /** Changes this participant's metadata (needs canUpdateOwnMetadata). */
  async setMetadata(metadata: Metadata): Promise<void> {
    this.assertConnected();
    await this.signal?.request('update_metadata', { metadata });
    if (this.localParticipant) this.localParticipant.metadata = metadata;
  }

  /**
   * In a browser, a page that goes away (closed, reloaded, navigated) leaves the room: the
   * server holds the place of a connection that merely dropped for RESUME_GRACE_MS, which a
   * closed tab would otherwise keep in the room that long.
   */
  private leaveWithPage(): void {
    const page = (
      globalThis as { window?: { addEventListener?: typeof addEventListener; removeEventListener?: typeof removeEventListener } }
    ).window;
    if (!page?.addEventListener || !page.removeEventListener) return;
    const onPageHide = (event: Event): void => {
      // A page kept in the back/forward cache may come back: its connections stay as they are.
      if ((event as PageTransitionEvent).persisted || this.leaving) return;
      // At once, not through the leave request, whose answer the page will not wait for: closing
      // the socket sends Socket.IO's disconnect packet, which the server takes as a leave.
      this.leaving = true;
      this.teardown();
      this.ended(DisconnectReason.ClientInitiated);
    };
    page.addEventListener('pagehide', onPageHide);
    this.forgetPage = () => page.removeEventListener?.('pagehide', onPageHide);
  }

  /** Leaves the room and closes every connection. Idempotent. */
  async leave(): Promise<void> {
    if (this.leaving) return;
    this.leaving = true;
    this.quality.stop();
    try {
      if (this.signal?.socket.connected) await this.signal.request('leave', undefined);
    } catch {
      // Leaving anyway.
    }
    // A join on its way is undone when its answer comes (its connection closed): until then the
    // server may hold us in the room, and a new connection of the same identity made before that
    // would be the one replaced (duplicate_identity) when the late join lands.
    await this.joining?.catch(() => undefined);
    this.teardown();
    this.ended(DisconnectReason.ClientInitiated);
  }

  /** Bytes and packets per link, from getStats (for apps and tests). */
  async getLinkStats(): Promise<Map<string, RTCStatsReport>> {
    const result = new Map<string, RTCStatsReport>();
    for (const [id, link] of this.links) result.set(this.participantsById.get(id)?.identity ?? id, await link.pc.getStats());
    return result;
  }

  /**
   * Inbound media per participant over both paths (mesh link and SFU consumers, those of the
   * session left on the old node during a move included): totals, and decoded-video counters per
   * path (a path's counters restart when its connection is replaced).
   */
  getParticipantStats(): Promise<Map<string, ParticipantMediaStats>> {
    return this.participantStats(false);
  }

  /** getParticipantStats; `shownOnly` leaves out the SFU videos the app does not show (adaptive stream paused them). */
  private async participantStats(shownOnly: boolean): Promise<Map<string, ParticipantMediaStats>> {
    // All getStats calls at once: each waits behind the browser's SDP work during a migration.
    const perParticipant = await Promise.all(
      [...this.participants.values()].map(async (participant) => {
        const link = this.links.get(participant.id);
        const retired = this.retired?.sfu;
        const [mesh, sfu, sfuRetired] = await Promise.all([
          link
            ? link.inboundStats().then(
                (stats) => [stats],
                () => [],
              )
            : Promise.resolve([]),
          this.sfu ? this.sfu.statsFrom(participant.id, shownOnly).catch(() => []) : Promise.resolve([]),
          retired ? retired.statsFrom(participant.id, shownOnly).catch(() => []) : Promise.resolve(undefined),
        ]);
        return [participant.identity, participantMediaStats({ mesh, sfu, ...(sfuRetired ? { sfuRetired } : {}) })] as const;
      }),
    );
    return new Map(perParticipant);
  }

  /**
   * The longest time any remote participant's video decoded no new frame over the next
   * `durationMs` (the measure migrations report as their media gap), for apps that want a
   * baseline on their own machine.
   */
  async measureVideoGap(durationMs: number): Promise<number> {
    const meter = new VideoGapMeter(() => this.videoSample());
    await new Promise((resolve) => setTimeout(resolve, durationMs));
    return meter.finish();
  }

  private async videoSample(): Promise<VideoSample> {
    const sample: VideoSample = new Map();
    // A video the app hides is paused on the SFU: it is no gap, and waiting for it would hold the
    // report (a participant left out of a sample counts as gone).
    const hidden = new Set(
      [...this.participants.values()].flatMap((participant) => (this.sfu?.hidesVideoFrom(participant.id) ? [participant.identity] : [])),
    );
    for (const [identity, stats] of await this.participantStats(true)) if (!hidden.has(identity)) sample.set(identity, stats.videoByPath);
    return sample;
  }

  /** The hand-over to the SFU is past its deadline: the links carry data only (the browser tests watch this). */
  private get migrationOverdue(): boolean {
    return this.handOver.phase === 'to-sfu-overdue';
  }

  private assertConnected(): void {
    if (this.state !== ConnectionState.Connected) throw new SwitchboardError('not_connected', `room is ${this.state}`);
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit(RoomEvent.ConnectionStateChanged, state);
  }

  /** The room is over: state Disconnected, and RoomEvent.Disconnected once with the first reason. */
  private ended(reason: DisconnectReason): void {
    this.setState(ConnectionState.Disconnected);
    if (this.disconnectReason !== null) return;
    this.disconnectReason = reason;
    this.emit(RoomEvent.Disconnected, reason);
  }

  /**
   * Connects the signaling socket (to the room's node when known), joins, and links to every
   * peer in the join ack. While it runs it is `joining`, which leave() waits for.
   */
  private establish(): Promise<void> {
    const { requestTimeoutMs = 10_000, socketOptions, metadata } = this.options;
    const resume = this.localParticipant?.id;
    const attempt = joinRoom(
      this.nodeUrl ?? this.url,
      this.token,
      { requestTimeoutMs, socketOptions, metadata, resume },
      this.roomEvents,
    ).then((nodeUrl) => {
      this.nodeUrl = nodeUrl;
    });
    this.joining = attempt;
    const settled = () => {
      if (this.joining === attempt) this.joining = null;
    };
    attempt.then(settled, settled);
    return attempt;
  }

  /** The room events of the signaling connection. */
  private readonly roomEvents: RoomEventHandlers = {
    joined: (signal, ack) => {
      // leave() was called while this join was on its way: the join is undone (closing the
      // socket is a leave), and nothing of it is applied.
      if (this.leaving) {
        signal.close();
        throw new SwitchboardError('not_connected', 'the room was left while joining');
      }
      this.signal = signal;
      this.applyJoin(ack);
    },
    peerJoined: (info) => {
      const participant = this.upsertParticipant(info);
      // It joined after us: we are owed its data from its first message on.
      this.delivery.joinedAfter(participant.identity);
      if (this.mode === 'mesh') this.link(participant, { initiator: false });
      this.prefetchSfuClient();
    },
    peerLeft: (id) => {
      const participant = this.participantsById.get(id);
      if (participant) this.removeParticipant(participant);
    },
    peerUpdated: (info) => {
      if (info.id === this.localParticipant?.id) return this.applyAdminMute(info.muted ?? notMuted());
      const participant = this.participantsById.get(info.id);
      if (!participant) return;
      participant.name = info.name;
      participant.metadata = info.metadata;
      participant.muted = info.muted ?? notMuted();
      const changed = this.updateSelfMuted(participant, info);
      const publications = this.updatePublications(participant, info);
      this.emit(RoomEvent.ParticipantUpdated, participant);
      this.announceMuteChanges(participant, changed);
      this.announcePublications(participant, publications);
    },
    signal: (message) => {
      let link = this.links.get(message.from);
      if (!link) {
        // Late signals of a link we closed (the room left the mesh) are dropped; in a mesh, a
        // hidden peer (a recorder) can negotiate without having been announced.
        if (this.mode !== 'mesh') return;
        link = this.link(this.upsertParticipant({ id: message.from, user_id: message.from, name: '', metadata: {} }, false), {
          initiator: false,
        });
      }
      const participant = this.participantsById.get(message.from);
      if (message.description && participant && link.isFromNewConnection(message.description)) {
        // The peer replaced a stuck link: a new connection on our side too.
        link = this.replaceLink(participant, false);
      }
      link.handleSignal(message);
    },
    modeChanged: ({ mode, reason, sfu }) => {
      const previous = this.mode;
      this.mode = mode;
      // The other topology measures afresh (an SFU's current speakers come with its info).
      if (mode !== previous) this.applySpeakers([]);
      if (mode === 'sfu' && sfu) {
        this.handOver.toSfu(previous === 'sfu');
        this.startSfu(sfu);
      } else if (mode === 'mesh' && previous === 'sfu') this.handOver.toMesh();
      this.emit(RoomEvent.ModeChanged, mode, reason);
    },
    newProducer: (info) => {
      this.producerInfos.set(info.producer_id, info);
      this.sfu?.consume(info);
    },
    producerClosed: (info) => {
      this.producerInfos.delete(info.producer_id);
      this.sfu?.producerClosed(info);
    },
    roomUpdated: (config) => {
      this.config = config;
      this.prefetchSfuClient();
    },
    activeSpeakers: (speakers) => {
      if (this.mode === 'sfu') this.applySpeakers(speakers);
    },
    connectionQuality: (peerId: string, quality: ConnectionQuality) => {
      const participant = this.participantsById.get(peerId);
      if (participant) this.setQuality(participant, quality);
    },
    ended: (error, reported, reason) => {
      this.terminalError = { error, reported, reason: this.terminalError?.reason ?? reason };
    },
    error: (error) => this.emit(RoomEvent.Error, error),
    disconnected: (signal, reason) => {
      if (this.signal !== signal || this.leaving) return;
      this.onSignalingLost(this.shutdownHeardOn === signal ? 'server_shutdown' : reason);
    },
    serverShutdown: () => {
      this.shutdownHeardOn = this.signal;
    },
    moved: (signal, wsUrl) => {
      if (this.signal !== signal || this.leaving) return;
      void this.move(wsUrl);
    },
    current: (signal) => this.signal === signal,
  };

  private applyJoin(ack: JoinResult): void {
    const previousId = this.localParticipant?.id;
    this.roomId = ack.room.id;
    this.mode = ack.room.mode;
    this.config = ack.room.config;
    this.iceServers = ack.ice_servers;
    this.localParticipant = {
      id: ack.self.id,
      identity: ack.self.user_id,
      name: ack.self.name,
      metadata: ack.self.metadata,
      grants: ack.self.grants,
      muted: notMuted(),
      selfMuted: { ...this.selfMuted },
      trackPublications: this.localParticipant?.trackPublications ?? new Map<string, TrackPublication>(),
      isSpeaking: false,
      audioLevel: 0,
      connectionQuality: this.localParticipant?.connectionQuality ?? 'unknown',
    };
    // Our tracks as the room knows them: a new connection (or a held place that lost them) is told again.
    const announced = new Set((ack.self.tracks ?? []).map((track) => track.track_id));
    for (const track of this.localTracks.keys()) {
      if (announced.has(track.id)) continue;
      const request = this.trackAnnouncement(track, this.sourceOfLocal(track), this.localTracks.get(track));
      void this.signal
        ?.request('publish_track', request)
        .catch((error: unknown) => this.emit(RoomEvent.Error, SwitchboardError.from(error)));
    }
    const local = new Set([...this.localTracks.keys()].map((track) => track.id));
    for (const id of announced) if (!local.has(id)) void this.signal?.request('unpublish_track', { track_id: id }).catch(() => undefined);
    // What we muted of our own: a new connection (or a held place that did not keep it, or a
    // change whose request the drop cut) does not know it yet.
    const known = ack.self.self_muted ?? notMuted();
    for (const kind of ['audio', 'video'] as const) {
      const muted = this.selfMuted[kind];
      if (muted !== known[kind]) void this.signal?.request('mute', { kind, muted }).catch(() => undefined);
    }
    // Links kept through a signaling drop end here when we came back under a new id (the peers
    // link afresh to it); with our old id given back, the links to peers whose ids stayed go on.
    // (A room on the SFU has no mesh links to keep: the room went there while we were away.)
    const resumed = previousId !== undefined && previousId === ack.self.id;
    if (!resumed || ack.room.mode === 'sfu') for (const participant of this.participants.values()) this.closeLink(participant);
    const present = new Set(ack.peers.map((p) => p.user_id));
    for (const participant of [...this.participants.values()]) if (!present.has(participant.identity)) this.removeParticipant(participant);
    if (ack.room.mode === 'sfu' && ack.sfu) {
      // Straight onto the SFU: no mesh to migrate from.
      for (const info of ack.peers) this.upsertParticipant(info);
      this.startSfu(ack.sfu);
      return;
    }
    // The newcomer is the impolite initiator towards everyone already there.
    for (const info of ack.peers) this.link(this.upsertParticipant(info), { initiator: true });
    this.prefetchSfuClient();
  }

  /** One more participant would promote the room: fetch mediasoup-client now, not during the hand-over. */
  private prefetchSfuClient(): void {
    const config = this.config;
    if (this.mode !== 'mesh' || !config || config.mode_policy === 'mesh') return;
    if (this.participants.size + 2 > config.mesh_threshold) void loadMediasoupClient().catch(() => undefined);
  }

  /** Takes the participant's own mute state from `info`; returns the kinds that changed. */
  private updateSelfMuted(participant: RemoteParticipant, info: PeerInfo): MediaKind[] {
    const now = info.self_muted ?? notMuted();
    const changed = (['audio', 'video'] as const).filter((kind) => participant.selfMuted[kind] !== now[kind]);
    participant.selfMuted = { ...now };
    return changed;
  }

  private announceMuteChanges(participant: RemoteParticipant, kinds: MediaKind[]): void {
    for (const kind of kinds) this.emit(participant.selfMuted[kind] ? RoomEvent.TrackMuted : RoomEvent.TrackUnmuted, participant, kind);
  }

  /** Takes the participant's announced tracks from `info`; returns those published and unpublished since. */
  private updatePublications(participant: RemoteParticipant, info: PeerInfo): { added: TrackPublication[]; removed: TrackPublication[] } {
    const now = new Map(
      (info.tracks ?? []).map((t): [string, TrackPublication] => [
        t.track_id,
        { trackId: t.track_id, kind: t.kind, source: t.source, ...(t.stream_id !== undefined ? { streamId: t.stream_id } : {}) },
      ]),
    );
    const same = (a: TrackPublication | undefined, b: TrackPublication) => a?.source === b.source && a.streamId === b.streamId;
    const removed = [...participant.trackPublications.values()].filter((p) => !same(now.get(p.trackId), p));
    const added = [...now.values()].filter((p) => !same(participant.trackPublications.get(p.trackId), p));
    for (const publication of removed) participant.trackPublications.delete(publication.trackId);
    for (const publication of added) participant.trackPublications.set(publication.trackId, publication);
    return { added, removed };
  }

  private announcePublications(
    participant: RemoteParticipant,
    { added, removed }: { added: TrackPublication[]; removed: TrackPublication[] },
  ): void {
    for (const publication of removed) this.emit(RoomEvent.TrackUnpublished, publication, participant);
    for (const publication of added) this.emit(RoomEvent.TrackPublished, publication, participant);
  }

  private upsertParticipant(info: PeerInfo, announce = true): RemoteParticipant {
    let participant = this.participants.get(info.user_id);
    if (participant) {
      // Same identity on a new connection (it reconnected): keep the participant, move the id.
      if (participant.id !== info.id) {
        this.closeLink(participant);
        this.participantsById.delete(participant.id);
        participant.id = info.id;
      }
      participant.name = info.name;
      participant.metadata = info.metadata;
      // Changed while we were away (a rejoin's list): told as changes.
      const changed = this.updateSelfMuted(participant, info);
      const publications = this.updatePublications(participant, info);
      const known = participant;
      if (changed.length > 0) queueMicrotask(() => this.announceMuteChanges(known, changed));
      if (publications.added.length + publications.removed.length > 0) queueMicrotask(() => this.announcePublications(known, publications));
    } else {
      participant = new RemoteParticipant(info.id, info.user_id, info.name, info.metadata, info.muted ?? notMuted(), {
        ...(info.self_muted ?? notMuted()),
      });
      this.participants.set(info.user_id, participant);
      // Known from the start: no TrackPublished (the app reads trackPublications on ParticipantJoined).
      this.updatePublications(participant, info);
      const joined = participant;
      // During connect(), announced once connected (connect() emits them); afterwards right after this turn.
      if (announce && this.announcements) this.announcements.push(joined);
      else if (announce) queueMicrotask(() => this.emit(RoomEvent.ParticipantJoined, joined));
    }
    this.participantsById.set(info.id, participant);
    return participant;
  }

  private removeParticipant(participant: RemoteParticipant): void {
    this.closeLink(participant);
    this.handOver.peerLeft(participant.id);
    this.delivery.forgetPeer(participant.id);
    this.participantsById.delete(participant.id);
    if (this.speakers.some((speaker) => speaker.peer_id === participant.id))
      this.applySpeakers(this.speakers.filter((speaker) => speaker.peer_id !== participant.id));
    if (this.participants.get(participant.identity) === participant) {
      this.participants.delete(participant.identity);
      // Gone: what its holes held back can only come now (before ParticipantLeft).
      this.delivery.senderLeft(participant.identity);
    }
    this.emit(RoomEvent.ParticipantLeft, participant);
  }

  private link(participant: RemoteParticipant, { initiator }: { initiator: boolean }): PeerLink {
    const existing = this.links.get(participant.id);
    if (existing) return existing;
    const remoteId = participant.id;
    const link = new PeerLink({
      remoteId,
      polite: !initiator,
      initiator,
      RTCPeerConnection: this.RTCPeerConnectionImpl as typeof RTCPeerConnection,
      configuration: { iceServers: this.iceServers as RTCIceServer[], iceTransportPolicy: this.options.forceRelay ? 'relay' : 'all' },
      sendSignal: async (signal) => {
        const connection = this.signal;
        try {
          await connection?.request('signal', { to: remoteId, ...signal });
        } catch (error) {
          // The connection that carried it was replaced or closed meanwhile: its answer no longer matters.
          if (connection !== this.signal) return;
          const wrapped = SwitchboardError.from(error, 'internal');
          // The peer left meanwhile: nothing to tell the app.
          if (wrapped.code !== 'peer_not_found' && wrapped.code !== 'not_connected') this.emit(RoomEvent.Error, wrapped);
        }
      },
      onTrack: (track, stream, senderTrackId) => this.onRemoteTrack(participant, track, stream, senderTrackId),
      onMessage: (data, reliable) => this.onData(participant, data, reliable, 'mesh'),
      onStateChange: () => undefined,
      onError: (error) => this.emit(RoomEvent.Error, SwitchboardError.from(error, 'internal')),
      onStuck: () => this.replaceStuckLink(remoteId),
    });
    this.links.set(remoteId, link);
    for (const [track, stream] of this.localTracks) link.addTrack(track, stream, this.sourceOfLocal(track) === 'screen');
    // A link to a peer we already had data from replaces one that was torn down: what was in flight there is asked for again.
    this.delivery.pathOpened(participant.identity);
    return link;
  }

  /**
   * A link whose ICE never started, ICE restarts included, gets a new peer connection. The
   * initiator replaces its side; the peer follows when the new connection's offer arrives
   * (another DTLS fingerprint). Data in flight on the old link is refilled by sync.
   */
  private replaceStuckLink(peerId: string): void {
    const link = this.links.get(peerId);
    const participant = this.participantsById.get(peerId);
    if (!link || !participant || !link.initiator || this.mode !== 'mesh') return;
    this.replaceLink(participant, true);
  }

  /** Closes the link to `participant` and builds a new one; reliable messages it never sent go on the new one. */
  private replaceLink(participant: RemoteParticipant, initiator: boolean): PeerLink {
    const unsent = this.links.get(participant.id)?.takePendingReliable() ?? [];
    this.closeLink(participant);
    const link = this.link(participant, { initiator });
    for (const data of unsent) link.send(data, true);
    return link;
  }

  private closeLink(participant: RemoteParticipant): void {
    const link = this.links.get(participant.id);
    if (!link) return;
    this.links.delete(participant.id);
    link.close();
    // Only this link's tracks: the same peer's tracks over the SFU stay subscribed.
    for (const track of link.remoteTracks) {
      if (participant.tracks.delete(track.id)) this.emit(RoomEvent.TrackUnsubscribed, track, participant);
    }
  }

  /**
   * A remote track arrived; `senderTrackId` is the publisher's id of it (mesh: from the SDP's
   * msid; SFU: from the producer), which names its publication. `source` (SFU: the producer's)
   * is used when the publication is unknown.
   */
  private onRemoteTrack(
    participant: RemoteParticipant,
    track: MediaStreamTrack,
    stream: MediaStream | undefined,
    senderTrackId: string | undefined,
    source?: TrackSource,
  ): void {
    const kind = track.kind === 'audio' ? 'audio' : 'video';
    const byStream = stream && [...participant.trackPublications.values()].find((p) => p.streamId === stream.id && p.kind === kind);
    const publication = byStream ??
      (senderTrackId !== undefined ? participant.trackPublications.get(senderTrackId) : undefined) ?? {
        trackId: senderTrackId ?? track.id,
        kind,
        source: source ?? defaultSource(kind),
      };
    participant.tracks.set(track.id, track);
    participant.trackInfo.set(track.id, publication);
    stream?.addEventListener?.('removetrack', ({ track: removed }) => {
      if (participant.tracks.delete(removed.id)) this.emit(RoomEvent.TrackUnsubscribed, removed, participant);
    });
    this.emit(RoomEvent.TrackSubscribed, track, participant, stream, publication);
  }

  private onData(participant: RemoteParticipant, message: WireMessage, reliable: boolean, via: DataPath): void {
    for (const envelope of unpack(message)) {
      if (envelope.c && !isSyncKind(envelope.c)) this.handOver.receive(participant.id, envelope, via);
      else this.delivery.receive(participant, envelope, reliable);
    }
  }

  /**
   * A room admin muted or unmuted us: our tracks of that kind are disabled (silence, black
   * frames) or enabled again. On the SFU the server pauses them too; in a mesh this is all there is.
   */
  private applyAdminMute(muted: { audio: boolean; video: boolean }): void {
    const local = this.localParticipant;
    if (!local) return;
    for (const kind of ['audio', 'video'] as const) {
      if (local.muted[kind] === muted[kind]) continue;
      local.muted[kind] = muted[kind];
      this.applyTrackEnabled(kind);
      this.emit(RoomEvent.MutedByAdmin, kind, muted[kind]);
    }
  }

  /** Joins the SFU (first time or after the router was rebuilt) and consumes everyone there. */
  private startSfu(info: SfuInfo): void {
    for (const producer of info.producers) this.producerInfos.set(producer.producer_id, producer);
    const speakers = parseSpeakers({ speakers: info.active_speakers ?? [] });
    if (speakers) this.applySpeakers(speakers);
    if (typeof info.sctp_send_buffer_bytes === 'number' && Number.isFinite(info.sctp_send_buffer_bytes))
      this.delivery.sfuQueuesUpTo(info.sctp_send_buffer_bytes);
    this.sfu?.close();
    this.handOver.sfuStarted();
    const grants = this.localParticipant?.grants;
    const session = new SfuSession({
      signal: this.signal as SignalClient,
      info,
      canPublish: Boolean(grants?.canPublish),
      canPublishData: Boolean(grants?.canPublishData),
      canSubscribe: Boolean(grants?.canSubscribe),
      iceServers: this.iceServers as RTCIceServer[],
      forceRelay: Boolean(this.options.forceRelay),
      sourceOf: (track) => this.sourceOfLocal(track),
      simulcast: this.options.simulcast ?? true,
      adaptiveStream: this.options.adaptiveStream ?? true,
      onTrack: (peerId, producerId, track) => {
        const participant = this.participantsById.get(peerId);
        const producer = this.producerInfos.get(producerId);
        if (participant) this.onRemoteTrack(participant, track, undefined, producer?.track_id, producer?.source);
      },
      onTrackEnded: (peerId, _producerId, track) => {
        const participant = this.participantsById.get(peerId);
        if (participant?.tracks.delete(track.id)) this.emit(RoomEvent.TrackUnsubscribed, track, participant);
      },
      onMessage: (peerId, data, reliable) => {
        const participant = this.participantsById.get(peerId);
        if (participant) this.onData(participant, data, reliable, 'sfu');
      },
      // Everything sent before our producer opened goes at once: batched, or it overflows the SFU's queues to receivers.
      pack: batches,
      onDataReady: () => undefined,
      onDataConsumerOpen: (peerId) => {
        const participant = this.participantsById.get(peerId);
        if (participant) this.delivery.pathOpened(participant.identity);
      },
      onError: (error) => this.emit(RoomEvent.Error, SwitchboardError.from(error, 'internal')),
    });
    this.sfu = session;
    for (const kind of ['audio', 'video'] as const) if (this.selfMuted[kind]) session.setPaused(kind, true);
    bringUpSfu(
      session,
      () => this.localTracks.keys(),
      (producers, dataProducers) => this.handOver.announce(producers, dataProducers),
    )
      .then(() => {
        if (session === this.sfu) this.failedSfuStarts = 0;
      })
      .catch((error: unknown) => {
        if (session !== this.sfu) return;
        this.emit(RoomEvent.Error, SwitchboardError.from(error, 'sfu_unavailable'));
        this.restartFailedSfuStart();
      });
  }

  /**
   * The SFU session did not start: this client would stay off the SFU until the room changes
   * mode. The server may hold half of the session (transports whose answers were lost, count
   * against the per-peer limit), and only a new connection clears it: reconnect, so the server
   * drops the old peer with everything it had on the SFU and the new join starts a new session
   * (peers see the same participant come back, as after any reconnect).
   */
  private restartFailedSfuStart(): void {
    if (
      this.failedSfuStarts >= MAX_SFU_START_RESTARTS ||
      !this.reconnectPolicy ||
      this.state !== ConnectionState.Connected ||
      this.mode !== 'sfu'
    )
      return;
    this.failedSfuStarts++;
    this.onSignalingLost('sfu session failed to start');
  }

  /**
   * The room moved to the node at wsUrl (its old node drains): join it there under our peer id
   * while the old connection keeps working. A mesh goes on over its links untouched; on the SFU
   * a new session starts on the new node and the old one carries media until the new one
   * carries everything it did (make-before-break). If the new node cannot be joined, this is
   * a signaling loss like any other (reconnect).
   */
  private async move(wsUrl: string): Promise<void> {
    if (this.moving || this.state !== ConnectionState.Connected) return;
    this.moving = true;
    const old = this.signal as SignalClient;
    // A hand-over between mesh and SFU under way ends here: the new node starts from the room's mode.
    if (this.handOver.phase !== 'idle') this.handOver.abort();
    this.closeRetired();
    this.retired = { signal: old, sfu: this.sfu, timer: null };
    this.sfu = null;
    this.nodeUrl = wsUrl;
    try {
      await this.establish();
    } catch (error) {
      this.moving = false;
      if (this.leaving) return;
      this.emit(RoomEvent.Error, SwitchboardError.from(error, 'unavailable'));
      // The old connection is still ours: lose it the usual way (its SFU session closes with it).
      this.closeRetired();
      this.signal = old;
      this.onSignalingLost('room moved, and its new node could not be joined');
      return;
    }
    this.moving = false;
    if (this.leaving) return;
    this.emit(RoomEvent.Moved, wsUrl);
    this.closeRetiredOnceCarried(Date.now() + MOVE_OVERLAP_LIMIT_MS);
  }

  /** Closes what the move left behind once the new node carries everything the old SFU session did (or at the deadline). */
  private closeRetiredOnceCarried(deadline: number): void {
    const retired = this.retired;
    if (!retired) return;
    if (!retired.sfu) return this.closeRetired();
    void this.carriesAll(retired.sfu, this.sfu).then((carried) => {
      if (this.retired !== retired) return;
      if (Date.now() >= deadline) return this.closeRetired();
      if (carried) {
        retired.timer = setTimeout(() => this.closeRetired(), Math.min(MOVE_SENDER_GRACE_MS, Math.max(0, deadline - Date.now())));
        return;
      }
      retired.timer = setTimeout(() => this.closeRetiredOnceCarried(deadline), MOVE_OVERLAP_CHECK_MS);
    });
  }

  /** Whether `fresh` receives every kind `old` receives, from everyone, with video decoding. */
  private async carriesAll(old: SfuSession, fresh: SfuSession | null): Promise<boolean> {
    if (!fresh || fresh.closed) return false;
    for (const participant of this.participants.values()) {
      const before = old.receivedKinds(participant.id);
      const now = fresh.receivedKinds(participant.id);
      for (const kind of before) if (!now.has(kind)) return false;
      // A video the app does not show is paused by the SFU: nothing of it will decode.
      if (!before.has('video') || !fresh.showsVideoFrom(participant.id)) continue;
      const stats = await fresh.statsFrom(participant.id, true).catch(() => []);
      if (!stats.flat().some((stat) => stat.kind === 'video' && isFlowing(stat))) return false;
    }
    return true;
  }

  /** Closes the connection and SFU session left on the old node. */
  private closeRetired(): void {
    const retired = this.retired;
    if (!retired) return;
    this.retired = null;
    if (retired.timer) clearTimeout(retired.timer);
    retired.sfu?.close();
    retired.signal.close();
  }

  private onSignalingLost(reason: string): void {
    this.closeRetired();
    this.signal?.close();
    this.signal = null;
    this.handOver.abort();
    this.sfu?.close();
    this.sfu = null;
    // Mesh links need no signaling once up: they keep carrying media and data until the rejoin (applyJoin) replaces them.
    if (this.mode !== 'mesh') for (const participant of this.participants.values()) this.closeLink(participant);
    if (this.terminalError || !this.reconnectPolicy) {
      if (this.terminalError && !this.terminalError.reported) this.emit(RoomEvent.Error, this.terminalError.error);
      this.teardown();
      this.ended(
        this.terminalError?.reason ?? (reason === 'server_shutdown' ? DisconnectReason.ServerShutdown : DisconnectReason.ConnectionLost),
      );
      return;
    }
    this.setState(ConnectionState.Reconnecting);
    this.emit(RoomEvent.Reconnecting, reason);
    void this.reconnect(reason);
  }

  private async reconnect(reason: string): Promise<void> {
    const started = Date.now();
    /** The delay before the next attempt when the last one found its node unreachable (null: the policy's). */
    let unreachableDelay: number | null = null;
    let reasonToEnd = DisconnectReason.ReconnectFailed;
    let policyReported = false;
    for (let retryCount = 0; ; retryCount++) {
      const elapsedMs = Date.now() - started;
      const policyDelay = this.reconnectPolicy?.nextRetryDelayInMs({ retryCount, elapsedMs, reason }) ?? null;
      if (policyDelay === null) break;
      const delay =
        unreachableDelay === null || elapsedMs > UNREACHABLE_RETRY_WINDOW_MS ? policyDelay : Math.min(policyDelay, unreachableDelay);
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (this.leaving) return;
      try {
        if (this.options.tokenRefresher) this.token = await this.options.tokenRefresher();
        const before = this.localParticipant?.id;
        await this.establish();
        if (this.leaving) return;
        this.setState(ConnectionState.Connected);
        this.emit(RoomEvent.Reconnected, { resumed: before !== undefined && before === this.localParticipant?.id });
        return;
      } catch (error) {
        const wrapped = SwitchboardError.from(error);
        if (TERMINAL_CODES.has(wrapped.code)) {
          this.emit(RoomEvent.Error, wrapped);
          reasonToEnd = disconnectReasonOf(wrapped.code);
          break;
        }
        // The page's own policy refuses the node the room is on: the app hears of it (once per
        // loss), since retrying cannot help until the room is served from an allowed node.
        if (isPolicyRefusal(wrapped) && !policyReported) {
          policyReported = true;
          this.emit(RoomEvent.Error, wrapped);
        }
        // The node may be gone: the next attempt goes through the application's URL.
        const triedNode = this.nodeUrl !== null && this.nodeUrl !== this.url;
        this.nodeUrl = null;
        // A node that refused the connection outright (no handshake answer) is down: a refusal
        // costs nothing and says nothing about load, so the next attempt does not back off. It
        // goes to the application's URL at once after the node we were on refused; after a
        // refusal through it (redirected to a dead owner the cluster has not yet noticed,
        // for up to the registry's expiry), it comes again in 250-750 ms.
        unreachableDelay = wrapped.unreachable ? (triedNode ? 0 : Math.round(250 + Math.random() * 500)) : null;
      }
    }
    this.teardown();
    this.ended(reasonToEnd);
  }

  private teardown(): void {
    this.forgetPage?.();
    this.forgetPage = null;
    this.closeRetired();
    this.quality.stop();
    this.meshLevels.stop();
    this.delivery.stop();
    this.handOver.abort();
    this.sfu?.close();
    this.sfu = null;
    this.signal?.close();
    this.signal = null;
    for (const participant of [...this.participants.values()]) this.closeLink(participant);
    // What we captured ourselves is ours to stop (the camera's light goes off); tracks the app published stay its own.
    for (const kind of ['audio', 'video'] as const) this.captured[kind]?.stop();
  }
}
