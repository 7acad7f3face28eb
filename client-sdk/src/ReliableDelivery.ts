import { systemClock, type Cancel, type Clock } from './clock.js';
import {
  batches,
  decodePayload,
  encodeControl,
  encodeData,
  MAX_MESSAGE_BYTES,
  MAX_TOPIC_LENGTH,
  maxEncodedBytes,
  preparePayload,
  type DataInfo,
  type DataPayload,
  type Envelope,
  type PreparedPayload,
  type WireMessage,
} from './DataEnvelope.js';
import { SwitchboardError } from './errors.js';
import { InboundSequencer } from './InboundSequencer.js';
import { SentHistory } from './SentHistory.js';

/*
 * The safety net of exactly-once data: a receiver that misses reliable messages of a sender
 * (a hole in its sequence, or a new SFU data consumer of that sender, which cannot have
 * received what was sent before it existed) asks `sync` {s: sender, e: epoch, q: from, n};
 * the sender resends what it still holds of [q, u) on every path it has, then answers
 * `synced` {t: [asker], n, o: the oldest number it still holds} on the same paths. The asker
 * repeats until answered (SCTP on the SFU drops messages to a receiver that fell far behind,
 * so requests, resends and answers can all be lost), gives up on what is older than `o`, and
 * stops after SYNC_GIVE_UP_MS; the sequencer drops the copies.
 *
 * A hole shows only when a later message arrives, so a sender that falls silent announces its
 * last reliable number once on every path, `tail` {e, q}, after SYNC_CHECK_MS without sending:
 * a receiver still expecting q or less asks for the rest. A path that was down when the sender
 * went silent gets the announcement once it is up.
 */
export const SYNC_CHECK_MS = 250;
export const SYNC_RETRY_MS = 500;
export const SYNC_GIVE_UP_MS = 30_000;
/** At most this many messages per answer: resends must not flood a receiver that is already behind. */
export const SYNC_MAX_RESEND = 256;
/** At most this many bytes of resends per answer and path (at least one message): the rest is asked for again. */
export const SYNC_MAX_RESEND_BYTES = 1024 * 1024;
/**
 * Backpressure: a reliable send waits while a channel it goes on holds more than this
 * (bufferedAmount), until that channel drained to LOW_WATER_BYTES; a lossy send skips such a
 * channel (dropped there). So the sender buffers at most this plus one message per channel.
 */
export const HIGH_WATER_BYTES = 1024 * 1024;
export const LOW_WATER_BYTES = 256 * 1024;
const DRAIN_CHECK_MS = 50;
/** A message resent over the SFU (to every receiver) is not resent there again within this time. */
export const SYNC_RESEND_WINDOW_MS = 1000;
/** How long a hole may hold back a sender's later messages when no sync fills it (the sender vanished, or kept ignoring us). */
export const HOLE_TIMEOUT_MS = 30_000;

/** A remote participant as delivery knows it: its connection id (changes on reconnect) and its stable identity. */
export interface DataSender {
  readonly id: string;
  readonly identity: string;
}

/** One way out: a mesh link to one peer, or our SFU data producer (which reaches every peer). */
export interface DataRoute {
  send(message: WireMessage, reliable: boolean): void;
  /** Bytes the open channel holds and has not put on the network yet (its bufferedAmount); none when absent. */
  buffered?(reliable: boolean): number;
  /** Bytes of reliable messages waiting for the channel to open (not backpressure: a link being built must not stall everyone). */
  queued?(): number;
  /** Resolves once buffered(reliable) is at most `low` or the channel closed (perhaps earlier: the caller looks again). */
  drained?(reliable: boolean, low: number): Promise<void>;
}

/** What send() accepts besides the payload. */
export interface SendOptions {
  /** Target identities; absent means everyone. */
  to?: string[];
  /** A label delivered with the message (DataInfo.topic), at most MAX_TOPIC_LENGTH characters. */
  topic?: string;
}

/** What delivery needs of the room's paths and participants. */
export interface DeliveryPaths {
  /** Our identity in the room; null before the join. */
  selfIdentity(): string | null;
  /** The connection id of the participant with this identity; null when it is not in the room. */
  peerIdOf(identity: string): string | null;
  /** May we send data at all (a sync request over the SFU needs our data producer). */
  canPublishData(): boolean;
  /** Our SFU data path while our data goes there; null without an SFU session or after our sfu-bye. */
  sfu(): DataRoute | null;
  /** Peer ids of the mesh links. */
  meshPeerIds(): Iterable<string>;
  /**
   * The mesh link to one peer. For 'data' only while it carries our data (not after our `bye`
   * on it); for 'control' as long as it is open.
   */
  mesh(peerId: string, purpose: 'data' | 'control'): DataRoute | null;
}

