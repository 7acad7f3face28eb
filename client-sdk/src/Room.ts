import type { Grants, IceServer, JoinResult, LinkQuality, Metadata, PeerInfo, RoomConfigInfo, RoomMode, SfuInfo, SignalMessage } from '../../protocol/events.js';
import { Emitter } from './Emitter.js';
import { SwitchboardError } from './errors.js';
import { InboundSequencer } from './InboundSequencer.js';
import { inboundStats, isFlowing } from './inboundStats.js';
import { MigrationMonitor, type MigrationReport } from './MigrationMonitor.js';
import { VideoGapMeter, type VideoPathCounters, type VideoSample } from './VideoGapMeter.js';
import { SentHistory } from './SentHistory.js';
import { PeerLink } from './PeerLink.js';
import { summarizeLink, type QualitySample } from './quality.js';
import { DefaultReconnectPolicy, type ReconnectPolicy } from './ReconnectPolicy.js';
import { loadMediasoupClient, SfuSession } from './SfuSession.js';
import { SignalClient, type Credentials } from './SignalClient.js';

/** Room events, as a string enum (LiveKit's style); listener signatures are in RoomEventCallbacks. */
export enum RoomEvent {
  ParticipantJoined = 'participantJoined',
  ParticipantLeft = 'participantLeft',
  ParticipantUpdated = 'participantUpdated',
  TrackSubscribed = 'trackSubscribed',
  TrackUnsubscribed = 'trackUnsubscribed',
  Data = 'data',
  ModeChanged = 'modeChanged',
  MutedByAdmin = 'mutedByAdmin',
  ConnectionStateChanged = 'connectionStateChanged',
  Error = 'error',
}

export enum ConnectionState {
  Connecting = 'connecting',
  Connected = 'connected',
  Reconnecting = 'reconnecting',
  Disconnected = 'disconnected',
}

/** What a data message carries: text, JSON, or bytes. */
export type DataPayload = string | Uint8Array | { [key: string]: unknown } | unknown[];

export interface DataInfo {
  reliable: boolean;
  /** The sender's sequence number (per sender, increasing). */
  seq: number;
}

/** Inbound media from one participant (see Room.getParticipantStats). */
export interface ParticipantMediaStats {
  audioBytes: number;
  videoBytes: number;
  framesDecoded: number;
  framesByPath: { mesh: number; sfu: number };
  /** Decoded-video counters per path, with the browser's inter-frame delay sums where it reports them. */
  videoByPath: { mesh: VideoPathCounters; sfu: VideoPathCounters };
}

export interface RoomEventCallbacks {
  participantJoined: (participant: RemoteParticipant) => void;
  participantLeft: (participant: RemoteParticipant) => void;
  participantUpdated: (participant: RemoteParticipant) => void;
  trackSubscribed: (track: MediaStreamTrack, participant: RemoteParticipant, stream: MediaStream | undefined) => void;
  trackUnsubscribed: (track: MediaStreamTrack, participant: RemoteParticipant) => void;
  data: (payload: DataPayload, participant: RemoteParticipant, info: DataInfo) => void;
  modeChanged: (mode: RoomMode, reason: string) => void;
  /** A room admin muted (or unmuted) this client's audio or video; the SDK disabled (re-enabled) those tracks. */
  mutedByAdmin: (kind: 'audio' | 'video', muted: boolean) => void;
  connectionStateChanged: (state: ConnectionState) => void;
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
}

/** Another participant of the room. */
export class RemoteParticipant {
  /** Remote tracks by track id. */
  readonly tracks = new Map<string, MediaStreamTrack>();

  constructor(
    /** Current connection id (changes when the participant reconnects). */
    public id: string,
    /** The token's subject: stable across reconnects. */
    readonly identity: string,
    public name: string,
    public metadata: Metadata,
    /** What a room admin muted of this participant (admin:mute). */
    public muted: { audio: boolean; video: boolean } = notMuted(),
  ) {}
}

/** This client, as the room sees it. */
export interface LocalParticipant {
  id: string;
  identity: string;
  name: string;
  metadata: Metadata;
  grants: Grants;
  /** What a room admin muted of ours: those tracks are disabled until unmuted. */
  muted: { audio: boolean; video: boolean };
}

/** Server codes after which reconnecting cannot help. */
const TERMINAL_CODES = new Set(['token_revoked', 'token_invalid', 'token_expired', 'token_missing', 'forbidden', 'room_not_found', 'room_locked', 'room_full']);

const toBase64 = (bytes: Uint8Array): string => {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
};
const fromBase64 = (text: string): Uint8Array => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/**
 * The envelope every data message travels in. Data: kind, sender epoch, sequence (separate
 * spaces for reliable and lossy), targets. Control (`c`): migration hand-shakes between peers.
 */
interface Envelope {
  k?: 's' | 'j' | 'b';
  /** Sender's random epoch: sequence numbers restart with a new Room instance. */
  e?: string;
  q?: number;
  /** 1 reliable, 0 lossy. */
  r?: 0 | 1;
  /** Target identities; absent means everyone. */
  t?: string[];
  /** A batch: whole envelopes (as sent), handled one by one (a sync answer's resends, the backlog flushed when our SFU data producer opens). */
  b?: string[];
  d?: unknown;
  c?: ControlKind;
  /** With sfu-produced: our producer ids on the SFU. */
  p?: string[];
  /** With sfu-produced: 1 while only the media producers are listed (the data producers follow). */
  m?: number;
  /** With sfu-produced (the full list): which of `p` are data producers. */
  dp?: string[];
  /** With sync: the identity of the sender asked to resend (with `e`, its epoch, `q`, from where, and `u`, up to where, exclusive). */
  s?: string;
  u?: number;
  /** With sync and synced: the request's nonce. */
  n?: string;
  /** With synced: the oldest sequence number the sender still holds (older ones are gone for good). */
  o?: number;
}

/**
 * Migration hand-shakes. To the SFU: `sfu-produced` (mesh; the producers to expect from me:
 * first the media ones with m=1, then all, with the data ones in dp), `sfu-media-ready` (mesh;
 * your media reaches me over the SFU, stop sending it on this link), `sfu-data-ready` (mesh; I
 * receive your data over the SFU), `sfu-ready` (mesh; I receive all of you over the SFU, data
 * included), `bye` (mesh; my last data on this link).
 * To the mesh: `mesh-ready` (mesh; I receive you over the mesh), `sfu-bye` (SFU; my last data there).
 */
