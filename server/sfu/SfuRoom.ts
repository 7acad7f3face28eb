import type { types as ms } from 'mediasoup';
import type {
  ActiveSpeaker,
  ClientEventPayload,
  SfuConsumerInfo,
  SfuDataConsumerInfo,
  SfuInfo,
  SfuProducerInfo,
  SfuTransportInfo,
  TrackSource,
} from '../../protocol/events.js';
import type { Config } from '../../config/index.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { TypedEmitter } from '../TypedEmitter.js';
import type { PoolWorker } from './WorkerPool.js';

type Slot = 'transports' | 'producers' | 'consumers';

/** What one peer owns on the router. Every id a peer sends is looked up here, so nobody can touch another peer's objects. */
class SfuPeer {
  readonly transports = new Map<string, ms.WebRtcTransport>();
  readonly producers = new Map<string, ms.Producer>();
  readonly dataProducers = new Map<string, ms.DataProducer>();
  readonly consumers = new Map<string, ms.Consumer>();
  /** How this peer shows each of its video consumers (adaptive stream), by consumer id. */
  readonly views = new Map<string, ConsumerView>();
  readonly dataConsumers = new Map<string, ms.DataConsumer>();
  /** Connects and producer creations by what identifies them (see once()). */
  private readonly requests = new Map<string, Promise<unknown>>();
  /** Creations still awaiting mediasoup, per limit: they count against it like live objects. */
  private readonly pending: Record<Slot, number> = { transports: 0, producers: 0, consumers: 0 };

  constructor(
    readonly id: string,
    readonly announced: boolean,
  ) {}

  private held(slot: Slot): number {
    if (slot === 'transports') return this.transports.size;
    if (slot === 'producers') return this.producers.size + this.dataProducers.size;
    return this.consumers.size + this.dataConsumers.size;
  }

  /**
   * Runs `create` holding one slot of a per-peer limit. The slot is taken before the first
   * await, so requests sent together without waiting for acks cannot pass the limit together.
   */
  async withSlot<T>(slot: Slot, limit: number, create: () => Promise<T>): Promise<T> {
    if (this.held(slot) + this.pending[slot] >= limit) throw new AppError('quota_exceeded', `at most ${limit} ${slot} per peer`);
    this.pending[slot]++;
    try {
      return await create();
    } finally {
      this.pending[slot]--;
    }
  }

  /**
   * Runs `create` once per key: a client whose answer came later than its request timeout asks
   * again, and gets the first request's result (or waits for it) instead of a second producer
   * or a refused second connect. A failure is forgotten, so it can be asked again; `forget`
   * drops a key whose object is gone.
   */
  once<T>(key: string, create: () => Promise<T>): Promise<T> {
    const known = this.requests.get(key);
    if (known) return known as Promise<T>;
    const result = create();
    this.requests.set(key, result);
    result.catch(() => this.requests.delete(key));
    return result;
  }

  forget(key: string): void {
    this.requests.delete(key);
  }

  transport(id: string): ms.WebRtcTransport {
    const transport = this.transports.get(id);
    if (!transport) throw new AppError('not_found', 'no such transport of yours');
    return transport;
  }

  close(): void {
    for (const transport of this.transports.values()) transport.close();
  }
}

/** A subscriber's view of one consumer: whether it asked for media yet (sfu:resume) and what it last said of its size. */
interface ConsumerView {
  /** The client resumed the consumer (its track is ready): media may flow whenever it is visible. */
  resumed: boolean;
  /** Null until the client reports preferences (sfu:consumer_preferences): shown in full until then. */
  preferences: ConsumerPreferences | null;
}

/** What a subscriber reports of a video consumer: the largest size it renders it at, and whether it is visible. */
export interface ConsumerPreferences {
  visible: boolean;
  width: number;
  height: number;
}

/** A video size in pixels. */
export interface VideoSize {
  width: number;
  height: number;
}

