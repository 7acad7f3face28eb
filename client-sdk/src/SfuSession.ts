import type { types as msc } from 'mediasoup-client';
import type { SfuInfo, SfuProducerInfo, TrackSource } from '../../protocol/events.js';
import { TrackView } from './AdaptiveStream.js';
import type { MeasuredConnection } from './quality.js';
import { PendingMessages } from './PendingMessages.js';
import { keepSenderResolution } from './PeerLink.js';
import type { WireMessage } from './DataEnvelope.js';
import { SwitchboardError } from './errors.js';
import { inboundStats, type InboundStat } from './inboundStats.js';
import type { SignalClient } from './SignalClient.js';
import { simulcastEncodings } from './simulcast.js';

type MediasoupClient = typeof import('mediasoup-client');

let loading: Promise<MediasoupClient> | null = null;
/** mediasoup-client is loaded only when a room first goes to the SFU (a separate chunk in the ESM build). */
export function loadMediasoupClient(): Promise<MediasoupClient> {
  // mediasoup-client is CommonJS: bundlers may hand its exports over as `default`.
  loading ??= import('mediasoup-client').then((module) =>
    (module as { Device?: unknown }).Device ? module : (module as unknown as { default: MediasoupClient }).default,
  );
  return loading;
}

export interface SfuSessionOptions {
  signal: SignalClient;
  info: SfuInfo;
  canPublish: boolean;
  canPublishData: boolean;
  canSubscribe: boolean;
  iceServers: RTCIceServer[];
  forceRelay: boolean;
  /** The source of a local track (its producer's appData.source). */
  sourceOf: (track: MediaStreamTrack) => TrackSource;
  /** Send cameras as simulcast layers (simulcast.ts). */
  simulcast: boolean;
  /** Tell the SFU how each remote video is shown (attachTrack's elements), so it sends the layer that fits or nothing (AdaptiveStream.ts). */
  adaptiveStream: boolean;
  /** A remote media track arrived over the SFU. */
  onTrack: (peerId: string, producerId: string, track: MediaStreamTrack) => void;
  /** A remote producer closed (its consumer is gone). */
  onTrackEnded: (peerId: string, producerId: string, track: MediaStreamTrack) => void;
  /** A message from a data consumer: text, or a binary frame. */
  onMessage: (peerId: string, data: WireMessage, reliable: boolean) => void;
  /** Packs reliable messages queued before our data producer opened into fewer messages to send at once. */
  pack: (queued: WireMessage[]) => WireMessage[];
  /** Our reliable data producer is open: queued messages were flushed. */
  onDataReady: () => void;
  /** A reliable data consumer of a remote peer opened: from now on we receive what it sends. */
  onDataConsumerOpen: (peerId: string) => void;
  onError: (error: unknown) => void;
}

interface Consumed {
  peerId: string;
  kind: 'audio' | 'video' | 'data';
  consumer?: msc.Consumer;
  dataConsumer?: msc.DataConsumer;
  /** How the app shows a video consumer's track (adaptive stream). */
  view?: TrackView;
}

/** A failed consume is made again this many times in all, this long apart. */
const CONSUME_ATTEMPTS = 5;
const CONSUME_RETRY_MS = 1000;
/** Errors a second consume would meet again: the producer is gone, or we may not consume it. */
const FINAL_CONSUME_ERRORS = new Set(['forbidden', 'not_found', 'payload_invalid', 'not_in_room', 'sfu_unavailable']);

/**
 * This client's presence on the room's SFU router: a send and a receive transport,
 * producers for local tracks and data (reliable and lossy), and a consumer for every
 * remote producer. Operations that touch SDP run one at a time.
 */
