import type { IceCandidate, SessionDescription } from '../../protocol/events.js';
import { PendingMessages } from './PendingMessages.js';
import type { WireMessage } from './DataEnvelope.js';
import { inboundStats, type InboundStat } from './inboundStats.js';

export interface PeerLinkOptions {
  remoteId: string;
  /** The polite side yields on offer collisions (perfect negotiation). */
  polite: boolean;
  /** The initiator creates the data channels; the other side adopts them. */
  initiator: boolean;
  RTCPeerConnection: typeof RTCPeerConnection;
  configuration: RTCConfiguration;
  sendSignal: (signal: { description?: SessionDescription; candidate?: IceCandidate }) => Promise<void>;
  /** `senderTrackId`: the sender's track id (the msid of the track's m-section in the remote description), when it says one. */
  onTrack: (track: MediaStreamTrack, stream: MediaStream | undefined, senderTrackId: string | undefined) => void;
  /** A message on a data channel: text, or a binary frame. */
  onMessage: (data: WireMessage, reliable: boolean) => void;
  onStateChange: (state: RTCPeerConnectionState) => void;
  onError: (error: unknown) => void;
  /**
   * How long a link may wait for its first remote description before it (re)offers; also the
   * period of the check that restarts ICE when it has not started two periods after negotiating.
   */
  negotiationRetryMs?: number;
  /**
   * ICE restarts did not help: the connection never started ICE after MAX_ICE_RESTARTS of them
   * (seen in Chromium: a connection that never gathers a single candidate). The owner replaces
   * the link with a new connection; without this callback the link keeps restarting ICE.
   */
  onStuck?: () => void;
}

/** Counts of what a link did, for diagnostics (tests print them when a link never connects). */
export interface PeerLinkCounters {
  offersSent: number;
  answersSent: number;
  descriptionsReceived: number;
  /** Local candidates gathered and sent (none at all: this connection never gathered). */
  candidatesSent: number;
  candidatesReceived: number;
  renegotiations: number;
  /** ICE restarts this side asked for because ICE never started after negotiating. */
  iceRestarts: number;
  /** Remote candidates the connection refused (those of an ignored offer or an older ICE generation). */
  candidatesRefused: number;
  /** Why the last refused candidate was refused. */
  lastCandidateError?: string;
  /** Answers dropped because they answer another offer than the one we wait on (a repeated or overtaken offer). */
  staleAnswers: number;
  /** Offers sent again because their answer had not come two retry periods later. */
  offersRepeated: number;
  /** Negotiation steps that failed (each also goes to onError). */
  errors: number;
  /** Why the last one failed. */
  lastError?: string;
}

const NEGOTIATION_RETRY_MS = 4000;
/** ICE restarts of a link whose ICE never starts before it counts as stuck (`onStuck`). */
const MAX_ICE_RESTARTS = 2;

/**
 * The m-sections of an SDP, in order (their mids; the m= lines where there are none). An
 * answer has exactly its offer's.
 */
export function sdpSections(sdp: string | undefined): string {
  const lines = (sdp ?? '').split(/\r?\n/);
  const mids = lines.filter((line) => line.startsWith('a=mid:'));
  return (mids.length > 0 ? mids : lines.filter((line) => line.startsWith('m='))).join(',');
}

/**
 * The DTLS certificate fingerprints of an SDP (each distinct one once, sorted): they differ
 * between two peer connections and stay the same across renegotiations of one, whatever the
 * number of m-sections (each repeats the fingerprint).
 */
export function sdpFingerprint(sdp: string | undefined): string {
  const lines = (sdp ?? '').split(/\r?\n/).filter((line) => line.startsWith('a=fingerprint:'));
  return [...new Set(lines)].sort().join(',');
}

/**
 * The mesh connection to one remote peer: perfect negotiation (MDN's pattern) with every
 * SDP operation run one at a time through a queue, trickle ICE with early candidates
 * buffered until the remote description is set, ICE restart on failure, and a reliable
 * (ordered) plus a lossy (unordered, no retransmits) data channel.
 *
 * A link that has no remote description after `negotiationRetryMs` negotiates again: the
 * initiator sends its offer once more, the other side offers itself (perfect negotiation
 * settles a collision). An offer that got lost on the way, or a negotiationneeded that never
 * fired, then cannot leave the two peers waiting for each other forever. Likewise a link that
 * negotiated but whose ICE has not started (state `new`: no usable remote candidate arrived)
 * for two more periods restarts ICE, with fresh credentials and candidates; after
 * MAX_ICE_RESTARTS in vain it reports itself stuck (`onStuck`) for its owner to replace.
 */