/** A consumer as tests and diagnostics read it. */
export interface ConsumerState {
  id: string;
  type: ms.ConsumerType;
  paused: boolean;
  priority: number;
  currentLayers: ms.ConsumerLayers | undefined;
  preferredLayers: ms.ConsumerLayers | undefined;
}

/**
 * The simulcast layer a subscriber needs for a rendered size: the lowest whose resolution
 * covers what the element shows of the source (object-fit contain: the tighter of the two
 * dimensions), with 10% slack so that a 640-pixel tile does not take the 1280 layer for a
 * 660-pixel source. Encodings are ordered lowest first (mediasoup's spatial layer order); a
 * missing scaleResolutionDownBy is read as the browser's default (halving per layer below the top).
 */
export function spatialLayerFor(encodings: ms.RtpEncodingParameters[], source: VideoSize | undefined, rendered: VideoSize): number {
  const top = encodings.length - 1;
  if (top <= 0 || !source || source.width <= 0 || source.height <= 0) return Math.max(top, 0);
  const needed = Math.min(rendered.width / source.width, rendered.height / source.height, 1);
  for (let layer = 0; layer < top; layer++) {
    const scale = encodings[layer]?.scaleResolutionDownBy ?? 2 ** (top - layer);
    if (1 / scale >= needed * 0.9) return layer;
  }
  return top;
}

/** SFU transports per tenant on this node, so one tenant cannot take every port. */
export class TenantTransportBudget {
  private readonly used = new Map<string, number>();

  constructor(private readonly limit: number) {}

  /** Takes one transport of the tenant's budget, or throws quota_exceeded. */
  take(tenantId: string): void {
    const used = this.used.get(tenantId) ?? 0;
    if (used >= this.limit) throw new AppError('quota_exceeded', `at most ${this.limit} SFU transports per tenant`);
    this.used.set(tenantId, used + 1);
  }

  release(tenantId: string): void {
    const used = (this.used.get(tenantId) ?? 0) - 1;
    if (used > 0) this.used.set(tenantId, used);
    else this.used.delete(tenantId);
  }

  usedBy(tenantId: string): number {
    return this.used.get(tenantId) ?? 0;
  }
}

/** A mediasoup call on a consumer that may close meanwhile (its transport or producer went): that is not_found, not internal. */
async function withConsumer(call: () => Promise<void>): Promise<void> {
  try {
    await call();
  } catch (error) {
    if (error instanceof Error && error.name === 'InvalidStateError') throw new AppError('not_found', 'that consumer was closed');
    throw error;
  }
}

/** mediasoup's error when the port range has no free port (PortManager). */
const NO_FREE_PORT = /no more available ports/i;

/**
 * A mediasoup call on parameters a client sent (past our schema checks): mediasoup refusing
 * them (unsupported codec, an SSRC already in use, ...) is the client's error, answered
 * payload_invalid and not logged as a server failure.
 */
async function withClientParameters<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof AppError || !(error instanceof Error)) throw error;
    // A transport closed between the lookup and the call (peer left, router gone).
    if (error.name === 'InvalidStateError') throw new AppError('not_found', 'that SFU transport was closed');
    throw new AppError('payload_invalid', `the SFU refused these parameters: ${error.message.slice(0, 200)}`);
  }
}

/** The RTP capabilities a client sends with sfu:consume, as its schema bounds them. */
export type ClientRtpCapabilities = ClientEventPayload<'sfu:consume'>['rtp_capabilities'];

/** Why a client's transport carries no media: its ICE/DTLS state when the wait ended. */
export interface TransportFailure {
  peerId: string;
  direction: string;
  iceState: string;
  dtlsState: string;
}

export type SfuRoomEvents = {
  producer_added: [producer: SfuProducerInfo];
  /** A transport the client connected did not reach DTLS connected in time (or failed). */
  transport_failed: [failure: TransportFailure];
  producer_removed: [producer: SfuProducerInfo];
  /** mediasoup dropped a data message for a consumer whose SCTP send buffer was full. */
  data_dropped: [];
  /** The speaking peers changed (loudest first; empty: silence). */
  active_speakers: [speakers: ActiveSpeaker[]];
};

