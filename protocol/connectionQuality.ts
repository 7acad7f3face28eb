/**
 * Connection quality, as both topologies report it: a MOS-like score (1..4.5) from RTT, jitter
 * and packet loss (the ITU-T G.107 E-model simplified as LiveKit's and most VoIP monitors do),
 * then four levels. Pure, shared by the server (remote participants) and the SDK (its own).
 */

/** A participant's connection quality (LiveKit's ConnectionQuality). */
export type ConnectionQuality = 'excellent' | 'good' | 'poor' | 'lost';

/** What a link measure says: all optional (a link that measured nothing yet has no score). */
export interface LinkMeasure {
  rtt_ms?: number;
  /** Fraction of packets lost in the last interval, 0..1. */
  packet_loss?: number;
  jitter_ms?: number;
}

/** The levels' lower bounds on the MOS scale, and where a link counts as lost. */
export const QUALITY_THRESHOLDS = {
  /** MOS at or above: excellent (e.g. RTT 100 ms with 2% loss: 4.24; RTT 400 ms without loss: 4.14). */
  excellent: 4.1,
  /** MOS at or above: good (5% loss: 4.01; RTT 600 ms: 3.70). Below: poor (10% loss: 3.46; RTT 1 s: 2.80). */
  good: 3.6,
  /** Packet loss at or above this fraction: lost (half of the media gone: unusable). */
  lostLoss: 0.5,
} as const;

/** The MOS-like score of a link (1 to about 4.5), or undefined when nothing was measured. */
export function meanOpinionScore(measure: LinkMeasure): number | undefined {
  const { rtt_ms, packet_loss, jitter_ms } = measure;
  if (rtt_ms === undefined && packet_loss === undefined) return undefined;
  // Effective one-way latency: half the RTT, jitter counted twice (the jitter buffer), 10 ms codec.
  const latency = (rtt_ms ?? 0) / 2 + (jitter_ms ?? 0) * 2 + 10;
  let r = latency < 160 ? 93.2 - latency / 40 : 93.2 - (latency - 120) / 10;
  r -= (packet_loss ?? 0) * 100 * 2.5;
  r = Math.min(100, Math.max(0, r));
  return 1 + 0.035 * r + 0.000007 * r * (r - 60) * (100 - r);
}

/** The quality of one link (undefined: nothing measured yet). */
export function linkQuality(measure: LinkMeasure): ConnectionQuality | undefined {
  if (measure.packet_loss !== undefined && measure.packet_loss >= QUALITY_THRESHOLDS.lostLoss) return 'lost';
  const mos = meanOpinionScore(measure);
  if (mos === undefined) return undefined;
  if (mos >= QUALITY_THRESHOLDS.excellent) return 'excellent';
  if (mos >= QUALITY_THRESHOLDS.good) return 'good';
  return 'poor';
}

const RANK: Record<ConnectionQuality, number> = { excellent: 3, good: 2, poor: 1, lost: 0 };

/** A participant's quality: its worst link's (undefined: no link measured anything). */
export function participantQuality(links: readonly LinkMeasure[]): ConnectionQuality | undefined {
  let worst: ConnectionQuality | undefined;
  for (const link of links) {
    const quality = linkQuality(link);
    if (quality !== undefined && (worst === undefined || RANK[quality] < RANK[worst])) worst = quality;
  }
  return worst;
}