export class PeerLink {
  readonly pc: RTCPeerConnection;
  /** Remote tracks received on this link (not those of the same peer over the SFU). */
  readonly remoteTracks = new Set<MediaStreamTrack>();
  closed = false;
  readonly counters: PeerLinkCounters = {
    offersSent: 0,
    answersSent: 0,
    descriptionsReceived: 0,
    candidatesSent: 0,
    candidatesReceived: 0,
    renegotiations: 0,
    iceRestarts: 0,
    candidatesRefused: 0,
    staleAnswers: 0,
    offersRepeated: 0,
    errors: 0,
  };
  private readonly negotiationTimer: ReturnType<typeof setInterval>;
  /** Sends our latest offer again when its answer has not come (see sendLocalDescription). */
  private offerWatch: ReturnType<typeof setTimeout> | null = null;
  /** Consecutive checks that found the link negotiated with ICE still `new`. */
  private iceIdleChecks = 0;
  private queue: Promise<void> = Promise.resolve();
  private ignoreOffer = false;
  private readonly earlyCandidates: IceCandidate[] = [];
  private reliable: RTCDataChannel | null = null;
  private lossy: RTCDataChannel | null = null;
  /** Reliable messages sent before the channel opened, flushed on open. */
  /** Reliable messages waiting for the channel to open. */
  private readonly pendingReliable = new PendingMessages();
  private readonly senders = new Map<MediaStreamTrack, RTCRtpSender>();

  constructor(private readonly options: PeerLinkOptions) {
    const pc = new options.RTCPeerConnection(options.configuration);
    this.pc = pc;
    pc.onicecandidate = ({ candidate }) => {
      if (!candidate || !candidate.candidate) return;
      this.counters.candidatesSent++;
      options
        .sendSignal({
          candidate: {
            candidate: candidate.candidate,
            sdpMid: candidate.sdpMid,
            sdpMLineIndex: candidate.sdpMLineIndex,
            usernameFragment: candidate.usernameFragment,
          },
        })
        .catch((error: unknown) => options.onError(error));
    };
    // The first offer is the initiator's (see below); the other side offers once it has one,
    // or after a retry period without it (checkNegotiation).
    pc.onnegotiationneeded = () =>
      this.enqueue(() => (options.initiator || this.pc.remoteDescription ? this.makeOffer(false) : Promise.resolve()));
    pc.ontrack = ({ track, streams, transceiver }) => {
      this.remoteTracks.add(track);
      options.onTrack(track, streams[0], msidTrackId(this.pc.remoteDescription?.sdp, transceiver?.mid ?? null));
    };
    pc.ondatachannel = ({ channel }) => this.adopt(channel);
    pc.onconnectionstatechange = () => {
      options.onStateChange(pc.connectionState);
      if (pc.connectionState === 'failed') this.restartIce();
    };
    if (options.initiator) {
      this.adopt(pc.createDataChannel('reliable', { ordered: true }));
      this.adopt(pc.createDataChannel('lossy', { ordered: false, maxRetransmits: 0 }));
      // An audio and a video section in the first offer, whatever either side publishes (our
      // addTrack reuses them, and so does the peer's). Chromium 148+ refuses a later offer that
      // brings a kind the first one lacked when the first offer came from the other side: its
      // header-extension ids collide across the bundle ("RTP extension ID reassignment not
      // supported", "codec collision for header extension id"), so a page sending audio and
      // video and one sending video only never got each other's audio.
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.addTransceiver('video', { direction: 'recvonly' });
    }
    this.negotiationTimer = setInterval(() => this.checkNegotiation(), options.negotiationRetryMs ?? NEGOTIATION_RETRY_MS);
  }

  /** True when the remote side has gone: the reliable channel closed or the connection failed. */
  get dead(): boolean {
    return this.reliable?.readyState === 'closed' || this.pc.connectionState === 'failed' || this.pc.connectionState === 'closed';
  }

  /** True once the reliable data channel is open. */
  get reliableOpen(): boolean {
    return this.reliable?.readyState === 'open';
  }

  /** True when connected with the reliable channel open: data and media flow on this link. */
  get established(): boolean {
    return this.pc.connectionState === 'connected' && this.reliableOpen;
  }

  /** The inbound-rtp entries of this link's stats. */
  async inboundStats(): Promise<InboundStat[]> {
    return inboundStats(await this.pc.getStats());
  }