/**
 * Active speaker detection: a microphone whose average level over the last interval is at or
 * above SPEAKING_THRESHOLD_DBOV speaks (-50 dBov: digital silence is -127, a quiet voice about
 * -40). The SDK's mesh detection uses the same threshold (client-sdk/src/ActiveSpeakers.ts).
 */
export const SPEAKING_THRESHOLD_DBOV = -50;
/** How often the router's audio level observer reports (mediasoup's minimum is 250 ms). */
export const SPEAKER_INTERVAL_MS = 400;

/** Codecs the routers offer: Opus, VP8, VP9 and H.264 (constrained baseline). */
export const MEDIA_CODECS: ms.RtpCodecCapability[] = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000, parameters: { 'x-google-start-bitrate': 600 } },
  { kind: 'video', mimeType: 'video/VP9', clockRate: 90000, parameters: { 'profile-id': 2 } },
  {
    kind: 'video',
    mimeType: 'video/H264',
    clockRate: 90000,
    parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 },
  },
];

/**
 * One room's router and everything its peers created on it. Ownership: the room creates
 * peers' transports; transports own producers and consumers; closing a peer closes its
 * transports and with them everything else (mediasoup cascades).
 */
export class SfuRoom extends TypedEmitter<SfuRoomEvents> {
  private readonly peers = new Map<string, SfuPeer>();
  /** The captured size of each video producer that said it (sfu:produce video_size): its top layer's size. */
  private readonly producerSizes = new Map<string, VideoSize>();
  /** Media producers asked for and not created yet (awaiting mediasoup): quotas count them like live ones. */
  private readonly creating = new Set<SfuProducerInfo>();
  private closedFlag = false;
  private readonly logger: Logger;
  private speakerObserver: ms.AudioLevelObserver | null = null;
  /** The speakers last announced, loudest first. */
  private speakers: ActiveSpeaker[] = [];

  constructor(
    readonly key: string,
    readonly tenantId: string,
    readonly router: ms.Router,
    readonly worker: PoolWorker,
    private readonly config: Config['sfu'],
    private readonly tenantTransports: TenantTransportBudget,
    logger: Logger,
  ) {
    super(logger);
    this.logger = logger.child({ module: 'sfu', room: key });
    router.on('workerclose', () => this.close());
  }

  get closed(): boolean {
    return this.closedFlag || this.router.closed;
  }

  /** Starts active speaker detection: an audio level observer on the router, fed every microphone producer. */
  async observeSpeakers(): Promise<void> {
    const observer = await this.router.createAudioLevelObserver({
      maxEntries: 32,
      threshold: SPEAKING_THRESHOLD_DBOV,
      interval: SPEAKER_INTERVAL_MS,
    });
    this.speakerObserver = observer;
    observer.on('volumes', (volumes) =>
      this.reportSpeakers(volumes.map(({ producer, volume }) => ({ peerId: String(producer.appData.peerId), volume }))),
    );
    observer.on('silence', () => this.reportSpeakers([]));
  }

  /** The speakers (one entry per peer, its loudest producer), announced only when who speaks or the order changed. */
  private reportSpeakers(volumes: Array<{ peerId: string; volume: number }>): void {
    if (this.closed) return;
    const speakers: ActiveSpeaker[] = [];
    for (const { peerId, volume } of volumes) {
      if (speakers.some((speaker) => speaker.peer_id === peerId) || !this.peers.get(peerId)?.announced) continue;
      speakers.push({ peer_id: peerId, level: Math.round(10 ** (volume / 20) * 1000) / 1000 });
    }
    const same = speakers.length === this.speakers.length && speakers.every((speaker, i) => speaker.peer_id === this.speakers[i]?.peer_id);
    this.speakers = speakers;
    if (!same) this.emit('active_speakers', speakers);
  }

  get rtpCapabilities(): ms.RtpCapabilities {
    return this.router.rtpCapabilities;
  }

