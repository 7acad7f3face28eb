import type { Grants, IceServer, JoinResult, LinkQuality, Metadata, PeerInfo, RoomConfigInfo, RoomMode, SignalMessage } from '../protocol/events.js';
import { Emitter } from './Emitter.js';
import { SwitchboardError } from './errors.js';
import { PeerLink } from './PeerLink.js';
import { summarizeLink, type QualitySample } from './quality.js';
import { DefaultReconnectPolicy, type ReconnectPolicy } from './ReconnectPolicy.js';
import { SignalClient } from './SignalClient.js';

/** Room events, as a string enum (LiveKit's style); listener signatures are in RoomEventCallbacks. */
export enum RoomEvent {
  ParticipantJoined = 'participantJoined',
  ParticipantLeft = 'participantLeft',
  ParticipantUpdated = 'participantUpdated',
  TrackSubscribed = 'trackSubscribed',
  TrackUnsubscribed = 'trackUnsubscribed',
  Data = 'data',
  ModeChanged = 'modeChanged',
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

export interface RoomEventCallbacks {
  participantJoined: (participant: RemoteParticipant) => void;
  participantLeft: (participant: RemoteParticipant) => void;
  participantUpdated: (participant: RemoteParticipant) => void;
  trackSubscribed: (track: MediaStreamTrack, participant: RemoteParticipant, stream: MediaStream | undefined) => void;
  trackUnsubscribed: (track: MediaStreamTrack, participant: RemoteParticipant) => void;
  data: (payload: DataPayload, participant: RemoteParticipant, info: DataInfo) => void;
  modeChanged: (mode: RoomMode, reason: string) => void;
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
  ) {}
}

/** This client, as the room sees it. */
export interface LocalParticipant {
  id: string;
  identity: string;
  name: string;
  metadata: Metadata;
  grants: Grants;
}

/** Server codes after which reconnecting cannot help. */
const TERMINAL_CODES = new Set(['token_revoked', 'token_invalid', 'token_expired', 'token_missing', 'forbidden', 'room_not_found', 'room_locked', 'room_full']);

const toBase64 = (bytes: Uint8Array): string => {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
};
const fromBase64 = (text: string): Uint8Array => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/** The envelope every data message travels in: kind, sender epoch and sequence. */
interface Envelope {
  k: 's' | 'j' | 'b';
  /** Sender's random epoch: sequence numbers restart with a new Room instance. */
  e: string;
  q: number;
  d: unknown;
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
  private sendSeq = 0;
  /** Highest reliable sequence seen per sender identity and epoch. */
  private readonly lastSeqBySender = new Map<string, number>();
  private leaving = false;
  private terminalError: SwitchboardError | null = null;
  private statsTimer: ReturnType<typeof setInterval> | null = null;
  /** Room events received while a join is in flight; null once the join is applied. */
  private beforeJoin: Array<() => void> | null = null;
  private readonly qualitySamples = new Map<string, QualitySample>();
  private readonly RTCPeerConnectionImpl: typeof RTCPeerConnection;
  private readonly reconnectPolicy: ReconnectPolicy | null;

  private constructor(
    private readonly url: string,
    private token: string,
    private readonly options: RoomOptions,
  ) {
    super();
    const impl = options.webrtc?.RTCPeerConnection ?? (globalThis as { RTCPeerConnection?: typeof RTCPeerConnection }).RTCPeerConnection;
    if (!impl) throw new SwitchboardError('webrtc_unavailable', 'no RTCPeerConnection: pass options.webrtc (e.g. @roamhq/wrtc in Node)');
    this.RTCPeerConnectionImpl = impl;
    this.reconnectPolicy = options.reconnectPolicy === undefined ? new DefaultReconnectPolicy() : options.reconnectPolicy;
  }