type ControlKind = 'sfu-produced' | 'sfu-media-ready' | 'sfu-data-ready' | 'sfu-ready' | 'bye' | 'mesh-ready' | 'sfu-bye' | SyncKind;

/**
 * The safety net of exactly-once data: a receiver that misses reliable messages of a sender
 * (a hole in its sequence, or a new SFU data consumer of that sender, which cannot have
 * received what was sent before it existed) asks `sync` {s: sender, e: epoch, q: from, n};
 * the sender resends what it still holds of [q, u) on every path it has, then answers
 * `synced` {t: [asker], n, o: the oldest number it still holds} on the same paths. The asker
 * repeats until answered (SCTP on the SFU drops messages to a receiver that fell far behind,
 * so requests, resends and answers can all be lost), gives up on what is older than `o`, and
 * stops after SYNC_GIVE_UP_MS; the sequencer drops the copies.
 */
type SyncKind = 'sync' | 'synced';
/**
 * A failed SFU session start (transports refused or unanswered, device load failed) is retried
 * with a new connection at most this many times in a row.
 */
const MAX_SFU_START_RESTARTS = 2;
const SYNC_CHECK_MS = 250;
const SYNC_RETRY_MS = 500;
const SYNC_GIVE_UP_MS = 30_000;
/** At most this many messages per answer: resends must not flood a receiver that is already behind. */
const SYNC_MAX_RESEND = 256;
/** A message resent over the SFU (to every receiver) is not resent there again within this time. */
const SYNC_RESEND_WINDOW_MS = 1000;

/** At most this many characters of envelopes in one batch message (SCTP messages up to 256 KiB pass everywhere). */
const BATCH_MAX_CHARS = 32 * 1024;

/**
 * Envelopes packed into as few messages as fit BATCH_MAX_CHARS ({b: [...]}): mediasoup's SCTP
 * association queues a bounded number of chunks for a receiver (usrsctp's per-association
 * chunk limit; 512 by its defaults as far as we know) and drops the rest, so 256 resent
 * messages one by one overflow a receiver that is behind, while a batch is a few chunks. One
 * envelope is sent as it is.
 */
function batches(texts: string[]): string[] {
  const out: string[] = [];
  let batch: string[] = [];
  let chars = 0;
  const flush = () => {
    if (batch.length === 1) out.push(batch[0] as string);
    else if (batch.length > 1) out.push(JSON.stringify({ b: batch }));
    batch = [];
    chars = 0;
  };
  for (const text of texts) {
    if (chars + text.length > BATCH_MAX_CHARS) flush();
    batch.push(text);
    chars += text.length;
  }
  flush();
  return out;
}

/** The sequencer's key of one sender: identity and data epoch (sequence numbers restart with an epoch). */
const senderKey = (identity: string, epoch: string): string => `${identity}\u0000${epoch}`;

const notMuted = (): { audio: boolean; video: boolean } => ({ audio: false, video: false });

/** A sync request of ours, waiting for its `synced`. */
interface PendingSync {
  identity: string;
  epoch: string;
  from: number;
  /** The end of the hole (exclusive); null asks for everything from `from` on. */
  to: number | null;
  nonce: string;
  since: number;
  askedAt: number;
}

const newHandOver = (): HandOver => ({
  expected: null,
  mediaOnly: false,
  expectedData: null,
  mediaReadySent: false,
  dataReadySent: false,
  dataReadyReceived: false,
  readySent: false,
  readyReceived: false,
  byeSent: false,
  byeReceived: false,
});

/** Migration bookkeeping for one remote participant. */
interface HandOver {
  /** To the SFU: the producer ids the peer announced over the mesh. */
  expected: string[] | null;
  /** To the SFU: `expected` lists the peer's media producers only (its data producers follow). */
  mediaOnly: boolean;
  /** To the SFU: the peer's data producer ids (null until its full list came). */
  expectedData: string[] | null;
  mediaReadySent: boolean;
  dataReadySent: boolean;
  dataReadyReceived: boolean;
  readySent: boolean;
  readyReceived: boolean;
  byeSent: boolean;
  byeReceived: boolean;
}

/**
 * A connection to one Switchboard room. `Room.connect()` joins and builds the peer
 * connections; the rest of the API (publish, send, events) is the same whether the room is
 * a mesh or on the SFU.
 */
export class Room extends Emitter<RoomEventCallbacks> {
  state: ConnectionState = ConnectionState.Connecting;
  mode: RoomMode = 'mesh';
  roomId = '';
  config: RoomConfigInfo | null = null;
  localParticipant: LocalParticipant | null = null;
  /** Remote participants by identity. */
  readonly participants = new Map<string, RemoteParticipant>();

  private signal: SignalClient | null = null;
  private readonly links = new Map<string, PeerLink>();
  private readonly participantsById = new Map<string, RemoteParticipant>();
  private readonly localTracks = new Map<MediaStreamTrack, MediaStream | undefined>();
  private iceServers: IceServer[] = [];
  private readonly epoch = Math.random().toString(36).slice(2, 10);
  private reliableSeq = 0;
  /** Our last reliable messages, for peers that ask to have them again (sync). */
  private readonly sentHistory = new SentHistory();
  /** Our open sync requests, by sequencer key. */
  private readonly pendingSyncs = new Map<string, PendingSync>();
  /** Identities that joined after us: their reliable data is owed to us from sequence 1. */
  private readonly joinedAfterUs = new Set<string>();
  /** The latest data epoch seen from each remote identity. */
  private readonly epochByIdentity = new Map<string, string>();
  /** When we last answered a sync of each asker (answers are spaced out). */
  private readonly syncAnsweredAt = new Map<string, number>();
  private syncTimer: ReturnType<typeof setInterval> | null = null;
  private lossySeq = 0;
  private readonly sequencer = new InboundSequencer<{ participant: RemoteParticipant; envelope: Envelope; reliable: boolean }>();
  /** Our presence on the SFU while the room is (or is leaving) SFU mode. */
  private sfu: SfuSession | null = null;
  /** We sent sfu-bye: data no longer goes over the SFU. */
  private sfuByeSent = false;
  /** SFU session starts that failed in a row (each restarted with a new connection). */
  private failedSfuStarts = 0;
  /** Peers that sent us sfu-bye (their last data over the SFU). */
  private readonly sfuByeFrom = new Set<string>();
  /** Migration state per remote peer id, while a migration runs. */
  private readonly handOver = new Map<string, HandOver>();
  private migrationTimer: ReturnType<typeof setInterval> | null = null;
  private migrationDeadline: ReturnType<typeof setTimeout> | null = null;
  /**
   * To the SFU, past the deadline: the links carry no more media but stay up for data until
   * both sides receive each other's data over the SFU (or a second deadline passes).
   */
  private migrationOverdue = false;
  private monitor: MigrationMonitor | null = null;
  /** The last migration this client went through. */
  lastMigration: MigrationReport | null = null;
  private leaving = false;
  /** Why the room cannot go on (kicked, closed, token refused); `reported` once the app got it as an error event. */
  private terminalError: { error: SwitchboardError; reported: boolean } | null = null;
  private statsTimer: ReturnType<typeof setInterval> | null = null;
  /** Room events received while a join is in flight; null once the join is applied. */
  private beforeJoin: Array<() => void> | null = null;
  private readonly qualitySamples = new Map<string, QualitySample>();
  private readonly RTCPeerConnectionImpl: typeof RTCPeerConnection;
  private readonly reconnectPolicy: ReconnectPolicy | null;