  /** Every producer on the router of announced peers, for a peer that starts consuming. */
  producers(exceptPeerId?: string): SfuProducerInfo[] {
    const list: SfuProducerInfo[] = [];
    for (const peer of this.peers.values()) {
      if (peer.id === exceptPeerId || !peer.announced) continue;
      for (const producer of peer.producers.values()) list.push(producerInfo(peer.id, producer));
      for (const dataProducer of peer.dataProducers.values()) list.push({ peer_id: peer.id, producer_id: dataProducer.id, kind: 'data' });
    }
    return list;
  }

  /**
   * Every media producer on the router, of every peer (hidden ones too), and those being
   * created: what a quota on them (max_screen_shares) counts, so that two requests sent at once
   * cannot both pass it while mediasoup creates the first.
   */
  mediaProducers(): SfuProducerInfo[] {
    const list = [...this.creating];
    for (const peer of this.peers.values()) for (const producer of peer.producers.values()) list.push(producerInfo(peer.id, producer));
    return list;
  }

  /** What a client needs to use this router: its capabilities and the producers of every other peer. */
  info(exceptPeerId?: string): SfuInfo {
    return {
      router_rtp_capabilities: this.rtpCapabilities,
      producers: this.producers(exceptPeerId),
      active_speakers: this.speakers,
      sctp_send_buffer_bytes: this.config.sctpSendBufferBytes,
    };
  }

  /** Whether a peer's media producer is paused (admin mute), or undefined if it has no such producer. */
  producerPaused(peerId: string, producerId: string): boolean | undefined {
    return this.peers.get(peerId)?.producers.get(producerId)?.paused;
  }

  /** Number of transports a peer holds (tests and limits). */
  transportCount(peerId: string): number {
    return this.peers.get(peerId)?.transports.size ?? 0;
  }

  /** Every transport's ICE state and selected tuple (which port and protocol its media uses), for tests and diagnostics. */
  transportPaths(): Array<{ peerId: string; direction: string; iceState: string; tuple: ms.TransportTuple | undefined }> {
    return [...this.peers.values()].flatMap((peer) =>
      [...peer.transports.values()].map((transport) => ({
        peerId: peer.id,
        direction: String((transport.appData as { direction?: string }).direction ?? ''),
        iceState: transport.iceState,
        tuple: transport.iceSelectedTuple,
      })),
    );
  }

  async createTransport(peerId: string, announced: boolean, direction: 'send' | 'recv'): Promise<SfuTransportInfo> {
    const peer = this.peer(peerId, announced);
    return peer.withSlot('transports', this.config.maxTransportsPerPeer, async () => {
      this.tenantTransports.take(this.tenantId);
      let transport: ms.WebRtcTransport;
      try {
        transport = await this.newTransport(peerId, direction);
      } catch (error) {
        this.tenantTransports.release(this.tenantId);
        throw error;
      }
      transport.observer.once('close', () => this.tenantTransports.release(this.tenantId));
      if (this.closed || !this.peers.has(peerId)) {
        transport.close();
        throw new AppError('not_in_room', 'left the SFU while creating a transport');
      }
      if (direction === 'send') await transport.setMaxIncomingBitrate(this.config.maxIncomingBitrate);
      peer.transports.set(transport.id, transport);
      transport.observer.on('close', () => {
        peer.transports.delete(transport.id);
        peer.forget(`connect:${transport.id}`);
      });
      return {
        id: transport.id,
        iceParameters: transport.iceParameters,
        iceCandidates: transport.iceCandidates,
        dtlsParameters: transport.dtlsParameters,
        sctpParameters: transport.sctpParameters,
      };
    });
  }