  get remoteId(): string {
    return this.options.remoteId;
  }

  get initiator(): boolean {
    return this.options.initiator;
  }

  /** True when `description` is an offer from another peer connection than the one we negotiated with (the peer replaced its link). */
  isFromNewConnection(description: SessionDescription): boolean {
    const current = this.pc.remoteDescription;
    if (description.type !== 'offer' || !current) return false;
    return sdpFingerprint(description.sdp) !== sdpFingerprint(current.sdp);
  }

  /** Handles a description or candidate from the remote peer, in arrival order. */
  handleSignal(signal: { description?: SessionDescription; candidate?: IceCandidate }): void {
    if (signal.candidate) this.counters.candidatesReceived++;
    this.enqueue(async () => {
      if (signal.description) await this.applyDescription(signal.description);
      else if (signal.candidate) await this.applyCandidate(signal.candidate);
    });
  }

  /** Sends `track`; `keepResolution` (screen shares): the sender drops frames rather than resolution under load. */
  addTrack(track: MediaStreamTrack, stream: MediaStream | undefined, keepResolution = false): void {
    if (this.closed || this.senders.has(track)) return;
    const sender = stream ? this.pc.addTrack(track, stream) : this.pc.addTrack(track);
    this.senders.set(track, sender);
    if (keepResolution) keepSenderResolution(sender);
  }

  removeTrack(track: MediaStreamTrack): void {
    const sender = this.senders.get(track);
    if (!sender || this.closed) return;
    this.senders.delete(track);
    this.pc.removeTrack(sender);
  }

  /**
   * Sends `next` instead of `previous` on the same sender (a device switch): no renegotiation.
   * A sender whose media is stopped (the peer receives us over the SFU) stays stopped;
   * resumeMedia sends `next` then.
   */
  async replaceTrack(previous: MediaStreamTrack, next: MediaStreamTrack): Promise<void> {
    const sender = this.senders.get(previous);
    if (!sender || this.closed) return;
    this.senders.delete(previous);
    this.senders.set(next, sender);
    if (sender.track === previous) await sender.replaceTrack(next);
  }

  /** Stops encoding and sending media on this link (the peer receives it elsewhere); data goes on. */
  stopMedia(): void {
    if (this.closed) return;
    for (const sender of this.senders.values()) void sender.replaceTrack(null).catch(() => undefined);
  }

  /** Sends our tracks on this link again (a promotion that turned back before the link closed). */
  resumeMedia(): void {
    if (this.closed) return;
    for (const [track, sender] of this.senders) if (sender.track !== track) void sender.replaceTrack(track).catch(() => undefined);
  }

  /** Sends on the reliable or the lossy channel (binary frames as binary). Reliable messages wait for the channel to open. */
  send(data: WireMessage, reliable: boolean): void {
    if (this.closed) return;
    const channel = reliable ? this.reliable : this.lossy;
    if (channel?.readyState === 'open') {
      // The channel may report open before its open event ran (or, adopted open, without one):
      // what waited for it goes first, or the receiver would start its sequence after it.
      if (reliable) this.flushPending(channel);
      sendOn(channel, data);
    } else if (reliable) {
      this.pendingReliable.push(data);
    }
  }

  /** Sends the reliable messages that waited for the channel, oldest first. */
  private flushPending(channel: RTCDataChannel): void {
    if (this.pendingReliable.empty) return;
    for (const data of this.pendingReliable.take()) sendOn(channel, data);
  }

  /** Bytes the open channel holds that are not on the network yet (its bufferedAmount). */
  buffered(reliable: boolean): number {
    const channel = reliable ? this.reliable : this.lossy;
    return channel?.readyState === 'open' ? channel.bufferedAmount : 0;
  }

  /** Bytes of reliable messages waiting for the channel to open. */
  queued(): number {
    return this.pendingReliable.bytes;
  }

  /** Resolves once the channel's bufferedAmount is at most `low`, or it is not open (closed, or not open yet). */
  drained(reliable: boolean, low: number): Promise<void> {
    const channel = reliable ? this.reliable : this.lossy;
    return channel ? drainedChannel(channel, low) : Promise.resolve();
  }