  private constructor(
    private readonly url: string,
    private token: Credentials,
    private readonly options: RoomOptions,
  ) {
    super();
    const impl = options.webrtc?.RTCPeerConnection ?? (globalThis as { RTCPeerConnection?: typeof RTCPeerConnection }).RTCPeerConnection;
    if (!impl) throw new SwitchboardError('webrtc_unavailable', 'no RTCPeerConnection: pass options.webrtc (e.g. @roamhq/wrtc in Node)');
    this.RTCPeerConnectionImpl = impl;
    this.reconnectPolicy = options.reconnectPolicy === undefined ? new DefaultReconnectPolicy() : options.reconnectPolicy;
  }

  /**
   * Connects, joins the room named in the token, and connects to every participant. Instead of
   * a token, `{ room, name }` joins an anonymous/demo room on a server that allows them.
   */
  static async connect(url: string, token: Credentials, options: RoomOptions = {}): Promise<Room> {
    const room = new Room(url, token, options);
    await room.establish();
    room.setState(ConnectionState.Connected);
    room.startStats();
    room.startSyncChecks();
    return room;
  }

  /** Publishes a track (or every track of a stream) to every participant. */
  async publish(source: MediaStreamTrack | MediaStream): Promise<void> {
    this.assertConnected();
    if (!this.localParticipant?.grants.canPublish) throw new SwitchboardError('forbidden', 'this token does not grant canPublish');
    const isStream = typeof (source as MediaStream).getTracks === 'function';
    const tracks = isStream ? (source as MediaStream).getTracks() : [source as MediaStreamTrack];
    const stream = isStream ? (source as MediaStream) : undefined;
    for (const track of tracks) {
      if (this.localParticipant.muted[track.kind as 'audio' | 'video']) track.enabled = false; // muted by a room admin
      this.localTracks.set(track, stream);
      for (const link of this.links.values()) link.addTrack(track, stream);
      await this.sfu?.produce(track);
    }
  }

  /** Stops sending a published track. */
  async unpublish(track: MediaStreamTrack): Promise<void> {
    this.localTracks.delete(track);
    for (const link of this.links.values()) link.removeTrack(track);
    await this.sfu?.unproduce(track);
  }

  /**
   * Sends data to every participant (or to the given identities). Reliable messages arrive
   * exactly once and in order per sender; lossy ones may be dropped.
   */
  send(payload: DataPayload, options: { reliable?: boolean; to?: string[] } = {}): void {
    this.assertConnected();
    if (!this.localParticipant?.grants.canPublishData) throw new SwitchboardError('forbidden', 'this token does not grant canPublishData');
    const reliable = options.reliable ?? true;
    const seq = reliable ? ++this.reliableSeq : ++this.lossySeq;
    const envelope: Envelope = { e: this.epoch, q: seq, r: reliable ? 1 : 0 };
    if (options.to) envelope.t = options.to;
    if (typeof payload === 'string') Object.assign(envelope, { k: 's', d: payload });
    else if (payload instanceof Uint8Array) Object.assign(envelope, { k: 'b', d: toBase64(payload) });
    else Object.assign(envelope, { k: 'j', d: payload });
    const text = JSON.stringify(envelope);
    if (reliable) this.sentHistory.add(seq, text);
    // Every open path carries the message (receivers de-duplicate); targets filter on arrival,
    // so every receiver sees each sender's sequence without gaps.
    if (this.sfu && !this.sfuByeSent) this.sfu.send(text, reliable);
    for (const [peerId, link] of this.links) if (!this.handOver.get(peerId)?.byeSent) link.send(text, reliable);
  }

  /** Changes this participant's metadata (needs canUpdateOwnMetadata). */
  async setMetadata(metadata: Metadata): Promise<void> {
    this.assertConnected();
    await this.signal?.request('update_metadata', { metadata });
    if (this.localParticipant) this.localParticipant.metadata = metadata;
  }

  /** Leaves the room and closes every connection. Idempotent. */
  async leave(): Promise<void> {
    if (this.leaving) return;
    this.leaving = true;
    this.stopStats();
    try {
      if (this.signal?.socket.connected) await this.signal.request('leave', undefined);
    } catch {
      // Leaving anyway.
    }
    this.teardown();
    this.setState(ConnectionState.Disconnected);
  }

  /** Bytes and packets per link, from getStats (for apps and tests). */
  async getLinkStats(): Promise<Map<string, RTCStatsReport>> {
    const result = new Map<string, RTCStatsReport>();
    for (const [id, link] of this.links) result.set(this.participantsById.get(id)?.identity ?? id, await link.pc.getStats());
    return result;
  }