export class SfuSession {
  closed = false;
  private device: msc.Device | null = null;
  private sendTransport: msc.Transport | null = null;
  private recvTransport: msc.Transport | null = null;
  private readonly producers = new Map<MediaStreamTrack, msc.Producer>();
  /** Our reliable data producer once it is open (sending on it reaches every consumer). */
  private reliable: msc.DataProducer | null = null;
  /** Our reliable data producer from its creation on, open or not (its id is announced at once). */
  private reliableProducer: msc.DataProducer | null = null;
  private lossy: msc.DataProducer | null = null;
  /** Reliable messages waiting for the channel to open. */
  private readonly pendingReliable = new PendingMessages();
  /** Remote producers consumed, by producer id. */
  private readonly consumed = new Map<string, Consumed>();
  /** Remote producers that closed (a consume retry must not bring them back). */
  private readonly closedProducers = new Set<string>();
  /** Remote producers announced before the receive transport existed. */
  private readonly backlog: SfuProducerInfo[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  /** Kinds this client muted of its own: their producers are paused, from their creation on. */
  private readonly pausedKinds = new Set<string>();

  constructor(private readonly options: SfuSessionOptions) {}

  /**
   * Loads the device, creates the transports (both at once) and consumes what the router
   * already has. Media comes next (produce()), then the data producers (startData()): after a
   * worker crash media is what users miss first.
   */
  async start(): Promise<void> {
    const mediasoupClient = await loadMediasoupClient();
    const device = new mediasoupClient.Device();
    await device.load({ routerRtpCapabilities: this.options.info.router_rtp_capabilities as msc.RtpCapabilities });
    if (this.closed) return;
    this.device = device;
    const wantsSend = this.options.canPublish || this.options.canPublishData;
    const [sendTransport, recvTransport] = await Promise.all([
      wantsSend ? this.createTransport('send') : null,
      this.createTransport('recv'),
    ]);
    this.sendTransport = sendTransport;
    this.recvTransport = recvTransport;
    if (this.closed) return;
    for (const info of [...this.options.info.producers, ...this.backlog.splice(0)]) this.consume(info);
  }

  /** Creates our lossy and reliable data producers; reliable messages queued until then are flushed on open. */
  async startData(): Promise<void> {
    if (!this.options.canPublishData || !this.sendTransport || this.closed) return;
    this.lossy = await this.sendTransport.produceData({ ordered: false, maxRetransmits: 0, label: 'lossy' });
    const reliable = await this.sendTransport.produceData({ ordered: true, label: 'reliable' });
    this.reliableProducer = reliable;
    const flush = () => {
      this.reliable = reliable;
      for (const data of this.options.pack(this.pendingReliable.take())) reliable.send(data as string | Uint8Array<ArrayBuffer>);
      this.options.onDataReady();
    };
    if (reliable.readyState === 'open') flush();
    else reliable.on('open', flush);
  }

  /** True when this client will create data producers (startData() does something). */
  get dataWanted(): boolean {
    return this.options.canPublishData && this.sendTransport !== null;
  }

  /** True once data sent now reaches every consumer (our reliable producer is open). */
  get dataReady(): boolean {
    return this.reliable !== null;
  }

  /**
   * Producer ids of ours, media and data, announced to mesh peers for the switch-over: a peer
   * confirms it receives us over the SFU only once it consumes every one of them. The reliable
   * data producer counts from its creation, not from its opening: otherwise a peer could confirm
   * before its data consumer exists, and the messages we send on the SFU alone after our `bye`
   * would be lost to it.
   */
  producerIds(): string[] {
    return [...[...this.producers.values()].map((p) => p.id), ...this.dataProducerIds()];
  }

  /** Our data producer ids (reliable and lossy), from their creation on. */
  dataProducerIds(): string[] {
    return [this.reliableProducer, this.lossy].flatMap((p) => (p ? [p.id] : []));
  }

  /**
   * Producer ids of one peer we receive: the consumer exists (a data consumer is open), or
   * the producer is media we may not subscribe to. A consume still in flight does not count:
   * the peer must not retire the mesh before our consumer can receive.
   */
  consumedFrom(peerId: string): Set<string> {
    const ids = new Set<string>();
    for (const [id, c] of this.consumed) {
      if (c.peerId !== peerId) continue;
      const ready = c.kind === 'data' ? c.dataConsumer?.readyState === 'open' : c.consumer !== undefined || !this.options.canSubscribe;
      if (ready) ids.add(id);
    }
    return ids;
  }

  /** Whether a video consumer of one peer is shown by the app (not paused by adaptive stream). */
  showsVideoFrom(peerId: string): boolean {
    for (const c of this.consumed.values()) if (c.peerId === peerId && c.consumer?.kind === 'video' && !c.view?.hidden) return true;
    return false;
  }

  /** Whether we consume video of one peer and the app shows none of it (adaptive stream paused it all). */
  hidesVideoFrom(peerId: string): boolean {
    const videos = [...this.consumed.values()].filter((c) => c.peerId === peerId && c.consumer?.kind === 'video');
    return videos.length > 0 && videos.every((c) => c.view?.hidden);
  }

  /** The kinds we receive from one peer: media with its consumer created, data with its consumer open. */
  receivedKinds(peerId: string): Set<'audio' | 'video' | 'data'> {
    const kinds = new Set<'audio' | 'video' | 'data'>();
    for (const c of this.consumed.values()) {
      if (c.peerId !== peerId) continue;
      if (c.kind === 'data' ? c.dataConsumer?.readyState === 'open' : c.consumer !== undefined) kinds.add(c.kind);
    }
    return kinds;
  }

  /**
   * Inbound stats of every media consumer of one peer: one list per consumer, holding its
   * inbound-rtp entry (empty: nothing received yet). `shownOnly` leaves out the videos the app
   * does not show (adaptive stream paused their consumers: no media of them comes, and a
   * hand-over waiting for it would wait for its deadline). All consumers share one getStats of the
   * receive transport (taken at most every 200 ms): a consumer's own getStats walks the whole
   * peer connection too, and a dozen of them per sample slowed the SDP work of a busy page by
   * seconds during a migration.
   */
  async statsFrom(peerId: string, shownOnly = false): Promise<InboundStat[][]> {
    const consumers = [...this.consumed.values()].flatMap((c) =>
      c.peerId === peerId && c.consumer && !c.consumer.closed && !(shownOnly && c.view?.hidden) ? [c.consumer] : [],
    );
    if (consumers.length === 0 || !this.recvTransport) return [];
    const inbound = inboundStats(await this.recvTransportStats());
    // A browser without trackIdentifier: ask each consumer (each call walks the whole
    // transport, so only then).
    if (inbound.some((stat) => !stat.trackIdentifier))
      return Promise.all(consumers.map(async (consumer) => inboundStats(await consumer.getStats())));
    return consumers.map((consumer) => inbound.filter((stat) => stat.trackIdentifier === consumer.track.id));
  }

  private recvStats: { at: number; report: Promise<RTCStatsReport> } | null = null;

  /**
   * The SFU connection as the quality reporter measures it: the receive transport once
   * connected (the loss and jitter of what we receive), else the send transport; null before either.
   */
  qualityLink(): MeasuredConnection | null {
    if (this.closed) return null;
    const transport = this.recvTransport?.connectionState === 'connected' ? this.recvTransport : this.sendTransport;
    return transport ? { getStats: () => transport.getStats(), connectionState: transport.connectionState } : null;
  }

  private recvTransportStats(): Promise<RTCStatsReport> {
    const now = Date.now();
    if (!this.recvStats || now - this.recvStats.at > 200) {
      const report = (this.recvTransport as msc.Transport).getStats();
      report.catch(() => undefined);
      this.recvStats = { at: now, report };
    }
    return this.recvStats.report;
  }

  async produce(track: MediaStreamTrack): Promise<void> {
    if (!this.sendTransport || !this.options.canPublish || this.producers.has(track) || this.closed) return;
    const source = this.options.sourceOf(track);
    const { appData, ...layers } = this.layers(track);
    const producer = await this.serial(() =>
      (this.sendTransport as msc.Transport).produce({
        track,
        stopTracks: false,
        ...layers,
        appData: { ...appData, source, track_id: track.id },
      }),
    );
    if (source === 'screen') keepSenderResolution(producer.rtpSender);
    this.producers.set(track, producer);
    if (this.pausedKinds.has(track.kind)) this.pause(producer, true);
  }

  /**
   * A camera's simulcast encodings (VP8, up to three layers by its size) and its size, which
   * goes to the SFU with the produce request (it reckons each layer's size from it). Audio,
   * small cameras, tracks hinted `detail` or `text` and simulcast off: one encoding, as
   * mediasoup-client chooses.
   */
  private layers(track: MediaStreamTrack): Partial<msc.ProducerOptions> {
    if (track.kind !== 'video') return {};
    const { width, height } = track.getSettings?.() ?? {};
    const videoSize = width && height ? { width, height } : undefined;
    // A track hinted for detail (a screen share of text) goes in full, as one layer.
    const detail = track.contentHint === 'detail' || track.contentHint === 'text';
    const encodings = this.options.simulcast && videoSize && !detail ? simulcastEncodings(videoSize.width, videoSize.height) : undefined;
    // Simulcast needs VP8 here (the router's first video codec, which mediasoup-client picks anyway).
    const codec = encodings ? this.device?.rtpCapabilities.codecs?.find((c) => c.mimeType.toLowerCase() === 'video/vp8') : undefined;
    return { appData: { videoSize }, ...(encodings ? { encodings } : {}), ...(codec ? { codec } : {}) };
  }

  /**
   * mediasoup-client's pause only disables the track (black frames and silence still flow, and
   * its zeroRtpOnPause renegotiates): the sender is emptied as well, so no RTP leaves at all.
   */
  private pause(producer: msc.Producer, paused: boolean): void {
    if (paused) producer.pause();
    else producer.resume();
    void producer.rtpSender?.replaceTrack(paused ? null : producer.track).catch(() => undefined);
  }

  /**
   * Pauses (or resumes) our producers of `kind`, and those produced later: no RTP leaves for
   * them (the track is disabled too; resume enables it again). No renegotiation.
   */
  setPaused(kind: 'audio' | 'video', paused: boolean): void {
    if (paused) this.pausedKinds.add(kind);
    else this.pausedKinds.delete(kind);
    for (const producer of this.producers.values()) {
      if (producer.kind !== kind || producer.closed) continue;
      if (producer.paused !== paused) this.pause(producer, paused);
    }
  }

  /** Sends `next` on the producer of `previous` (a device switch): same producer, no renegotiation. */
  async replaceTrack(previous: MediaStreamTrack, next: MediaStreamTrack): Promise<void> {
    const producer = this.producers.get(previous);
    if (!producer || producer.closed) return;
    this.producers.delete(previous);
    this.producers.set(next, producer);
    await producer.replaceTrack({ track: next });
    // Sent at once otherwise: a paused producer's sender stays empty.
    if (producer.paused) await producer.rtpSender?.replaceTrack(null);
  }

  async unproduce(track: MediaStreamTrack): Promise<void> {
    const producer = this.producers.get(track);
    if (!producer) return;
    this.producers.delete(track);
    producer.close();
    await this.options.signal.request('sfu:close_producer', { producer_id: producer.id }).catch(() => undefined);
  }

  /** Sends on our data producer (binary frames as binary); reliable messages wait until it is open. */
  send(data: WireMessage, reliable: boolean): void {
    if (this.closed) return;
    const producer = reliable ? this.reliable : this.lossy;
    if (producer && producer.readyState === 'open') producer.send(data as string | Uint8Array<ArrayBuffer>);
    else if (reliable) {
      this.pendingReliable.push(data);
    }
  }

  /** Bytes our open data producer holds that are not on the network yet (bufferedAmount). */
  buffered(reliable: boolean): number {
    const producer = reliable ? this.reliable : this.lossy;
    return producer && producer.readyState === 'open' ? producer.bufferedAmount : 0;
  }

  /** Bytes of reliable messages waiting for our data producer to open. */
  queued(): number {
    return this.pendingReliable.bytes;
  }

  /** Resolves once our data producer's bufferedAmount is at most `low` ('bufferedamountlow'), or it is not open. */
  drained(reliable: boolean, low: number): Promise<void> {
    const producer = reliable ? this.reliable : this.lossy;
    if (!producer || producer.closed || producer.readyState !== 'open' || producer.bufferedAmount <= low) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearInterval(poll);
        producer.off('bufferedamountlow', done);
        producer.off('close', done);
        resolve();
      };
      producer.bufferedAmountLowThreshold = low;
      producer.on('bufferedamountlow', done);
      producer.on('close', done);
      const poll = setInterval(() => {
        if (producer.closed || producer.readyState !== 'open' || producer.bufferedAmount <= low) done();
      }, 10);
    });
  }

  /** A remote producer to consume (from the initial list or sfu:new_producer). */
  consume(info: SfuProducerInfo, attempt = 1): void {
    if (this.closed || this.consumed.has(info.producer_id) || this.closedProducers.has(info.producer_id)) return;
    if (!this.recvTransport) {
      this.backlog.push(info);
      return;
    }
    const entry: Consumed = { peerId: info.peer_id, kind: info.kind };
    this.consumed.set(info.producer_id, entry);
    // Without canSubscribe, media is recorded (so migration does not wait for it) but not consumed.
    if (info.kind !== 'data' && !this.options.canSubscribe) return;
    // Not serialized here: the server requests run in parallel and mediasoup-client queues
    // (and batches) the SDP work of concurrent consume() calls itself.
    void (async () => {
      const transport = this.recvTransport as msc.Transport;
      if (info.kind === 'data') {
        const ack = await this.requestPatiently(() =>
          this.options.signal.request('sfu:consume_data', { transport_id: transport.id, producer_id: info.producer_id }),
        );
        const dataConsumer = await transport.consumeData({
          id: ack.consumer.id,
          dataProducerId: ack.consumer.data_producer_id,
          sctpStreamParameters: ack.consumer.sctp_stream_parameters as msc.SctpStreamParameters,
          label: ack.consumer.label,
          protocol: ack.consumer.protocol,
        });
        entry.dataConsumer = dataConsumer;
        const reliable = ack.consumer.label !== 'lossy';
        dataConsumer.binaryType = 'arraybuffer';
        dataConsumer.on('message', (data: unknown) => {
          if (typeof data === 'string') this.options.onMessage(info.peer_id, data, reliable);
          else if (data instanceof ArrayBuffer) this.options.onMessage(info.peer_id, new Uint8Array(data), reliable);
        });
        if (reliable) {
          if (dataConsumer.readyState === 'open') this.options.onDataConsumerOpen(info.peer_id);
          else dataConsumer.on('open', () => this.options.onDataConsumerOpen(info.peer_id));
        }
        return;
      }
      const ack = await this.requestPatiently(() =>
        this.options.signal.request('sfu:consume', {
          transport_id: transport.id,
          producer_id: info.producer_id,
          rtp_capabilities: (this.device as msc.Device).rtpCapabilities,
        }),
      );
      const consumer = await transport.consume({
        id: ack.consumer.id,
        producerId: ack.consumer.producer_id,
        kind: ack.consumer.kind,
        rtpParameters: ack.consumer.rtp_parameters as msc.RtpParameters,
      });
      entry.consumer = consumer;
      if (consumer.kind === 'video' && this.options.adaptiveStream)
        entry.view = new TrackView(consumer.track, (view) =>
          this.options.signal.request('sfu:consumer_preferences', { consumer_id: consumer.id, ...view }),
        );
      // Subscribed now: the track goes live when the resumed consumer's media arrives. (A resume
      // whose ack is late may already have taken effect on the server.)
      this.options.onTrack(info.peer_id, info.producer_id, consumer.track);
      await this.requestPatiently(() => this.options.signal.request('sfu:resume', { consumer_id: consumer.id }));
    })().catch((error: unknown) => {
      if (this.consumed.get(info.producer_id) !== entry || this.closed) return; // closed meanwhile
      this.consumed.delete(info.producer_id);
      entry.view?.close();
      if (entry.consumer) {
        entry.consumer.close();
        this.options.onTrackEnded(info.peer_id, info.producer_id, entry.consumer.track);
      }
      entry.dataConsumer?.close();
      // A consume that failed on the way (an ack later than the request timeout on a starved
      // page or server) is made again: otherwise this peer's media or data never reaches us.
      const code = error instanceof SwitchboardError ? error.code : 'internal';
      if (attempt < CONSUME_ATTEMPTS && !FINAL_CONSUME_ERRORS.has(code)) {
        setTimeout(() => this.consume(info, attempt + 1), CONSUME_RETRY_MS);
        return;
      }
      this.options.onError(error);
    });
  }

  /** A remote producer closed. */
  producerClosed(info: SfuProducerInfo): void {
    this.closedProducers.add(info.producer_id);
    const entry = this.consumed.get(info.producer_id);
    if (!entry) return;
    this.consumed.delete(info.producer_id);
    entry.dataConsumer?.close();
    entry.view?.close();
    if (entry.consumer) {
      entry.consumer.close();
      this.options.onTrackEnded(entry.peerId, info.producer_id, entry.consumer.track);
    }
  }

  /** Closes transports (and with them producers and consumers); reports ended tracks. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [producerId, entry] of this.consumed) {
      entry.view?.close();
      if (entry.consumer) this.options.onTrackEnded(entry.peerId, producerId, entry.consumer.track);
    }
    this.consumed.clear();
    this.sendTransport?.close();
    this.recvTransport?.close();
  }

  /**
   * A request the server did not answer in time (a starved server or page, a lost ack) is
   * asked again: a consumer left paused would keep a participant black for good, a producer
   * never created would keep us out of everyone's SFU view. Resuming twice is harmless, connect
   * and produce are idempotent on the server; a consume asked twice may leave one extra paused
   * consumer, closed with the transport.
   */
  private async requestPatiently<T>(request: () => Promise<T>, attempts = 3): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await request();
      } catch (error) {
        if (this.closed || attempt >= attempts || !(error instanceof SwitchboardError) || error.code !== 'timeout') throw error;
      }
    }
  }

  private serial<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.queue.then(operation, operation);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async createTransport(direction: 'send' | 'recv'): Promise<msc.Transport> {
    const { signal } = this.options;
    // Asked again when the answer is late: a transport the first request may have created is
    // left unused on the router (it counts towards the per-peer limit, and closes with the router).
    const { transport: info } = await this.requestPatiently(() => signal.request('sfu:create_transport', { direction }));
    const device = this.device as msc.Device;
    const options = {
      id: info.id,
      iceParameters: info.iceParameters as msc.IceParameters,
      iceCandidates: info.iceCandidates as msc.IceCandidate[],
      dtlsParameters: info.dtlsParameters as msc.DtlsParameters,
      sctpParameters: info.sctpParameters as msc.SctpParameters | undefined,
      iceServers: this.options.iceServers,
      iceTransportPolicy: this.options.forceRelay ? ('relay' as const) : ('all' as const),
    };
    const transport = direction === 'send' ? device.createSendTransport(options) : device.createRecvTransport(options);
    transport.on('connectionstatechange', (state) => {
      if (state === 'failed' && !this.closed)
        this.options.onError(
          new SwitchboardError('media_failed', `the SFU ${direction} transport failed to connect (ICE/DTLS): no media over the SFU`),
        );
    });
    // The server answers a repeated connect, produce or produce_data like the first (the same
    // producer), so a late answer is asked for again instead of breaking the session for good.
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      this.requestPatiently(() =>
        signal.request('sfu:connect_transport', { transport_id: transport.id, dtls_parameters: dtlsParameters }),
      ).then(() => callback(), errback);
    });
    if (direction === 'send') {
      transport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
        const { videoSize, source, track_id } = appData as {
          videoSize?: { width: number; height: number };
          source: TrackSource;
          track_id: string;
        };
        this.requestPatiently(() =>
          signal.request('sfu:produce', {
            transport_id: transport.id,
            kind,
            rtp_parameters: rtpParameters,
            app_data: { source, track_id },
            ...(videoSize ? { video_size: videoSize } : {}),
          }),
        ).then(({ producer_id }) => callback({ id: producer_id }), errback);
      });
      transport.on('producedata', ({ sctpStreamParameters, label, protocol }, callback, errback) => {
        // mediasoup-client always assigns the stream id of a data channel it opens.
        const { streamId } = sctpStreamParameters;
        if (streamId === undefined) {
          errback(new Error('the data producer has no SCTP stream id'));
          return;
        }
        const sctp_stream_parameters = { ...sctpStreamParameters, streamId };
        this.requestPatiently(() =>
          signal.request('sfu:produce_data', {
            transport_id: transport.id,
            sctp_stream_parameters,
            label: label ?? '',
            protocol: protocol ?? '',
          }),
        ).then(({ producer_id }) => callback({ id: producer_id }), errback);
      });
    }
    return transport;
  }
}