  private async newTransport(peerId: string, direction: 'send' | 'recv'): Promise<ms.WebRtcTransport> {
    try {
      const { webRtcServer } = this.worker;
      return await this.router.createWebRtcTransport({
        // Single-port media: the worker's WebRtcServer (SFU_PORT + index); range mode: a port of its own.
        ...(webRtcServer
          ? { webRtcServer }
          : { listenIps: [{ ip: this.config.listenIp, ...(this.config.announcedIp ? { announcedIp: this.config.announcedIp } : {}) }] }),
        // TCP for clients whose networks block UDP; UDP first for everyone else.
        enableUdp: true,
        enableTcp: true,
        preferUdp: true,
        enableSctp: true,
        numSctpStreams: { OS: 1024, MIS: 1024 },
        // mediasoup drops data messages once this fills, and usrsctp accounts ~2 KB per small
        // message: the 256 KiB default holds about a second of a busy room's chat for a receiver
        // that falls behind.
        sctpSendBufferSize: this.config.sctpSendBufferBytes,
        initialAvailableOutgoingBitrate: 1_000_000,
        appData: { peerId, direction },
      });
    } catch (error) {
      if (error instanceof Error && NO_FREE_PORT.test(error.message)) {
        this.logger.warn({ peer: peerId }, 'no free SFU port (SFU_MIN_PORT..SFU_MAX_PORT is exhausted)');
        throw new AppError('unavailable', 'no free SFU port; try again later');
      }
      throw error;
    }
  }

  /** Idempotent: a repeated connect of the same transport answers like the first. */
  async connectTransport(peerId: string, transportId: string, dtlsParameters: ms.DtlsParameters): Promise<void> {
    const peer = this.existingPeer(peerId);
    const transport = peer.transport(transportId);
    await peer.once(`connect:${transportId}`, async () => {
      await withClientParameters(() => transport.connect({ dtlsParameters }));
      this.watchConnection(peerId, transport);
    });
  }

  /**
   * A participant must not sit in an SFU room without media and nobody knowing: a transport
   * whose DTLS has not connected within the timeout after the client's connect (or failed) is
   * reported once (the server logs it and tells the client).
   */
  private watchConnection(peerId: string, transport: ms.WebRtcTransport): void {
    const direction = String((transport.appData as { direction?: string }).direction ?? '');
    let reported = false;
    const report = () => {
      if (reported || transport.closed) return;
      reported = true;
      this.emit('transport_failed', { peerId, direction, iceState: transport.iceState, dtlsState: transport.dtlsState });
    };
    const timer = setTimeout(() => {
      if (transport.dtlsState !== 'connected') report();
    }, this.config.transportConnectTimeoutMs);
    timer.unref();
    transport.on('dtlsstatechange', (state) => {
      if (state === 'failed') report();
      if (state === 'connected' || state === 'failed' || state === 'closed') clearTimeout(timer);
    });
    transport.observer.once('close', () => clearTimeout(timer));
  }

  /**
   * A producer for a peer; `paused` while a room admin has that kind muted. `mayCreate` (a
   * quota check) runs when a new producer is to be created, not for a repeated request that
   * the first one's producer answers.
   */
  async produce(
    peerId: string,
    transportId: string,
    kind: ms.MediaKind,
    rtpParameters: ms.RtpParameters,
    appData: Record<string, unknown>,
    paused = false,
    videoSize?: VideoSize,
    mayCreate?: () => void,
  ): Promise<string> {
    const peer = this.existingPeer(peerId);
    // One producer per m-section of the client's transport: asked again, the same one answers.
    const key = `produce:${transportId}:${rtpParameters.mid ?? Math.random()}`;
    return peer.once(key, async () => {
      mayCreate?.();
      const creating = { ...sourceOf(appData), peer_id: peerId, producer_id: '', kind };
      this.creating.add(creating);
      try {
        const producerId = await this.createProducer(peer, key, transportId, kind, rtpParameters, appData, paused);
        if (kind === 'video' && videoSize && peer.producers.has(producerId)) this.producerSizes.set(producerId, videoSize);
        return producerId;
      } finally {
        this.creating.delete(creating);
      }
    });
  }