export interface ReliableDeliveryOptions {
  clock?: Clock;
  /** This sender's epoch; random by default (a new Room instance restarts its sequence numbers in a new epoch). */
  epoch?: string;
  /** A sync request's nonce; random by default. */
  nonce?: () => string;
}

/** A reliable message waiting for the channels to drain (backpressure). */
interface Outgoing {
  prepared: PreparedPayload;
  options: SendOptions;
  bytes: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** A message held by the sequencer until its turn. */
interface Inbound<S> {
  sender: S;
  envelope: Envelope;
  reliable: boolean;
}

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

const randomId = (): string => Math.random().toString(36).slice(2, 10);

/** The sequencer's key of one sender: identity and data epoch (sequence numbers restart with an epoch). */
const senderKey = (identity: string, epoch: string): string => `${identity}\u0000${epoch}`;

/**
 * Data messages in and out: numbering and sending on every open path, the history of our
 * reliable messages, per-sender ordering and de-duplication of what arrives, and the sync
 * protocol that refills holes. Reliable messages reach the app exactly once and in order per
 * sender; lossy ones at most once.
 */
export class ReliableDelivery<S extends DataSender> {
  readonly epoch: string;
  private reliableSeq = 0;
  private lossySeq = 0;
  /** Our last reliable messages, for peers that ask to have them again (sync). */
  private readonly sentHistory = new SentHistory();
  /** Our open sync requests, by sequencer key. */
  private readonly pendingSyncs = new Map<string, PendingSync>();
  /** Identities that joined after us: their reliable data is owed to us from sequence 1. */
  private readonly joinedAfterUs = new Set<string>();
  /** The latest data epoch seen from each remote identity. */
  private readonly epochByIdentity = new Map<string, string>();
  /** When we last answered a sync of each asker, by peer id (answers are spaced out). */
  private readonly syncAnsweredAt = new Map<string, number>();
  private readonly sequencer: InboundSequencer<Inbound<S>>;
  private readonly clock: Clock;
  private readonly nonce: () => string;
  private stopChecks: Cancel | null = null;
  /** When we last sent a reliable message. */
  private lastReliableSentAt = 0;
  /** The last reliable number announced on each path ('sfu', or a mesh peer id). */
  private readonly tailAnnounced = new Map<string, number>();
  /** The last reliable number each sender announced to us, by sequencer key, until we have it. */
  private readonly knownTails = new Map<string, number>();
  /** Reliable messages waiting for the channels to drain, in send order (numbered when they go). */
  private readonly outbox: Outgoing[] = [];
  private outboxBytes = 0;
  private pumping = false;

  constructor(
    private readonly paths: DeliveryPaths,
    /** Hands a message to the app (targets already filtered). */
    private readonly deliverToApp: (sender: S, payload: DataPayload, info: DataInfo) => void,
    options: ReliableDeliveryOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.epoch = options.epoch ?? randomId();
    this.nonce = options.nonce ?? randomId;
    this.sequencer = new InboundSequencer<Inbound<S>>(HOLE_TIMEOUT_MS, () => this.clock.now());
  }

  /** Starts the periodic sync check (every SYNC_CHECK_MS). */
  start(): void {
    this.stopChecks?.();
    this.stopChecks = this.clock.repeat(SYNC_CHECK_MS, () => this.checkSyncs(), { background: true });
  }

  /** Stops the sync check and forgets our open requests; sends still waiting reject with `not_connected` (the room ended). */
  stop(): void {
    this.stopChecks?.();
    this.stopChecks = null;
    this.pendingSyncs.clear();
    const abandoned = this.outbox.splice(0);
    this.outboxBytes = 0;
    for (const outgoing of abandoned) outgoing.reject(new SwitchboardError('not_connected', 'the room ended before this message was sent'));
  }