  /**
   * Inbound media per participant over both paths (mesh link and SFU consumers): totals, and
   * decoded-video counters per path (a path's counters restart when its connection is replaced).
   */
  async getParticipantStats(): Promise<Map<string, ParticipantMediaStats>> {
    // All getStats calls at once: each waits behind the browser's SDP work during a migration.
    const perParticipant = await Promise.all(
      [...this.participants.values()].map(async (participant) => {
        const link = this.links.get(participant.id);
        const [mesh, sfu] = await Promise.all([
          link ? link.pc.getStats().then((report) => [inboundStats(report)], () => []) : Promise.resolve([]),
          this.sfu ? this.sfu.statsFrom(participant.id).catch(() => []) : Promise.resolve([]),
        ]);
        return [participant.identity, { mesh, sfu }] as const;
      }),
    );
    const result = new Map<string, ParticipantMediaStats>();
    for (const [identity, reports] of perParticipant) {
      const totals: ParticipantMediaStats = {
        audioBytes: 0,
        videoBytes: 0,
        framesDecoded: 0,
        framesByPath: { mesh: 0, sfu: 0 },
        videoByPath: { mesh: { frames: 0 }, sfu: { frames: 0 } },
      };
      for (const path of ['mesh', 'sfu'] as const) {
        const video = totals.videoByPath[path];
        for (const stat of reports[path].flat()) {
          if (stat.kind === 'audio') totals.audioBytes += stat.bytesReceived ?? 0;
          if (stat.kind !== 'video') continue;
          totals.videoBytes += stat.bytesReceived ?? 0;
          video.frames += stat.framesDecoded ?? 0;
          if (stat.totalInterFrameDelay !== undefined) {
            video.interFrameDelay = (video.interFrameDelay ?? 0) + stat.totalInterFrameDelay;
            video.squaredInterFrameDelay = (video.squaredInterFrameDelay ?? 0) + (stat.totalSquaredInterFrameDelay ?? 0);
          }
          if (stat.freezeCount !== undefined) {
            video.freezes = (video.freezes ?? 0) + stat.freezeCount;
            video.freezesDuration = (video.freezesDuration ?? 0) + (stat.totalFreezesDuration ?? 0);
          }
        }
        totals.framesByPath[path] = video.frames;
        totals.framesDecoded += video.frames;
      }
      result.set(identity, totals);
    }
    return result;
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
    for (const [identity, stats] of await this.getParticipantStats()) sample.set(identity, stats.videoByPath);
    return sample;
  }

  private assertConnected(): void {
    if (this.state !== ConnectionState.Connected) throw new SwitchboardError('not_connected', `room is ${this.state}`);
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit(RoomEvent.ConnectionStateChanged, state);
  }

  /** Connects the signaling socket, joins, and links to every peer in the join ack. */
  private async establish(): Promise<void> {
    const signal = new SignalClient(this.url, this.token, { requestTimeoutMs: this.options.requestTimeoutMs ?? 10_000, socketOptions: this.options.socketOptions });
    try {
      await signal.connect();
      // Room events that arrive before the join ack is applied wait for it (ws may deliver
      // the ack and a peer's first offer in one tick).
      this.beforeJoin = [];
      this.listen(signal);
      const ack: JoinResult = await signal.request('join', this.options.metadata ? { metadata: this.options.metadata } : {});
      this.signal = signal;
      this.applyJoin(ack);
      const waiting = this.beforeJoin;
      this.beforeJoin = null;
      for (const run of waiting) run();
    } catch (error) {
      signal.close();
      throw SwitchboardError.from(error);
    }
  }

  private applyJoin(ack: JoinResult): void {
    this.roomId = ack.room.id;
    this.mode = ack.room.mode;
    this.config = ack.room.config;
    this.iceServers = ack.ice_servers;
    this.localParticipant = { id: ack.self.id, identity: ack.self.user_id, name: ack.self.name, metadata: ack.self.metadata, grants: ack.self.grants, muted: notMuted() };
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

  private listen(signal: SignalClient): void {
    const socket = signal.socket;
    /** Runs a room event now, or after the join ack when a join is in flight. */
    const ordered =
      <A extends unknown[]>(handler: (...args: A) => void) =>
      (...args: A) => {
        if (this.beforeJoin) this.beforeJoin.push(() => handler(...args));
        else handler(...args);
      };
    socket.on(
      'peer_joined',
      ordered((info: PeerInfo) => {
        const participant = this.upsertParticipant(info);
        // It joined after us: we are owed its data from its first message on.
        this.joinedAfterUs.add(participant.identity);
        if (this.mode === 'mesh') this.link(participant, { initiator: false });
        this.prefetchSfuClient();
      }),
    );
    socket.on(
      'peer_left',
      ordered(({ id }: { id: string }) => {
        const participant = this.participantsById.get(id);
        if (participant) this.removeParticipant(participant);
      }),
    );
    socket.on(
      'peer_updated',
      ordered((info: PeerInfo) => {
        if (info.id === this.localParticipant?.id) {
          this.applyAdminMute(info.muted ?? notMuted());
          return;
        }
        const participant = this.participantsById.get(info.id);
        if (!participant) return;
        participant.name = info.name;
        participant.metadata = info.metadata;
        participant.muted = info.muted ?? notMuted();
        this.emit(RoomEvent.ParticipantUpdated, participant);
      }),
    );
    socket.on(
      'signal',
      ordered((message: SignalMessage) => {
        let link = this.links.get(message.from);
        if (!link) {
          // Late signals of a link we closed (the room left the mesh) are dropped; in a mesh, a
          // hidden peer (a recorder) can negotiate without having been announced.
          if (this.mode !== 'mesh') return;
          link = this.link(this.upsertParticipant({ id: message.from, user_id: message.from, name: '', metadata: {} }, false), { initiator: false });
        }
        const participant = this.participantsById.get(message.from);
        if (message.description && participant && link.isFromNewConnection(message.description)) {
          // The peer replaced a stuck link: a new connection on our side too.
          link = this.replaceLink(participant, false);
        }
        link.handleSignal(message);
      }),
    );
    socket.on(
      'mode_changed',
      ordered(({ mode, reason, sfu }: { mode: RoomMode; reason: string; sfu?: SfuInfo }) => {
        const previous = this.mode;
        this.mode = mode;
        if (mode === 'sfu' && sfu) this.migrateToSfu(sfu, previous === 'sfu');
        else if (mode === 'mesh' && previous === 'sfu') this.migrateToMesh();
        this.emit(RoomEvent.ModeChanged, mode, reason);
      }),
    );
    socket.on(
      'sfu:new_producer',
      ordered((info) => this.sfu?.consume(info)),
    );
    socket.on(
      'sfu:producer_closed',
      ordered((info) => this.sfu?.producerClosed(info)),
    );
    socket.on('room_updated', ({ config }) => {
      this.config = config;
      this.prefetchSfuClient();
    });
    socket.on('kicked', ({ reason }) => {
      this.terminalError = { error: new SwitchboardError('forbidden', `kicked: ${reason}`), reported: false };
    });
    socket.on('room_closed', ({ reason }) => {
      this.terminalError = { error: new SwitchboardError('not_connected', `room closed: ${reason}`), reported: false };
    });
    socket.on('error', (error) => {
      const wrapped = SwitchboardError.from(error, 'internal');
      if (TERMINAL_CODES.has(wrapped.code)) this.terminalError = { error: wrapped, reported: true };
      this.emit(RoomEvent.Error, wrapped);
    });
    socket.on('disconnect', (reason) => {
      if (this.signal !== signal || this.leaving) return;
      this.onSignalingLost(String(reason));
    });
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
    } else {
      participant = new RemoteParticipant(info.id, info.user_id, info.name, info.metadata, info.muted ?? notMuted());
      this.participants.set(info.user_id, participant);
      if (announce) queueMicrotask(() => this.emit(RoomEvent.ParticipantJoined, participant as RemoteParticipant));
    }
    this.participantsById.set(info.id, participant);
    return participant;
  }