  /** Reliable messages still waiting for the channel to open, handed over to a replacing link. */
  takePendingReliable(): WireMessage[] {
    return this.pendingReliable.take();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.negotiationTimer);
    if (this.offerWatch) clearTimeout(this.offerWatch);
    this.reliable?.close();
    this.lossy?.close();
    this.pc.close();
  }

  private enqueue(operation: () => Promise<void>): void {
    this.queue = this.queue.then(async () => {
      if (this.closed) return;
      try {
        await operation();
      } catch (error) {
        if (this.closed) return;
        this.counters.errors++;
        this.counters.lastError = String(error).slice(0, 300);
        this.options.onError(error);
      }
    });
  }

  private async makeOffer(iceRestart: boolean): Promise<void> {
    // Another negotiation is under way; negotiationneeded fires again once it is stable.
    if (this.pc.signalingState !== 'stable') return;
    const offer = await this.pc.createOffer(iceRestart ? { iceRestart: true } : undefined);
    if (this.pc.signalingState !== 'stable') return;
    await this.pc.setLocalDescription(offer);
    await this.sendLocalDescription();
  }

  /**
   * Runs every `negotiationRetryMs` until ICE connects. No remote description yet: send our
   * offer again, or offer ourselves. Negotiated but ICE still `new` two checks in a row: restart
   * ICE (either side may; perfect negotiation settles two restarts at once).
   */
  private checkNegotiation(): void {
    const pc = this.pc;
    if (pc.iceConnectionState === 'connected' || pc.iceConnectionState === 'completed') {
      clearInterval(this.negotiationTimer);
      return;
    }
    if (!pc.remoteDescription) {
      this.enqueue(async () => {
        if (this.pc.remoteDescription) return;
        this.counters.renegotiations++;
        if (this.pc.signalingState === 'have-local-offer') await this.sendLocalDescription();
        else await this.makeOffer(false);
      });
      return;
    }
    // Checking (ICE at work) or failed (restarted from onconnectionstatechange): not ours.
    const idle = pc.iceConnectionState === 'new' && pc.signalingState === 'stable';
    this.iceIdleChecks = idle ? this.iceIdleChecks + 1 : 0;
    if (this.iceIdleChecks < 2) return;
    this.iceIdleChecks = 0;
    if (this.counters.iceRestarts >= MAX_ICE_RESTARTS && this.options.onStuck) {
      clearInterval(this.negotiationTimer);
      this.options.onStuck();
      return;
    }
    this.counters.iceRestarts++;
    if (typeof pc.restartIce === 'function') pc.restartIce();
    else this.enqueue(() => this.makeOffer(true));
  }

  private async applyDescription(description: SessionDescription): Promise<void> {
    this.counters.descriptionsReceived++;
    if (description.type === 'answer') {
      // An answer to an offer we no longer wait for (an offer sent twice is answered twice).
      if (this.pc.signalingState !== 'have-local-offer') return;
      // Or to an earlier offer while a newer one waits (a late answer to a repeated offer
      // after the link renegotiated): applying it fails, and the newer offer's answer follows.
      if (sdpSections(description.sdp) !== sdpSections(this.pc.localDescription?.sdp)) {
        this.counters.staleAnswers++;
        return;
      }
    }
    const collision = description.type === 'offer' && this.pc.signalingState !== 'stable';
    this.ignoreOffer = !this.options.polite && collision;
    if (this.ignoreOffer) return;
    if (collision) await this.pc.setLocalDescription({ type: 'rollback' });
    await this.pc.setRemoteDescription(description as RTCSessionDescriptionInit);
    for (const candidate of this.earlyCandidates.splice(0)) await this.applyCandidate(candidate);
    if (description.type === 'offer') {
      await this.pc.setLocalDescription(await this.pc.createAnswer());
      await this.sendLocalDescription();
    }
  }

  private async applyCandidate(candidate: IceCandidate): Promise<void> {
    if (!this.pc.remoteDescription) {
      this.earlyCandidates.push(candidate);
      return;
    }
    try {
      await this.pc.addIceCandidate(candidate as RTCIceCandidateInit);
    } catch (error) {
      // Candidates of an offer we ignored or rolled back, or of an older ICE generation, fail
      // harmlessly; ICE goes on with the others.
      this.counters.candidatesRefused++;
      this.counters.lastCandidateError = `${String(error)} (${candidate.candidate.split(' ').slice(4, 8).join(' ')}, ufrag ${candidate.usernameFragment ?? '?'})`;
    }
  }

  private async sendLocalDescription(): Promise<void> {
    const local = this.pc.localDescription;
    if (local?.type === 'offer') {
      this.counters.offersSent++;
      this.watchOffer(local.sdp);
    } else if (local?.type === 'answer') this.counters.answersSent++;
    if (local) await this.options.sendSignal({ description: { type: local.type, sdp: local.sdp } });
  }

  /**
   * An offer whose answer has not come two retry periods later (lost, or dropped as stale on
   * a busy page) is sent again; the peer answers a repeated offer again. Without it a lost
   * answer to a renegotiation would leave the link in have-local-offer for good, and nothing
   * added since would ever be negotiated.
   */
  private watchOffer(sdp: string): void {
    if (this.offerWatch) clearTimeout(this.offerWatch);
    this.offerWatch = setTimeout(
      () =>
        this.enqueue(async () => {
          if (this.pc.signalingState !== 'have-local-offer' || this.pc.localDescription?.sdp !== sdp) return;
          this.counters.offersRepeated++;
          await this.sendLocalDescription();
        }),
      2 * (this.options.negotiationRetryMs ?? NEGOTIATION_RETRY_MS),
    );
  }

  private restartIce(): void {
    // One side restarts, so the two do not race: the impolite one.
    if (this.options.polite || this.closed) return;
    if (typeof this.pc.restartIce === 'function') this.pc.restartIce();
    else this.enqueue(() => this.makeOffer(true));
  }

  private adopt(channel: RTCDataChannel): void {
    if (channel.label === 'reliable') this.reliable = channel;
    else if (channel.label === 'lossy') this.lossy = channel;
    else return;
    const reliable = channel.label === 'reliable';
    channel.binaryType = 'arraybuffer';
    channel.onmessage = ({ data }: MessageEvent<unknown>) => {
      if (typeof data === 'string') this.options.onMessage(data, reliable);
      else if (data instanceof ArrayBuffer) this.options.onMessage(new Uint8Array(data), reliable);
      else if (ArrayBuffer.isView(data)) this.options.onMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), reliable);
    };
    channel.onopen = () => {
      if (reliable) this.flushPending(channel);
    };
    // A channel the peer opened can be open already when it is handed to us: no open event follows.
    if (reliable && channel.readyState === 'open') this.flushPending(channel);
  }
}