  /**
   * Sends a message on every path that carries our data (receivers de-duplicate); targets
   * filter on arrival, so every receiver sees each sender's sequence without gaps. Resolves
   * once it is written to those channels. A reliable message waits (in order) while a channel
   * holds more than HIGH_WATER_BYTES; a lossy one is dropped on such a channel. Throws
   * `payload_too_large` (over MAX_MESSAGE_BYTES on the wire) or `payload_invalid` (a topic
   * too long, a payload JSON cannot carry) before anything is sent.
   */
  send(payload: DataPayload, reliable: boolean, to?: string[], topic?: string): Promise<void> {
    const options: SendOptions = { to, topic };
    if (topic !== undefined && (typeof topic !== 'string' || topic.length > MAX_TOPIC_LENGTH))
      throw new SwitchboardError('payload_invalid', `a topic is a string of at most ${MAX_TOPIC_LENGTH} characters`);
    let prepared: PreparedPayload;
    try {
      prepared = preparePayload(payload);
    } catch (error) {
      throw new SwitchboardError('payload_invalid', `the payload cannot be sent: ${String(error)}`);
    }
    const bytes = maxEncodedBytes(prepared, { epoch: this.epoch, reliable, to, topic });
    if (bytes > MAX_MESSAGE_BYTES)
      throw new SwitchboardError(
        'payload_too_large',
        `a data message may take ${MAX_MESSAGE_BYTES} bytes on the wire (payload, topic and targets); this one takes ${bytes}`,
      );
    if (!reliable) {
      this.transmit(prepared, false, options);
      return Promise.resolve();
    }
    if (this.outbox.length === 0 && !this.congested()) {
      this.transmit(prepared, true, options);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.outbox.push({ prepared, options, bytes, resolve, reject });
      this.outboxBytes += bytes;
      void this.pump();
    });
  }

  /** Bytes of data on their way out: waiting in our queue, plus what the channels of our data paths buffer. */
  bufferedBytes(): number {
    let bytes = this.outboxBytes;
    for (const route of this.dataRoutes())
      bytes += (route.buffered?.(true) ?? 0) + (route.buffered?.(false) ?? 0) + (route.queued?.() ?? 0);
    return bytes;
  }

  /** The paths our data goes on now: the SFU and the mesh links that carry it. */
  private dataRoutes(): DataRoute[] {
    const routes: DataRoute[] = [];
    const sfu = this.paths.sfu();
    if (sfu) routes.push(sfu);
    for (const peerId of this.paths.meshPeerIds()) {
      const link = this.paths.mesh(peerId, 'data');
      if (link) routes.push(link);
    }
    return routes;
  }

  /** A data path whose reliable channel is above the high-water mark, if any. */
  private congested(): DataRoute | undefined {
    return this.dataRoutes().find((route) => (route.buffered?.(true) ?? 0) > HIGH_WATER_BYTES);
  }

  /** Sends the outbox in order, each message once no data path is above the high-water mark. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.outbox.length > 0) {
        const full = this.congested();
        if (full) {
          // Looked at again at least every DRAIN_CHECK_MS: the paths may change meanwhile (a hand-over, a link closed).
          let cancel: Cancel = () => undefined;
          const tick = new Promise<void>((resolve) => (cancel = this.clock.delay(DRAIN_CHECK_MS, resolve)));
          await Promise.race(full.drained ? [full.drained(true, LOW_WATER_BYTES), tick] : [tick]);
          // Drained and full still (a channel that reports otherwise): the tick, so this loop never spins.
          if (this.congested() === full) await tick;
          cancel();
          continue;
        }
        const next = this.outbox.shift() as Outgoing;
        this.outboxBytes -= next.bytes;
        this.transmit(next.prepared, true, next.options);
        next.resolve();
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Numbers a message and writes it on every data path (lossy: those below the high-water mark). */
  private transmit(prepared: PreparedPayload, reliable: boolean, { to, topic }: SendOptions): void {
    const seq = reliable ? ++this.reliableSeq : ++this.lossySeq;
    const message = encodeData(prepared, { epoch: this.epoch, seq, reliable, to, topic });
    if (reliable) {
      this.sentHistory.add(seq, message);
      this.lastReliableSentAt = this.clock.now();
    }
    for (const route of this.dataRoutes())
      if (reliable || (route.buffered?.(false) ?? 0) <= HIGH_WATER_BYTES) route.send(message, reliable);
  }

  /** A received data envelope, `sync` or `synced`; other envelopes are ignored. `reliable`: the channel it came on. */
  receive(sender: S, envelope: Envelope, reliable: boolean): void {
    if (envelope.c === 'sync') this.answerSync(sender, envelope);
    else if (envelope.c === 'synced') this.onSynced(envelope);
    else if (envelope.c === 'tail') this.onTail(sender, envelope);
    else if (!envelope.c) this.receiveData(sender, envelope, reliable);
  }