  private async createProducer(
    peer: SfuPeer,
    key: string,
    transportId: string,
    kind: ms.MediaKind,
    rtpParameters: ms.RtpParameters,
    appData: Record<string, unknown>,
    paused: boolean,
  ): Promise<string> {
    const peerId = peer.id;
    const transport = peer.transport(transportId);
    const producer = await peer.withSlot('producers', this.config.maxProducersPerPeer, () =>
      withClientParameters(() =>
        transport.produce({
          kind,
          rtpParameters,
          paused,
          appData: { ...appData, peerId },
          ...(kind === 'video' ? { keyFrameRequestDelay: this.config.keyFrameRequestDelayMs } : {}),
        }),
      ),
    );
    peer.producers.set(producer.id, producer);
    const info = producerInfo(peerId, producer);
    producer.observer.on('close', () => {
      peer.forget(key);
      peer.producers.delete(producer.id);
      this.producerSizes.delete(producer.id);
      if (peer.announced && !this.closed) this.emit('producer_removed', info);
    });
    if (peer.announced) this.emit('producer_added', info);
    if (kind === 'audio' && info.source !== 'screen_audio' && peer.announced)
      this.speakerObserver?.addProducer({ producerId: producer.id }).catch(() => undefined);
    return producer.id;
  }

  /** Pauses (admin mute) or resumes a peer's producers of one kind. */
  async setMuted(peerId: string, kind: ms.MediaKind, muted: boolean): Promise<void> {
    const peer = this.peers.get(peerId);
    if (!peer) return;
    for (const producer of peer.producers.values()) {
      if (producer.kind !== kind || producer.closed) continue;
      if (muted) await producer.pause();
      else await producer.resume();
    }
  }

  async produceData(
    peerId: string,
    transportId: string,
    sctpStreamParameters: ms.SctpStreamParameters,
    label: string,
    protocol: string,
  ): Promise<string> {
    const peer = this.existingPeer(peerId);
    // One data producer per SCTP stream of the client's transport: asked again, the same one answers.
    const key = `produce_data:${transportId}:${sctpStreamParameters.streamId}`;
    return peer.once(key, () => this.createDataProducer(peer, key, transportId, sctpStreamParameters, label, protocol));
  }

  private async createDataProducer(
    peer: SfuPeer,
    key: string,
    transportId: string,
    sctpStreamParameters: ms.SctpStreamParameters,
    label: string,
    protocol: string,
  ): Promise<string> {
    const peerId = peer.id;
    const transport = peer.transport(transportId);
    const dataProducer = await peer.withSlot('producers', this.config.maxProducersPerPeer, () =>
      withClientParameters(() => transport.produceData({ sctpStreamParameters, label, protocol, appData: { peerId } })),
    );
    peer.dataProducers.set(dataProducer.id, dataProducer);
    const info: SfuProducerInfo = { peer_id: peerId, producer_id: dataProducer.id, kind: 'data' };
    dataProducer.observer.on('close', () => {
      peer.forget(key);
      peer.dataProducers.delete(dataProducer.id);
      if (peer.announced && !this.closed) this.emit('producer_removed', info);
    });
    if (peer.announced) this.emit('producer_added', info);
    return dataProducer.id;
  }

  /**
   * A consumer of one producer of this room. One per producer and transport: asked again
   * (a client retrying after its request timeout), the same consumer answers.
   */
  async consume(peerId: string, transportId: string, producerId: string, rtpCapabilities: ClientRtpCapabilities): Promise<SfuConsumerInfo> {
    const peer = this.existingPeer(peerId);
    const transport = peer.transport(transportId);
    if (!this.hasProducer(producerId, 'media')) throw new AppError('not_found', 'no such producer in this room');
    if (!this.canConsume(producerId, rtpCapabilities))
      throw new AppError('payload_invalid', 'cannot consume that producer with these capabilities');
    const key = `consume:${transportId}:${producerId}`;
    return peer.once(key, () =>
      peer.withSlot('consumers', this.config.maxConsumersPerPeer, async () => {
        // Paused until the client has its consumer ready (then sfu:resume), so no keyframe is lost.
        const consumer = await withClientParameters(() => transport.consume({ producerId, rtpCapabilities, paused: true }));
        peer.consumers.set(consumer.id, consumer);
        peer.views.set(consumer.id, { resumed: false, preferences: null });
        consumer.observer.on('close', () => {
          peer.forget(key);
          peer.consumers.delete(consumer.id);
          peer.views.delete(consumer.id);
        });
        if (consumer.type === 'simulcast')
          consumer.on('layerschange', (layers) =>
            this.logger.debug({ peer: peerId, consumer: consumer.id, layers: layers ?? null }, 'consumer layers changed'),
          );
        return { id: consumer.id, producer_id: producerId, kind: consumer.kind, rtp_parameters: consumer.rtpParameters };
      }),
    );
  }

