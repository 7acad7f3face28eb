import type { LinkQuality } from '../../protocol/events.js';
import { systemClock, type Cancel, type Clock } from './clock.js';

/** Counters from one getStats() sample, kept to compute rates at the next sample. */
export interface QualitySample {
  at: number;
  bytesIn: number;
  bytesOut: number;
  packetsIn: number;
  packetsLost: number;
}

type Stat = Record<string, unknown> & { type: string; id: string };

/** Summarizes a getStats() report of one link (RTT, loss, bitrates, candidate type). */
export function summarizeLink(
  peerId: string,
  report: RTCStatsReport,
  previous: QualitySample | undefined,
  now: number,
): { quality: LinkQuality; sample: QualitySample } {
  const stats: Stat[] = [];
  report.forEach((value: Stat) => stats.push(value));
  const byId = new Map(stats.map((s) => [s.id, s]));
  const sample: QualitySample = { at: now, bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsLost: 0 };
  let pair: Stat | undefined;
  let jitter: number | undefined;
  for (const s of stats) {
    if (s.type === 'inbound-rtp') {
      if (typeof s.jitter === 'number') jitter = Math.max(jitter ?? 0, s.jitter);
      sample.bytesIn += Number(s.bytesReceived ?? 0);
      sample.packetsIn += Number(s.packetsReceived ?? 0);
      sample.packetsLost += Math.max(0, Number(s.packetsLost ?? 0));
    } else if (s.type === 'outbound-rtp') {
      sample.bytesOut += Number(s.bytesSent ?? 0);
    } else if (s.type === 'transport' && typeof s.selectedCandidatePairId === 'string') {
      pair = byId.get(s.selectedCandidatePairId);
    } else if (s.type === 'data-channel') {
      sample.bytesIn += Number(s.bytesReceived ?? 0);
      sample.bytesOut += Number(s.bytesSent ?? 0);
    }
  }
  pair ??= stats.find((s) => s.type === 'candidate-pair' && s.state === 'succeeded' && (s.nominated === true || s.selected === true));

  const quality: LinkQuality = { peer_id: peerId };
  if (pair && typeof pair.currentRoundTripTime === 'number') quality.rtt_ms = Math.round(pair.currentRoundTripTime * 1000);
  if (jitter !== undefined) quality.jitter_ms = Math.round(jitter * 1000);
  const local = pair ? byId.get(String(pair.localCandidateId)) : undefined;
  const candidateType = local?.candidateType;
  if (candidateType === 'host' || candidateType === 'srflx' || candidateType === 'prflx' || candidateType === 'relay')
    quality.candidate_type = candidateType;
  if (previous) {
    const seconds = (now - previous.at) / 1000;
    if (seconds > 0) {
      quality.bitrate_in_kbps = Math.max(0, Math.round(((sample.bytesIn - previous.bytesIn) * 8) / 1000 / seconds));
      quality.bitrate_out_kbps = Math.max(0, Math.round(((sample.bytesOut - previous.bytesOut) * 8) / 1000 / seconds));
    }
    const received = sample.packetsIn - previous.packetsIn;
    const lost = sample.packetsLost - previous.packetsLost;
    if (received + lost > 0) quality.packet_loss = Math.min(1, Math.max(0, lost / (received + lost)));
  }
  return { quality, sample };
}

/** A connection the quality reporter measures: a mesh link's peer connection, or an SFU transport. */
export interface MeasuredConnection {
  getStats(): Promise<RTCStatsReport>;
  /** RTCPeerConnection.connectionState (or a mediasoup transport's): 'disconnected' and 'failed' count as losing everything. */
  readonly connectionState?: string;
}

/** What the quality reporter reads and sends through. */
export interface QualityReporterHost {
  /** The mesh links, by remote peer id. */
  links(): ReadonlyMap<string, { readonly pc: MeasuredConnection }>;
  /** Reports are sent only while this holds (connected). */
  active(): boolean;
  /** Sends one summary to the server (undefined: no connection to send on). */
  send(links: LinkQuality[]): Promise<unknown> | undefined;
  /** Each summary, as it is sent (the local participant's connection quality comes from it). */
  measured?(links: LinkQuality[]): void;
}

/** Sends the periodic quality summary (RTT, loss, bitrates, candidate type per link). */
export class QualityReporter {
  private readonly samples = new Map<string, QualitySample>();
  private cancel: Cancel | null = null;

  constructor(
    private readonly host: QualityReporterHost,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Reports every `intervalMs` (0 or less: never). */
  start(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.cancel = this.clock.repeat(intervalMs, () => void this.report(), { background: true });
  }

  stop(): void {
    this.cancel?.();
    this.cancel = null;
  }

  private async report(): Promise<void> {
    if (!this.host.active()) return;
    const now = this.clock.now();
    const links: LinkQuality[] = [];
    const current = this.host.links();
    for (const [peerId, link] of current) {
      try {
        const { quality, sample } = summarizeLink(peerId, await link.pc.getStats(), this.samples.get(peerId), now);
        this.samples.set(peerId, sample);
        // Nothing gets through a connection that is down: no loss can be counted on packets that
        // never come, and its last RTT would still read as a good link.
        const state = link.pc.connectionState;
        if (state === 'disconnected' || state === 'failed') quality.packet_loss = 1;
        links.push(quality);
      } catch {
        // A link closing meanwhile has no stats.
      }
    }
    for (const peerId of this.samples.keys()) if (!current.has(peerId)) this.samples.delete(peerId);
    this.host.measured?.(links);
    await this.host.send(links)?.catch(() => undefined);
  }
}