  /** Connects, joins the room named in the token, and connects to every participant. */
  static async connect(url: string, token: string, options: RoomOptions = {}): Promise<Room> {
    const room = new Room(url, token, options);
    await room.establish();
    room.setState(ConnectionState.Connected);
    room.startStats();
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
      this.localTracks.set(track, stream);
      for (const link of this.links.values()) link.addTrack(track, stream);
    }
  }

  /** Stops sending a published track. */
  async unpublish(track: MediaStreamTrack): Promise<void> {
    this.localTracks.delete(track);
    for (const link of this.links.values()) link.removeTrack(track);
  }

  /**
   * Sends data to every participant (or to the given identities). Reliable messages arrive
   * exactly once and in order per sender; lossy ones may be dropped.
   */
  send(payload: DataPayload, options: { reliable?: boolean; to?: string[] } = {}): void {
    this.assertConnected();
    if (!this.localParticipant?.grants.canPublishData) throw new SwitchboardError('forbidden', 'this token does not grant canPublishData');
    const reliable = options.reliable ?? true;
    const envelope: Envelope =
      typeof payload === 'string'
        ? { k: 's', e: this.epoch, q: ++this.sendSeq, d: payload }
        : payload instanceof Uint8Array
          ? { k: 'b', e: this.epoch, q: ++this.sendSeq, d: toBase64(payload) }
          : { k: 'j', e: this.epoch, q: ++this.sendSeq, d: payload };
    const text = JSON.stringify(envelope);
    const targets = options.to ? new Set(options.to) : null;
    for (const participant of this.participants.values()) {
      if (targets && !targets.has(participant.identity)) continue;
      this.links.get(participant.id)?.send(text, reliable);
    }
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
    this.localParticipant = { id: ack.self.id, identity: ack.self.user_id, name: ack.self.name, metadata: ack.self.metadata, grants: ack.self.grants };
    const present = new Set(ack.peers.map((p) => p.user_id));
    for (const participant of [...this.participants.values()]) if (!present.has(participant.identity)) this.removeParticipant(participant);
    // The newcomer is the impolite initiator towards everyone already there.
    for (const info of ack.peers) this.link(this.upsertParticipant(info), { initiator: true });
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
      ordered((info: PeerInfo) => this.link(this.upsertParticipant(info), { initiator: false })),
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
        const participant = this.participantsById.get(info.id);
        if (!participant) return;
        participant.name = info.name;
        participant.metadata = info.metadata;
        this.emit(RoomEvent.ParticipantUpdated, participant);
      }),
    );
    socket.on(
      'signal',
      ordered((message: SignalMessage) => {
        // A hidden peer (a recorder) can negotiate without having been announced.
        const link = this.links.get(message.from) ?? this.link(this.upsertParticipant({ id: message.from, user_id: message.from, name: '', metadata: {} }, false), { initiator: false });
        link.handleSignal(message);
      }),
    );
    socket.on('mode_changed', ({ mode, reason }) => {
      this.mode = mode;
      this.emit(RoomEvent.ModeChanged, mode, reason);
    });
    socket.on('room_updated', ({ config }) => {
      this.config = config;
    });
    socket.on('kicked', ({ reason }) => {
      this.terminalError = new SwitchboardError('forbidden', `kicked: ${reason}`);
    });
    socket.on('room_closed', ({ reason }) => {
      this.terminalError = new SwitchboardError('not_connected', `room closed: ${reason}`);
    });
    socket.on('error', (error) => {
      const wrapped = SwitchboardError.from(error, 'internal');
      if (TERMINAL_CODES.has(wrapped.code)) this.terminalError = wrapped;
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
      participant = new RemoteParticipant(info.id, info.user_id, info.name, info.metadata);
      this.participants.set(info.user_id, participant);
      if (announce) queueMicrotask(() => this.emit(RoomEvent.ParticipantJoined, participant as RemoteParticipant));
    }
    this.participantsById.set(info.id, participant);
    return participant;
  }

  private removeParticipant(participant: RemoteParticipant): void {
    this.closeLink(participant);
    this.participantsById.delete(participant.id);
    if (this.participants.get(participant.identity) === participant) this.participants.delete(participant.identity);
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
        try {
          await this.signal?.request('signal', { to: remoteId, ...signal });
        } catch (error) {
          const wrapped = SwitchboardError.from(error, 'internal');
          // The peer left meanwhile: nothing to tell the app.
          if (wrapped.code !== 'peer_not_found' && wrapped.code !== 'not_connected') this.emit(RoomEvent.Error, wrapped);
        }
      },
      onTrack: (track, stream) => this.onRemoteTrack(participant, track, stream),
      onMessage: (data, reliable) => this.onData(participant, data, reliable),
      onStateChange: () => undefined,
      onError: (error) => this.emit(RoomEvent.Error, SwitchboardError.from(error, 'internal')),
    });
    this.links.set(remoteId, link);
    for (const [track, stream] of this.localTracks) link.addTrack(track, stream);
    return link;
  }

  private closeLink(participant: RemoteParticipant): void {
    const link = this.links.get(participant.id);
    if (!link) return;
    this.links.delete(participant.id);
    link.close();
    for (const track of [...participant.tracks.values()]) {
      participant.tracks.delete(track.id);
      this.emit(RoomEvent.TrackUnsubscribed, track, participant);
    }
  }

  private onRemoteTrack(participant: RemoteParticipant, track: MediaStreamTrack, stream: MediaStream | undefined): void {
    participant.tracks.set(track.id, track);
    stream?.addEventListener?.('removetrack', ({ track: removed }) => {
      if (participant.tracks.delete(removed.id)) this.emit(RoomEvent.TrackUnsubscribed, removed, participant);
    });
    this.emit(RoomEvent.TrackSubscribed, track, participant, stream);
  }

  private onData(participant: RemoteParticipant, text: string, reliable: boolean): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(text) as Envelope;
    } catch {
      return;
    }
    if (typeof envelope.q !== 'number' || typeof envelope.e !== 'string') return;
    if (reliable) {
      const key = `${participant.identity}\u0000${envelope.e}`;
      if ((this.lastSeqBySender.get(key) ?? 0) >= envelope.q) return; // duplicate
      this.lastSeqBySender.set(key, envelope.q);
    }
    const payload = envelope.k === 'b' ? fromBase64(String(envelope.d)) : (envelope.d as DataPayload);
    this.emit(RoomEvent.Data, payload, participant, { reliable, seq: envelope.q });
  }

  private onSignalingLost(reason: string): void {
    this.signal?.close();
    this.signal = null;
    for (const participant of this.participants.values()) this.closeLink(participant);
    if (this.terminalError || !this.reconnectPolicy) {
      if (this.terminalError) this.emit(RoomEvent.Error, this.terminalError);
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
    this.signal?.close();
    this.signal = null;
    for (const participant of [...this.participants.values()]) this.closeLink(participant);
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

