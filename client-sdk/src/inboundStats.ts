/** The inbound-rtp entries of WebRTC stats reports, as the SDK reads them on both paths. */

/** The fields of an `inbound-rtp` stats entry the SDK reads. */
export interface InboundStat {
  type: 'inbound-rtp';
  kind?: string;
  trackIdentifier?: string;
  bytesReceived?: number;
  framesDecoded?: number;
  totalInterFrameDelay?: number;
  totalSquaredInterFrameDelay?: number;
  /** Video freezes the browser counted (an inter-frame delay over max(3 x average, average + 150 ms)). */
  freezeCount?: number;
  /** Their total duration, seconds. */
  totalFreezesDuration?: number;
}

/** The inbound-rtp entries of a report. */
export function inboundStats(report: RTCStatsReport): InboundStat[] {
  const found: InboundStat[] = [];
  report.forEach((stat: { type: string }) => {
    if (stat.type === 'inbound-rtp') found.push(stat as InboundStat);
  });
  return found;
}

/** Inbound media that flows, not just negotiated: audio arriving, video decoding (bytes alone may still wait for a key frame). */
export const isFlowing = (stat: InboundStat): boolean =>
  stat.kind === 'video' ? (stat.framesDecoded ?? 0) > 0 : (stat.bytesReceived ?? 0) > 0;