/** Writes text as text and a binary frame as binary (an exact view: a channel sends the whole view). */
export function sendOn(channel: RTCDataChannel, data: WireMessage): void {
  if (typeof data === 'string') channel.send(data);
  else channel.send(data as Uint8Array<ArrayBuffer>);
}

/**
 * Resolves once a data channel's bufferedAmount is at most `low` ('bufferedamountlow'), or it is
 * not open. Polled too: not every implementation fires the event (@roamhq/wrtc does not).
 */
export function drainedChannel(channel: RTCDataChannel, low: number): Promise<void> {
  if (channel.readyState !== 'open' || channel.bufferedAmount <= low) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearInterval(poll);
      channel.removeEventListener('bufferedamountlow', done);
      channel.removeEventListener('close', done);
      resolve();
    };
    channel.bufferedAmountLowThreshold = low;
    channel.addEventListener('bufferedamountlow', done);
    channel.addEventListener('close', done);
    const poll = setInterval(() => {
      if (channel.readyState !== 'open' || channel.bufferedAmount <= low) done();
    }, 10);
  });
}

/** The track id an SDP's m-section `mid` announces (`a=msid:<stream id> <track id>`), if any. */
export function msidTrackId(sdp: string | undefined, mid: string | null): string | undefined {
  if (!sdp || mid === null) return undefined;
  let inSection = false;
  let trackId: string | undefined;
  for (const rawLine of sdp.split('\n')) {
    const line = rawLine.trim();
    if (line.startsWith('m=')) {
      if (inSection) return trackId;
      trackId = undefined;
    } else if (line.startsWith('a=mid:')) inSection = line.slice(6) === mid;
    else if (line.startsWith('a=msid:')) trackId = line.slice(7).split(' ')[1];
  }
  return inSection ? trackId : undefined;
}

/**
 * A screen share keeps its resolution (text stays legible) and drops frames under load:
 * degradationPreference 'maintain-resolution' where the browser takes it (with
 * contentHint 'detail' on the track, Chromium prefers it anyway).
 */
export function keepSenderResolution(sender: RTCRtpSender | undefined): void {
  if (!sender || typeof sender.getParameters !== 'function') return;
  try {
    const parameters = sender.getParameters() as RTCRtpSendParameters & { degradationPreference?: string };
    parameters.degradationPreference = 'maintain-resolution';
    void sender.setParameters(parameters).catch(() => undefined);
  } catch {
    // Not supported here: contentHint still applies.
  }
}