  private removeParticipant(participant: RemoteParticipant): void {
    this.closeLink(participant);
    this.handOver.delete(participant.id);
    this.sfuByeFrom.delete(participant.id);
    this.syncAnsweredAt.delete(participant.id);
    this.participantsById.delete(participant.id);
    if (this.participants.get(participant.identity) === participant) {
      this.participants.delete(participant.identity);
      // Gone: what its holes held back can only come now (before ParticipantLeft).
      const epoch = this.epochByIdentity.get(participant.identity);
      if (epoch) this.sequencer.release(senderKey(participant.identity, epoch), (m) => this.deliver(m));
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
      RTCPeerConnection: this.RTCPeerConnectionImpl,
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
      onTrack: (track, stream) => this.onRemoteTrack(participant, track, stream),
      onMessage: (data, reliable) => this.onData(participant, data, reliable, 'mesh'),
      onStateChange: () => undefined,
      onError: (error) => this.emit(RoomEvent.Error, SwitchboardError.from(error, 'internal')),
      onStuck: () => this.replaceStuckLink(remoteId),
    });
    this.links.set(remoteId, link);
    for (const [track, stream] of this.localTracks) link.addTrack(track, stream);
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

  private onRemoteTrack(participant: RemoteParticipant, track: MediaStreamTrack, stream: MediaStream | undefined): void {
    participant.tracks.set(track.id, track);
    stream?.addEventListener?.('removetrack', ({ track: removed }) => {
      if (participant.tracks.delete(removed.id)) this.emit(RoomEvent.TrackUnsubscribed, removed, participant);
    });
    this.emit(RoomEvent.TrackSubscribed, track, participant, stream);
  }

