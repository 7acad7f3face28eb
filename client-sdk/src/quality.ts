import type { LinkQuality } from '../../protocol/events.js';

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
export function summarizeLink(peerId: string, report: RTCStatsReport, previous: QualitySample | undefined, now: number): { quality: LinkQuality; sample: QualitySample } {
  const stats: Stat[] = [];
  report.forEach((value: Stat) => stats.push(value));
  const byId = new Map(stats.map((s) => [s.id, s]));
  const sample: QualitySample = { at: now, bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsLost: 0 };
  let pair: Stat | undefined;
  for (const s of stats) {
    if (s.type === 'inbound-rtp') {
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
  const local = pair ? byId.get(String(pair.localCandidateId)) : undefined;
  const candidateType = local?.candidateType;
  if (candidateType === 'host' || candidateType === 'srflx' || candidateType === 'prflx' || candidateType === 'relay') quality.candidate_type = candidateType;
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