  /**
   * The SFU queues up to `bytes` for a slow receiver and drops what comes past it: the hole
   * such a receiver finds, it finds only once that queue drained, while we kept sending. Our
   * history then keeps twice that (plus what our own channel buffers), or the sync could only
   * answer that the messages are gone.
   */
  sfuQueuesUpTo(bytes: number): void {
    this.sentHistory.holdAtLeast(2 * bytes + HIGH_WATER_BYTES);
  }

  /** A participant joined after us: we are owed its data from its first message on. */
  joinedAfter(identity: string): void {
    this.joinedAfterUs.add(identity);
  }

  /** A participant connection is gone: its sync answers need no more spacing. */
  forgetPeer(peerId: string): void {
    this.syncAnsweredAt.delete(peerId);
    this.tailAnnounced.delete(peerId);
  }

  /** A participant left the room: what its holes held back can only come now. */
  senderLeft(identity: string): void {
    const epoch = this.epochByIdentity.get(identity);
    if (epoch) this.sequencer.release(senderKey(identity, epoch), (m) => this.deliver(m));
  }

  /**
   * A new path from a peer: an SFU data consumer, or a mesh link built after the previous one
   * was torn down (a signaling drop, a reconnect). It cannot have carried what the peer sent
   * before it existed, and what was in flight on the old path is lost with it, with maybe no
   * later message to reveal the hole: ask for everything from the next number we expect.
   */
  pathOpened(identity: string): void {
    const epoch = this.epochByIdentity.get(identity);
    if (!epoch) return; // Nothing received from it yet: its stream starts wherever we join it.
    const expected = this.sequencer.expected(senderKey(identity, epoch));
    if (expected !== null) this.requestSync(identity, epoch, expected, null);
  }

  private receiveData(sender: S, envelope: Envelope, reliable: boolean): void {
    if (typeof envelope.q !== 'number' || typeof envelope.e !== 'string') return;
    const isReliable = envelope.r === undefined ? reliable : envelope.r === 1;
    this.epochByIdentity.set(sender.identity, envelope.e);
    const key = senderKey(sender.identity, envelope.e);
    // Its first messages may have gone out before any path to us was up (an SFU data consumer
    // opens after the producer): a hole from 1 that the sync check asks for.
    if (isReliable && this.joinedAfterUs.has(sender.identity) && this.sequencer.expected(key) === null) this.sequencer.expectFrom(key, 1);
    this.sequencer.accept(key, envelope.q, isReliable, { sender, envelope, reliable: isReliable }, (m) => this.deliver(m));
  }

  private deliver({ sender, envelope, reliable }: Inbound<S>): void {
    const self = this.paths.selfIdentity();
    if (envelope.t && (!self || !envelope.t.includes(self))) return;
    const info: DataInfo = { reliable, seq: envelope.q as number };
    if (typeof envelope.tp === 'string') info.topic = envelope.tp;
    this.deliverToApp(sender, decodePayload(envelope), info);
  }

  /** Every SYNC_CHECK_MS: ask for holes older than that, repeat unanswered requests. */
  private checkSyncs(): void {
    this.sequencer.expire((m) => this.deliver(m));
    for (const { sender, expected, next } of this.sequencer.gaps(SYNC_CHECK_MS)) {
      const [identity, epoch] = sender.split('\u0000') as [string, string];
      this.requestSync(identity, epoch, expected, next);
    }
    const now = this.clock.now();
    for (const [key, pending] of this.pendingSyncs) {
      if (now - pending.since > SYNC_GIVE_UP_MS || this.paths.peerIdOf(pending.identity) === null) this.pendingSyncs.delete(key);
      else if (now - pending.askedAt >= SYNC_RETRY_MS) this.askSync(pending);
    }
    this.askForMissingTails();
    if (this.reliableSeq > 0 && now - this.lastReliableSentAt >= SYNC_CHECK_MS) this.announceTail();
  }

  /** Our last reliable number, on every path that has not been told it yet. */
  private announceTail(): void {
    const last = this.reliableSeq;
    const text = encodeControl('tail', { e: this.epoch, q: last });
    const sfu = this.paths.canPublishData() ? this.paths.sfu() : null;
    if (sfu && this.tailAnnounced.get('sfu') !== last) {
      sfu.send(text, true);
      this.tailAnnounced.set('sfu', last);
    }
    for (const peerId of this.paths.meshPeerIds()) {
      if (this.tailAnnounced.get(peerId) === last) continue;
      const link = this.paths.mesh(peerId, 'data');
      if (!link) continue;
      link.send(text, true);
      this.tailAnnounced.set(peerId, last);
    }
  }