  /** A consumer of one data producer of this room; one per data producer and transport, like consume(). */
  async consumeData(peerId: string, transportId: string, dataProducerId: string): Promise<SfuDataConsumerInfo> {
    const peer = this.existingPeer(peerId);
    const transport = peer.transport(transportId);
    if (!this.hasProducer(dataProducerId, 'data')) throw new AppError('not_found', 'no such data producer in this room');
    const key = `consume_data:${transportId}:${dataProducerId}`;
    return peer.once(key, () =>
      peer.withSlot('consumers', this.config.maxConsumersPerPeer, async () => {
        const dataConsumer = await withClientParameters(() => transport.consumeData({ dataProducerId }));
        peer.dataConsumers.set(dataConsumer.id, dataConsumer);
        // A slow receiver's buffer overflowed: the SDK's sync asks the sender again for what it lost.
        dataConsumer.on('sctpsendbufferfull', () => this.emit('data_dropped'));
        dataConsumer.observer.on('close', () => {
          peer.forget(key);
          peer.dataConsumers.delete(dataConsumer.id);
        });
        return {
          id: dataConsumer.id,
          data_producer_id: dataProducerId,
          sctp_stream_parameters: dataConsumer.sctpStreamParameters,
          label: dataConsumer.label,
          protocol: dataConsumer.protocol,
        };
      }),
    );
  }

  /** Whether these capabilities can consume the producer; malformed ones cannot. */
  private canConsume(producerId: string, rtpCapabilities: ms.RtpCapabilities): boolean {
    try {
      return this.router.canConsume({ producerId, rtpCapabilities });
    } catch {
      return false;
    }
  }

  /** Whether a live producer of that id belongs to a peer of this room (ids from clients are never trusted). */
  private hasProducer(producerId: string, kind: 'media' | 'data'): boolean {
    for (const peer of this.peers.values()) {
      const producer = kind === 'media' ? peer.producers.get(producerId) : peer.dataProducers.get(producerId);
      if (producer && !producer.closed) return true;
    }
    return false;
  }

  /** The client's consumer is ready: media flows, unless the client said it shows none of it (adaptive stream). */
  async resume(peerId: string, consumerId: string): Promise<void> {
    const peer = this.existingPeer(peerId);
    const consumer = peer.consumers.get(consumerId);
    const view = peer.views.get(consumerId);
    if (!consumer || !view) throw new AppError('not_found', 'no such consumer of yours');
    view.resumed = true;
    if (view.preferences?.visible !== false) await consumer.resume();
  }

  /**
   * Adaptive stream: the subscriber shows this video consumer at most `width` x `height`
   * device pixels, or not at all. Not visible pauses it (nothing is forwarded); visible resumes
   * it (once the client resumed it) with the lowest simulcast layer that covers that size as the
   * preferred one. mediasoup forwards the preferred layer or, when the subscriber's estimated
   * downlink cannot carry it, the best lower one, and shares that downlink among consumers by
   * priority: the larger tile's layer gets the higher priority.
   */
  async setConsumerPreferences(peerId: string, consumerId: string, preferences: ConsumerPreferences): Promise<void> {
    const peer = this.existingPeer(peerId);
    const consumer = peer.consumers.get(consumerId);
    const view = peer.views.get(consumerId);
    if (!consumer || !view) throw new AppError('not_found', 'no such consumer of yours');
    if (consumer.kind !== 'video') throw new AppError('payload_invalid', 'preferences apply to video consumers only');
    const report = { ...preferences };
    view.preferences = report;
    await withConsumer(async () => {
      if (!report.visible) {
        // Whatever consumer.paused says now: a resume (sfu:resume, or an earlier report) may be on its way to the worker.
        await consumer.pause();
        return;
      }
      if (consumer.type === 'simulcast') {
        const producer = this.findProducer(consumer.producerId);
        const encodings = producer?.rtpParameters.encodings ?? [];
        const spatialLayer = spatialLayerFor(encodings, this.producerSizes.get(consumer.producerId), report);
        await consumer.setPreferredLayers({ spatialLayer });
        await consumer.setPriority(spatialLayer + 1);
      }
      // A later report (sent before this one was answered) decides, not this one.
      if (view.preferences === report && view.resumed && consumer.paused) await consumer.resume();
    });
  }

