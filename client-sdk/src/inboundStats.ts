/** The inbound-rtp entries of WebRTC stats reports, as the SDK reads them on both paths. */

/** The fields of an `inbound-rtp` stats entry the SDK reads. */
export interface InboundStat {
  type: 'inbound-rtp';
  /** When the browser took the entry (ms). */
  timestamp?: number;
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
export const isFlowing = (stat: InboundStat): boolean => (stat.kind === 'video' ? (stat.framesDecoded ?? 0) > 0 : (stat.bytesReceived ?? 0) > 0);

/** How media progresses: frames decoded for video, bytes for audio. */
const progressOf = (stat: InboundStat): number => (stat.kind === 'video' ? (stat.framesDecoded ?? 0) : (stat.bytesReceived ?? 0));

/** The progress and freeze counters of one stream at one observation. */
interface StreamMark {
  value: number;
  freezes?: number;
  freezesMs?: number;
  /** The report's own timestamp: a cached report seen twice tells nothing new. */
  timestamp?: number;
  /** When the stream last progressed (our clock). */
  progressAt: number;
}

/**
 * Whether each of several inbound streams has been flowing steadily for a while, from
 * successive stats reports. A stream that just decoded its first frames can still stall (the
 * jitter buffer settling, a second key frame), and a hand-over that drops the old copy on the
 * first frame shows that stall to the user; this waits until no stream paused longer than
 * `pauseMs` for `steadyMs`, and accepts after `capMs` of flowing at most (a starved page may
 * never look steady, and keeping both copies loads it further). A pause is what the browser's
 * freeze counters say where it has them (exact, however late the report), else the time
 * between two observations that showed progress; a stream with no progress for over `pauseMs`
 * is paused now.
 */
export class SteadyFlow {
  private flowingSince: number | null = null;
  private steadySince: number | null = null;
  private readonly marks = new Map<string, StreamMark>();

  constructor(
    private readonly steadyMs: number,
    private readonly pauseMs: number,
    private readonly capMs: number,
  ) {}

  /** One observation: `streams` holds each stream's entries (one consumer or receiver each). */
  observe(streams: InboundStat[][], now = Date.now()): boolean {
    if (streams.length === 0 || !streams.every((entries) => entries.some(isFlowing))) {
      this.flowingSince = this.steadySince = null;
      this.marks.clear();
      return false;
    }
    this.flowingSince ??= now;
    this.steadySince ??= now;
    streams.forEach((entries, index) => {
      const key = entries.find((stat) => stat.trackIdentifier)?.trackIdentifier ?? String(index);
      const withFreezes = entries.every((stat) => stat.kind !== 'video' || stat.freezeCount !== undefined);
      const mark: StreamMark = {
        value: entries.reduce((sum, stat) => sum + progressOf(stat), 0),
        freezes: withFreezes ? entries.reduce((sum, stat) => sum + (stat.freezeCount ?? 0), 0) : undefined,
        freezesMs: withFreezes ? entries.reduce((sum, stat) => sum + (stat.totalFreezesDuration ?? 0) * 1000, 0) : undefined,
        timestamp: entries[0]?.timestamp,
        progressAt: now,
      };
      const last = this.marks.get(key);
      if (last && mark.timestamp !== undefined && mark.timestamp === last.timestamp) return;
      this.marks.set(key, mark);
      if (!last) return;
      const progressed = mark.value > last.value;
      if (!progressed) mark.progressAt = last.progressAt;
      const froze = mark.freezesMs !== undefined && last.freezesMs !== undefined ? mark.freezesMs - last.freezesMs > this.pauseMs : progressed && now - last.progressAt > this.pauseMs;
      const stalled = !progressed && now - last.progressAt > this.pauseMs;
      if (froze || stalled) this.steadySince = now;
    });
    return now - this.steadySince >= this.steadyMs || now - this.flowingSince >= this.capMs;
  }
}