  /** A sender's last reliable number: the sync check asks for whatever of it is still missing. */
  private onTail(sender: S, envelope: Envelope): void {
    if (typeof envelope.q !== 'number' || typeof envelope.e !== 'string') return;
    const key = senderKey(sender.identity, envelope.e);
    if (this.sequencer.expected(key) === null && this.joinedAfterUs.has(sender.identity)) this.sequencer.expectFrom(key, 1);
    this.knownTails.set(key, Math.max(envelope.q, this.knownTails.get(key) ?? 0));
  }

  /** Tails announced to us that we have not received yet, when no request for that sender is open. */
  private askForMissingTails(): void {
    for (const [key, last] of this.knownTails) {
      const expected = this.sequencer.expected(key);
      if (expected === null || expected > last) this.knownTails.delete(key);
      else if (!this.pendingSyncs.has(key)) {
        const [identity, epoch] = key.split('\u0000') as [string, string];
        this.requestSync(identity, epoch, expected, last + 1);
      }
    }
  }

  /** Asks a sender to resend [from, to) (unless the same request is already open). */
  private requestSync(identity: string, epoch: string, from: number, to: number | null): void {
    const key = senderKey(identity, epoch);
    const open = this.pendingSyncs.get(key);
    if (open && open.from === from && open.to === to) return;
    const pending: PendingSync = { identity, epoch, from, to, nonce: this.nonce(), since: this.clock.now(), askedAt: 0 };
    this.pendingSyncs.set(key, pending);
    this.askSync(pending);
  }

  /** Sends a request over every path to its sender: its mesh link (even after our `bye` on it) and the SFU. */
  private askSync(pending: PendingSync): void {
    pending.askedAt = this.clock.now();
    const peerId = this.paths.peerIdOf(pending.identity);
    if (peerId === null) return;
    const text = encodeControl('sync', {
      s: pending.identity,
      e: pending.epoch,
      q: pending.from,
      ...(pending.to === null ? {} : { u: pending.to }),
      n: pending.nonce,
    });
    if (this.paths.canPublishData()) this.paths.sfu()?.send(text, true);
    this.paths.mesh(peerId, 'control')?.send(text, true);
  }

  private onSynced(envelope: Envelope): void {
    const self = this.paths.selfIdentity();
    if (!self || !envelope.t?.includes(self)) return;
    for (const [key, pending] of this.pendingSyncs) {
      if (pending.nonce !== envelope.n) continue;
      this.pendingSyncs.delete(key);
      // What the sender no longer holds is lost for good: stop holding later messages back for it.
      if (typeof envelope.o === 'number') this.sequencer.skipTo(key, envelope.o, (m) => this.deliver(m));
    }
  }

  /** A sync for us (the SFU path carries everyone's requests to everyone): resend, then answer. */
  private answerSync(asker: S, envelope: Envelope): void {
    if (
      envelope.s !== this.paths.selfIdentity() ||
      envelope.e !== this.epoch ||
      typeof envelope.q !== 'number' ||
      typeof envelope.n !== 'string'
    )
      return;
    const now = this.clock.now();
    if (now - (this.syncAnsweredAt.get(asker.id) ?? 0) < SYNC_CHECK_MS) return;
    this.syncAnsweredAt.set(asker.id, now);
    const overLink = this.paths.mesh(asker.id, 'data');
    const overSfu = this.paths.sfu();
    const answer = encodeControl('synced', { t: [asker.identity], n: envelope.n, o: this.sentHistory.oldest(this.reliableSeq + 1) });
    const to = typeof envelope.u === 'number' ? envelope.u : Infinity;
    // The link reaches the asker alone; the SFU reaches everyone, so there each message goes
    // again at most once per SYNC_RESEND_WINDOW_MS, whoever asks.
    if (overLink)
      for (const message of batches([...this.sentHistory.range(envelope.q, to, SYNC_MAX_RESEND, SYNC_MAX_RESEND_BYTES), answer]))
        overLink.send(message, true);
    if (overSfu)
      for (const message of batches([
        ...this.sentHistory.rangeToResend(envelope.q, to, SYNC_MAX_RESEND, now, SYNC_RESEND_WINDOW_MS, SYNC_MAX_RESEND_BYTES),
        answer,
      ]))
        overSfu.send(message, true);
  }
}