  /** A peer's consumer of a producer, as tests and diagnostics read it. */
  consumerState(peerId: string, producerId: string): ConsumerState | undefined {
    for (const consumer of this.peers.get(peerId)?.consumers.values() ?? []) {
      if (consumer.producerId !== producerId || consumer.closed) continue;
      return {
        id: consumer.id,
        type: consumer.type,
        paused: consumer.paused,
        priority: consumer.priority,
        currentLayers: consumer.currentLayers,
        preferredLayers: consumer.preferredLayers,
      };
    }
    return undefined;
  }

  /** The media producers of a peer with their RTP encodings (one per simulcast layer), for tests and diagnostics. */
  producerEncodings(peerId: string): Array<{ id: string; kind: ms.MediaKind; encodings: ms.RtpEncodingParameters[] }> {
    return [...(this.peers.get(peerId)?.producers.values() ?? [])].map((producer) => ({
      id: producer.id,
      kind: producer.kind,
      encodings: producer.rtpParameters.encodings ?? [],
    }));
  }

  private findProducer(producerId: string): ms.Producer | undefined {
    for (const peer of this.peers.values()) {
      const producer = peer.producers.get(producerId);
      if (producer) return producer;
    }
    return undefined;
  }

  closeProducer(peerId: string, producerId: string): void {
    const peer = this.existingPeer(peerId);
    const producer = peer.producers.get(producerId) ?? peer.dataProducers.get(producerId);
    if (!producer) throw new AppError('not_found', 'no such producer of yours');
    producer.close();
  }

  /** Closes everything a peer has on the router. */
  removePeer(peerId: string): void {
    const peer = this.peers.get(peerId);
    if (!peer) return;
    this.peers.delete(peerId);
    peer.close();
  }

  /** Closes the router (and with it every transport). Idempotent. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.peers.clear();
    if (!this.router.closed) this.router.close();
    this.worker.routers = Math.max(0, this.worker.routers - 1);
    this.logger.debug('router closed');
    this.removeAllListeners();
  }

  private peer(peerId: string, announced: boolean): SfuPeer {
    if (this.closed) throw new AppError('sfu_unavailable', 'the room left the SFU');
    let peer = this.peers.get(peerId);
    if (!peer) {
      peer = new SfuPeer(peerId, announced);
      this.peers.set(peerId, peer);
    }
    return peer;
  }

  private existingPeer(peerId: string): SfuPeer {
    if (this.closed) throw new AppError('sfu_unavailable', 'the room left the SFU');
    const peer = this.peers.get(peerId);
    if (!peer) throw new AppError('not_found', 'create a transport first');
    return peer;
  }
}

/** A media producer as clients learn of it: with the source and track id its app_data carries (the signaling layer checked them). */
function producerInfo(peerId: string, producer: ms.Producer): SfuProducerInfo {
  return { peer_id: peerId, producer_id: producer.id, kind: producer.kind, ...sourceOf(producer.appData) };
}

/** The source and track id a producer's app_data carries, each when present. */
function sourceOf(appData: Record<string, unknown>): Pick<SfuProducerInfo, 'source' | 'track_id'> {
  const { source, track_id } = appData as { source?: TrackSource; track_id?: string };
  return { ...(source !== undefined ? { source } : {}), ...(track_id !== undefined ? { track_id } : {}) };
}