  private onData(participant: RemoteParticipant, text: string, reliable: boolean, via: 'mesh' | 'sfu', inBatch = false): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(text) as Envelope;
    } catch {
      return;
    }
    if (Array.isArray(envelope.b)) {
      // One level only: a batch inside a batch is ignored.
      if (!inBatch) for (const inner of envelope.b) if (typeof inner === 'string') this.onData(participant, inner, reliable, via, true);
      return;
    }
    if (envelope.c) {
      this.onControl(participant, envelope, via);
      return;
    }
    if (typeof envelope.q !== 'number' || typeof envelope.e !== 'string') return;
    const isReliable = envelope.r === undefined ? reliable : envelope.r === 1;
    this.epochByIdentity.set(participant.identity, envelope.e);
    const key = senderKey(participant.identity, envelope.e);
    // Its first messages may have gone out before any path to us was up (an SFU data consumer
    // opens after the producer): a hole from 1 that the sync check asks for.
    if (isReliable && this.joinedAfterUs.has(participant.identity) && this.sequencer.expected(key) === null) this.sequencer.expectFrom(key, 1);
    this.sequencer.accept(key, envelope.q, isReliable, { participant, envelope, reliable: isReliable }, (m) => this.deliver(m));
  }

  private deliver({ participant, envelope, reliable }: { participant: RemoteParticipant; envelope: Envelope; reliable: boolean }): void {
    const self = this.localParticipant?.identity;
    if (envelope.t && (!self || !envelope.t.includes(self))) return;
    const payload = envelope.k === 'b' ? fromBase64(String(envelope.d)) : (envelope.d as DataPayload);
    this.emit(RoomEvent.Data, payload, participant, { reliable, seq: envelope.q as number });
  }

  // ---- Migration: make-before-break in both directions -------------------------------------

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
      for (const track of this.localTracks.keys()) if (track.kind === kind) track.enabled = !muted[kind];
      this.emit(RoomEvent.MutedByAdmin, kind, muted[kind]);
    }
  }

  /** Sends a control message to one peer over the mesh. */
  private control(peerId: string, kind: ControlKind, extra: Partial<Envelope> = {}): void {
    this.links.get(peerId)?.send(JSON.stringify({ c: kind, ...extra }), true);
  }

  private onControl(participant: RemoteParticipant, envelope: Envelope, via: 'mesh' | 'sfu'): void {
    if (envelope.c === 'sync' || envelope.c === 'synced') {
      this.onSync(participant, envelope);
      return;
    }
    if (envelope.c === 'sfu-bye' && via === 'sfu') {
      this.sfuByeFrom.add(participant.id);
      return;
    }
    const state = this.handOver.get(participant.id);
    if (!state) return;
    if (envelope.c === 'sfu-produced') {
      state.expected = Array.isArray(envelope.p) ? envelope.p.map(String) : [];
      state.mediaOnly = envelope.m === 1;
      if (!state.mediaOnly) state.expectedData = Array.isArray(envelope.dp) ? envelope.dp.map(String) : [];
    } else if (envelope.c === 'sfu-media-ready') {
      // The peer gets our media over the SFU: one encoder less while everyone decodes twice.
      if (this.mode === 'sfu') this.links.get(participant.id)?.stopMedia();
    } else if (envelope.c === 'sfu-data-ready') state.dataReadyReceived = true;
    else if (envelope.c === 'sfu-ready' || envelope.c === 'mesh-ready') {
      state.readyReceived = true;
      state.dataReadyReceived = true;
    }
    else if (envelope.c === 'bye') state.byeReceived = true;
  }

  // ---- Sync: resending reliable data a peer missed -----------------------------------------

  /** Every SYNC_CHECK_MS: ask for holes older than that, repeat unanswered requests. */
  private checkSyncs(): void {
    this.sequencer.expire((m) => this.deliver(m));
    for (const { sender, expected, next } of this.sequencer.gaps(SYNC_CHECK_MS)) {
      const [identity, epoch] = sender.split('\u0000') as [string, string];
      this.requestSync(identity, epoch, expected, next);
    }
    const now = Date.now();
    for (const [key, pending] of this.pendingSyncs) {
      if (now - pending.since > SYNC_GIVE_UP_MS || !this.participants.has(pending.identity)) this.pendingSyncs.delete(key);
      else if (now - pending.askedAt >= SYNC_RETRY_MS) this.askSync(pending);
    }
  }

  /** Asks a sender to resend [from, to) (unless the same request is already open). */
  private requestSync(identity: string, epoch: string, from: number, to: number | null): void {
    const key = senderKey(identity, epoch);
    const open = this.pendingSyncs.get(key);
    if (open && open.from === from && open.to === to) return;
    const pending: PendingSync = { identity, epoch, from, to, nonce: Math.random().toString(36).slice(2, 10), since: Date.now(), askedAt: 0 };
    this.pendingSyncs.set(key, pending);
    this.askSync(pending);
  }

  private askSync(pending: PendingSync): void {
    pending.askedAt = Date.now();
    const participant = this.participants.get(pending.identity);
    if (!participant) return;
    const text = JSON.stringify({ c: 'sync', s: pending.identity, e: pending.epoch, q: pending.from, ...(pending.to === null ? {} : { u: pending.to }), n: pending.nonce });
    this.sendControlEverywhere(participant.id, text);
  }

  /** A control message to one peer over every path we have to it (mesh link, SFU). */
  private sendControlEverywhere(peerId: string, text: string): void {
    if (this.sfu && !this.sfuByeSent && this.localParticipant?.grants.canPublishData) this.sfu.send(text, true);
    this.links.get(peerId)?.send(text, true);
  }

  private onSync(participant: RemoteParticipant, envelope: Envelope): void {
    const self = this.localParticipant?.identity;
    if (envelope.c === 'synced') {
      if (!self || !envelope.t?.includes(self)) return;
      for (const [key, pending] of this.pendingSyncs) {
        if (pending.nonce !== envelope.n) continue;
        this.pendingSyncs.delete(key);
        // What the sender no longer holds is lost for good: stop holding later messages back for it.
        if (typeof envelope.o === 'number') this.sequencer.skipTo(key, envelope.o, (m) => this.deliver(m));
      }
      return;
    }
    // A sync for us (the SFU path carries everyone's requests to everyone).
    if (envelope.s !== self || envelope.e !== this.epoch || typeof envelope.q !== 'number' || typeof envelope.n !== 'string') return;
    const now = Date.now();
    if (now - (this.syncAnsweredAt.get(participant.id) ?? 0) < SYNC_CHECK_MS) return;
    this.syncAnsweredAt.set(participant.id, now);
    const link = this.links.get(participant.id);
    const overLink = link && !this.handOver.get(participant.id)?.byeSent ? link : null;
    const overSfu = this.sfu && !this.sfuByeSent ? this.sfu : null;
    const answer = JSON.stringify({ c: 'synced', t: [participant.identity], n: envelope.n, o: this.sentHistory.oldest(this.reliableSeq + 1) });
    const to = typeof envelope.u === 'number' ? envelope.u : Infinity;
    // The link reaches the asker alone; the SFU reaches everyone, so there each message goes
    // again at most once per SYNC_RESEND_WINDOW_MS, whoever asks.
    if (overLink) for (const text of batches([...this.sentHistory.range(envelope.q, to, SYNC_MAX_RESEND), answer])) overLink.send(text, true);
    if (overSfu) for (const text of batches([...this.sentHistory.rangeToResend(envelope.q, to, SYNC_MAX_RESEND, now, SYNC_RESEND_WINDOW_MS), answer])) overSfu.send(text, true);
  }

  /** A new SFU data consumer of a peer: it cannot have received what the peer sent before it existed. */
  private onDataConsumerOpen(peerId: string): void {
    const participant = this.participantsById.get(peerId);
    const epoch = participant ? this.epochByIdentity.get(participant.identity) : undefined;
    if (!participant || !epoch) return; // Nothing received from it yet: its stream starts wherever we join it.
    const expected = this.sequencer.expected(senderKey(participant.identity, epoch));
    if (expected !== null) this.requestSync(participant.identity, epoch, expected, null);
  }

  /** Joins the SFU (first time or after the router was rebuilt) and consumes everyone there. */
  private startSfu(info: SfuInfo): void {
    this.sfu?.close();
    this.sfuByeSent = false;
    this.sfuByeFrom.clear();
    const grants = this.localParticipant?.grants;
    const session = new SfuSession({
      signal: this.signal as SignalClient,
      info,
      canPublish: Boolean(grants?.canPublish),
      canPublishData: Boolean(grants?.canPublishData),
      canSubscribe: Boolean(grants?.canSubscribe),
      iceServers: this.iceServers as RTCIceServer[],
      forceRelay: Boolean(this.options.forceRelay),
      onTrack: (peerId, _producerId, track) => {
        const participant = this.participantsById.get(peerId);
        if (participant) this.onRemoteTrack(participant, track, undefined);
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
      onDataConsumerOpen: (peerId) => this.onDataConsumerOpen(peerId),
      onError: (error) => this.emit(RoomEvent.Error, SwitchboardError.from(error, 'internal')),
    });
    this.sfu = session;
    session
      .start()
      .then(async () => {
        // Video first: each produce is an SDP round of seconds on a busy page, and video is
        // what peers wait for before the hand-over (a stalled tile shows; audio goes on over the
        // mesh until the link closes).
        const tracks = [...this.localTracks.keys()].sort((a, b) => Number(a.kind !== 'video') - Number(b.kind !== 'video'));
        for (const track of tracks) await session.produce(track);
        // Media first: a peer that receives it over the SFU lets us stop sending it on the link
        // long before the data producers (slow to set up) are there too.
        const mediaIds = session.producerIds();
        if (session.dataWanted) for (const peerId of this.handOver.keys()) this.control(peerId, 'sfu-produced', { p: mediaIds, m: 1 });
        await session.startData();
        // Tell every mesh peer which producers to expect from us before it lets the mesh go.
        const ids = session.producerIds();
        const dataIds = session.dataProducerIds();
        for (const peerId of this.handOver.keys()) this.control(peerId, 'sfu-produced', { p: ids, dp: dataIds });
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
    if (this.failedSfuStarts >= MAX_SFU_START_RESTARTS || !this.reconnectPolicy || this.state !== ConnectionState.Connected || this.mode !== 'sfu') return;
    this.failedSfuStarts++;
    this.onSignalingLost('sfu session failed to start');
  }

  private migrateToSfu(info: SfuInfo, rebuild: boolean): void {
    this.handOver.clear();
    for (const [peerId, link] of this.links) {
      if (link.pc.connectionState === 'connected' && link.reliableOpen) {
        this.handOver.set(peerId, newHandOver());
      } else {
        // Nothing flows on a link that is still connecting (a peer who joined just now): no hand-over.
        const participant = this.participantsById.get(peerId);
        if (participant) this.closeLink(participant);
      }
    }
    this.startMigration('sfu', rebuild);
    this.startSfu(info);
  }

  private migrateToMesh(): void {
    this.handOver.clear();
    const selfId = this.localParticipant?.id ?? '';
    for (const participant of this.participants.values()) {
      this.handOver.set(participant.id, newHandOver());
      // Both sides build the link at once; the lower id initiates, so exactly one offers. A link
      // still open from a promotion that turned back may have stopped its media: send it again.
      this.link(participant, { initiator: selfId < participant.id }).resumeMedia();
    }
    this.startMigration('mesh', false);
  }

  private startMigration(to: RoomMode, rebuild: boolean): void {
    this.stopMigration();
    this.monitor = new MigrationMonitor(to, () => this.videoSample());
    if (rebuild) return this.finishMigration();
    this.migrationTimer = setInterval(() => void this.stepMigration(to), 250);
    // Independent of the steps, so a step stuck on a slow getStats() cannot hold the old topology.
    this.migrationDeadline = setTimeout(() => this.forceMigrationEnd(to), this.options.migrationTimeoutMs ?? 30_000);
  }

  private stopMigration(): void {
    if (this.migrationTimer) clearInterval(this.migrationTimer);
    if (this.migrationDeadline) clearTimeout(this.migrationDeadline);
    this.migrationTimer = null;
    this.migrationDeadline = null;
    this.migrationOverdue = false;
  }

  /** One step of the hand-over state machine; runs every 250 ms while migrating. */
  private async stepMigration(to: RoomMode): Promise<void> {
    if (this.migrationBusy) return;
    this.migrationBusy = true;
    try {
      if (to === 'sfu') await this.stepToSfu();
      else await this.stepToMesh();
    } finally {
      this.migrationBusy = false;
    }
  }
  private migrationBusy = false;

  private async stepToSfu(): Promise<void> {
    const sfu = this.sfu;
    if (!sfu) return;
    for (const [peerId, state] of this.handOver) {
      const link = this.links.get(peerId);
      if (!link || link.dead) {
        // The peer closed this link (it had nothing to hand over): nothing to wait for.
        this.handOver.delete(peerId);
        const participant = this.participantsById.get(peerId);
        if (link && participant) this.closeLink(participant);
        continue;
      }
      if (!state.dataReadySent && state.expectedData) {
        const consumed = sfu.consumedFrom(peerId);
        if (state.expectedData.every((id) => consumed.has(id))) {
          state.dataReadySent = true;
          this.control(peerId, 'sfu-data-ready');
        }
      }
      if (!state.readySent && state.expected && (await this.receivingOverSfu(peerId, state.expected))) {
        if (!state.mediaReadySent) {
          state.mediaReadySent = true;
          this.control(peerId, 'sfu-media-ready');
        }
        if (!state.mediaOnly) {
          state.readySent = true;
          this.control(peerId, 'sfu-ready');
        }
      }
      // The peer receives us over the SFU: no more mesh media (saves an encoder per peer while
      // everyone is busy decoding twice), then our last mesh data, then only the SFU. Past the
      // deadline the media is gone already and data is all that counts.
      const peerReceivesUs = state.readyReceived || (this.migrationOverdue && state.dataReadyReceived);
      if (peerReceivesUs && !state.byeSent && (sfu.dataReady || !this.localParticipant?.grants.canPublishData)) {
        state.byeSent = true;
        link.stopMedia();
        this.control(peerId, 'bye');
      }
      const weReceivePeer = state.readySent || (this.migrationOverdue && state.dataReadySent);
      if (weReceivePeer && state.byeSent && state.byeReceived) {
        this.handOver.delete(peerId);
        this.closeLinkLater(peerId);
      }
    }
    if (this.handOver.size === 0) this.finishMigration();
  }

  private async receivingOverSfu(peerId: string, expected: string[]): Promise<boolean> {
    const sfu = this.sfu;
    if (!sfu) return false;
    const consumed = sfu.consumedFrom(peerId);
    if (!expected.every((id) => consumed.has(id))) return false;
    // Media must be flowing (not just negotiated) before the mesh copy goes: audio arriving,
    // video decoding (bytes alone may still be waiting for the first key frame).
    return (await sfu.statsFrom(peerId)).every((consumerStats) => consumerStats.some(isFlowing));
  }

  private async stepToMesh(): Promise<void> {
    const sfu = this.sfu;
    for (const [peerId, state] of this.handOver) {
      const link = this.links.get(peerId);
      if (!link) {
        this.handOver.delete(peerId);
        continue;
      }
      if (!state.readySent && (await this.receivingOverMesh(peerId, link))) {
        state.readySent = true;
        this.control(peerId, 'mesh-ready');
      }
    }
    const everyoneReady = [...this.handOver.values()].every((s) => s.readySent && s.readyReceived);
    if (everyoneReady && sfu && !this.sfuByeSent) {
      // Every peer receives us over the mesh: our last data over the SFU.
      this.sfuByeSent = true;
      if (this.localParticipant?.grants.canPublishData) sfu.send(JSON.stringify({ c: 'sfu-bye' }), true);
    }
    const byesIn = [...this.handOver.keys()].every((peerId) => this.sfuByeFrom.has(peerId) || !sfu?.consumedFrom(peerId).size);
    if (everyoneReady && this.sfuByeSent && byesIn) {
      this.handOver.clear();
      this.finishMigration();
    }
  }

  private async receivingOverMesh(peerId: string, link: PeerLink): Promise<boolean> {
    if (link.pc.connectionState !== 'connected' || !link.reliableOpen) return false;
    // Every media kind we get from this peer over the SFU must also flow over the link.
    const overSfu = ((await this.sfu?.statsFrom(peerId).catch(() => [])) ?? []).flat();
    const kinds = new Set(overSfu.flatMap((stat) => (stat.kind ? [stat.kind] : [])));
    if (kinds.size === 0) return true;
    const flowing = new Set(inboundStats(await link.pc.getStats()).flatMap((stat) => (stat.kind && isFlowing(stat) ? [stat.kind] : [])));
    return [...kinds].every((kind) => flowing.has(kind));
  }

  /**
   * The migration ran out of time: close the old topology anyway (fallback). To the SFU in two
   * steps: first the links' media stops (the hand-over of media is over, its report is made)
   * while data stays on every link whose peer does not receive our data over the SFU yet, or
   * whose data we do not; a second deadline later the rest closes too. A page too starved to
   * decode video in time is usually also late to open its SFU data consumers, and closing the
   * link then loses the data in between.
   */
  private forceMigrationEnd(to: RoomMode): void {
    if (!this.migrationTimer) return;
    if (to === 'sfu' && !this.migrationOverdue) {
      this.migrationOverdue = true;
      for (const peerId of this.handOver.keys()) this.links.get(peerId)?.stopMedia();
      this.reportMigration();
      this.migrationDeadline = setTimeout(() => this.forceMigrationEnd(to), this.options.migrationTimeoutMs ?? 30_000);
      return;
    }
    if (to === 'sfu') {
      // Our last data on each link, so a peer still listening there knows nothing more comes.
      for (const [peerId, state] of this.handOver) {
        if (!state.byeSent) this.control(peerId, 'bye');
        this.closeLinkLater(peerId);
      }
    } else {
      this.sfuByeSent = true;
    }
    this.handOver.clear();
    this.finishMigration();
  }

  private finishMigration(): void {
    this.stopMigration();
    // Leaving the SFU: close it after a grace so in-flight data on it arrives.
    if (this.mode === 'mesh' && this.sfu) {
      const session = this.sfu;
      this.sfu = null;
      setTimeout(() => session.close(), 300);
    }
    this.reportMigration();
  }

  /** Ends the migration's measurement: its report goes to lastMigration and to the server. */
  private reportMigration(): void {
    const monitor = this.monitor;
    this.monitor = null;
    if (!monitor) return;
    void monitor.finish().then((report) => {
      this.lastMigration = report;
      void this.signal?.request('stats', { links: [], migration: { to: report.to, duration_ms: report.durationMs, media_gap_ms: report.mediaGapMs } }).catch(() => undefined);
    });
  }

  /** Closes a mesh link after a short grace, so its last in-flight data arrives. */
  private closeLinkLater(peerId: string): void {
    setTimeout(() => {
      if (this.mode !== 'sfu') return;
      const participant = this.participantsById.get(peerId);
      if (participant) this.closeLink(participant);
    }, 300);
  }

  private onSignalingLost(reason: string): void {
    this.signal?.close();
    this.signal = null;
    this.stopMigration();
    this.handOver.clear();
    this.sfu?.close();
    this.sfu = null;
    for (const participant of this.participants.values()) this.closeLink(participant);
    if (this.terminalError || !this.reconnectPolicy) {
      if (this.terminalError && !this.terminalError.reported) this.emit(RoomEvent.Error, this.terminalError.error);
      this.teardown();
      this.setState(ConnectionState.Disconnected);
      return;
    }
    this.setState(ConnectionState.Reconnecting);
    void this.reconnect(reason);
  }

  private async reconnect(reason: string): Promise<void> {
    const started = Date.now();
    for (let retryCount = 0; ; retryCount++) {
      const delay = this.reconnectPolicy?.nextRetryDelayInMs({ retryCount, elapsedMs: Date.now() - started, reason }) ?? null;
      if (delay === null) break;
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (this.leaving) return;
      try {
        if (this.options.tokenRefresher) this.token = await this.options.tokenRefresher();
        await this.establish();
        this.setState(ConnectionState.Connected);
        return;
      } catch (error) {
        const wrapped = SwitchboardError.from(error);
        if (TERMINAL_CODES.has(wrapped.code)) {
          this.emit(RoomEvent.Error, wrapped);
          break;
        }
      }
    }
    this.teardown();
    this.setState(ConnectionState.Disconnected);
  }

  private teardown(): void {
    this.stopStats();
    if (this.syncTimer) clearInterval(this.syncTimer);
    this.syncTimer = null;
    this.pendingSyncs.clear();
    this.stopMigration();
    this.sfu?.close();
    this.sfu = null;
    this.signal?.close();
    this.signal = null;
    for (const participant of [...this.participants.values()]) this.closeLink(participant);
  }

  private startSyncChecks(): void {
    this.syncTimer = setInterval(() => this.checkSyncs(), SYNC_CHECK_MS);
    (this.syncTimer as { unref?: () => void }).unref?.();
  }

  private startStats(): void {
    const interval = this.options.statsIntervalMs ?? 10_000;
    if (interval <= 0) return;
    this.statsTimer = setInterval(() => void this.reportStats(), interval);
    (this.statsTimer as { unref?: () => void }).unref?.();
  }

  private stopStats(): void {
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.statsTimer = null;
  }

  /** Sends the periodic quality summary (RTT, loss, bitrates, candidate type per link). */
  private async reportStats(): Promise<void> {
    if (this.state !== ConnectionState.Connected || !this.signal) return;
    const now = Date.now();
    const links: LinkQuality[] = [];
    for (const [peerId, link] of this.links) {
      try {
        const { quality, sample } = summarizeLink(peerId, await link.pc.getStats(), this.qualitySamples.get(peerId), now);
        this.qualitySamples.set(peerId, sample);
        links.push(quality);
      } catch {
        // A link closing meanwhile has no stats.
      }
    }
    for (const peerId of this.qualitySamples.keys()) if (!this.links.has(peerId)) this.qualitySamples.delete(peerId);
    await this.signal?.request('stats', { links }).catch(() => undefined);
  }
}

