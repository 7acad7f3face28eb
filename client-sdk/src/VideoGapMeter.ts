/** Decoded-video counters of one path (mesh link or SFU consumers) of one remote participant. */
export interface VideoPathCounters {
  /** framesDecoded, summed over the path's video receivers. */
  frames: number;
  /** totalInterFrameDelay (seconds), summed likewise; undefined where the browser does not report it. */
  interFrameDelay?: number;
  /** totalSquaredInterFrameDelay (seconds squared). */
  squaredInterFrameDelay?: number;
  /** freezeCount, summed likewise; undefined where the browser does not report it. */
  freezes?: number;
  /** totalFreezesDuration (seconds), summed likewise. */
  freezesDuration?: number;
}

/** The browser's own freeze accounting over a measurement: how many, how long in all, the longest one known exactly. */
export interface FreezeSummary {
  count: number;
  totalMs: number;
  /** The longest freeze that was alone in its sample interval (its length is then exact); 0 if none. */
  longestSingleMs: number;
}

/**
 * What measured a gap: the name of the path whose counters bounded it (it was decoding all
 * along and one of its inter-frame delays was that long), 'between-samples' (no path that was
 * decoding progressed, e.g. the hand-over to a path that just started: the time between
 * progress), 'stalled-at-end' (still no new frame when the meter stopped), 'none' (no gap).
 */
export type GapSource = string;

/** Per remote participant (identity), per path name. */
export type VideoSample = Map<string, Record<string, VideoPathCounters>>;

/**
 * The largest of n non-negative values whose sum and sum of squares are known, at most
 * (Samuelson's inequality): mean + sqrt((n - 1) / n * (sumSquares - sum^2 / n)). The bound is
 * reached when one value stands out and the others are equal, which is what a stall among
 * regular frames looks like.
 */
export function largestValueBound(n: number, sum: number, sumSquares: number): number {
  if (n <= 0) return 0;
  const spread = Math.max(0, sumSquares - (sum * sum) / n);
  return sum / n + Math.sqrt(((n - 1) / n) * spread);
}

/**
 * How often the meter samples. The browser's counters bound each interval's longest delay, so
 * sampling often buys nothing; and every getStats costs the busy page during a migration.
 */
const SAMPLE_INTERVAL_MS = 500;

interface Seen {
  paths: Record<string, VideoPathCounters>;
  /** When a sample last showed new frames. */
  progressAt: number;
}

/**
 * Measures the longest time each remote participant's video decoded no new frame, over
 * whichever path carries it, and reports the largest.
 *
 * Sampling alone cannot do it on a busy client: getStats waits behind SDP work, so a sample
 * can come seconds late while frames kept arriving. Between two samples of a path that was
 * already decoding, the browser's own counters (totalInterFrameDelay and its squares, updated
 * per frame in the media pipeline) bound the longest inter-frame delay of that interval, so a
 * late sample no longer reads as a gap. Where they are missing, or only a path that just
 * started progressed (a new SFU consumer), the time since the previous progress counts, as a
 * sampler sees it (an upper bound).
 */
export class VideoGapMeter {
  private readonly seen = new Map<string, Seen>();
  private largestMs = 0;
  private readonly timer: ReturnType<typeof setInterval>;
  private sampling: Promise<void> | null = null;
  private readonly freezeSummary: FreezeSummary = { count: 0, totalMs: 0, longestSingleMs: 0 };
  private readonly freezeSummaryByPath = new Map<string, FreezeSummary>();
  private largestSource: GapSource = 'none';
  private largestIdentity = '';
  /** Participants that progressed on a path in the latest sample, by path. */
  private lastProgressed = new Map<string, Set<string>>();
  /** Samples taken so far. */
  private samples = 0;

  constructor(
    private readonly sample: () => Promise<VideoSample>,
    intervalMs = SAMPLE_INTERVAL_MS,
  ) {
    this.timer = setInterval(() => void this.tick(), intervalMs);
  }

  /** Stops sampling (after one last sample) and returns the largest gap in ms. */
  async finish(): Promise<number> {
    clearInterval(this.timer);
    await this.tick();
    // A video still stalled at the end counts up to now.
    const now = Date.now();
    for (const [identity, { progressAt }] of this.seen) this.raise(now - progressAt, 'stalled-at-end', identity);
    return Math.round(this.largestMs);
  }

  /** What measured the largest gap: a path's own counters, or the time between progress. */
  get largestFrom(): GapSource {
    return this.largestSource;
  }

  /** The remote participant (identity) whose video had the largest gap; '' if none. */
  get largestOf(): string {
    return this.largestIdentity;
  }

  /** The freezes of `freezes`, per path. */
  get freezesByPath(): Record<string, FreezeSummary> {
    return Object.fromEntries([...this.freezeSummaryByPath].map(([path, summary]) => [path, { ...summary }]));
  }

  private raise(ms: number, source: GapSource, identity: string): void {
    if (ms <= this.largestMs) return;
    this.largestMs = ms;
    this.largestSource = source;
    this.largestIdentity = identity;
  }

  /** Freezes the browser counted on every path while the meter ran (a second view of the gap, without bounds). */
  get freezes(): FreezeSummary {
    return { ...this.freezeSummary };
  }

  /**
   * Resolves once one sample shows every participant seen so far progressing on `path`
   * (media runs on the new topology), or a sample taken meanwhile shows no video decoding at all
   * (an audio-only room, or every video hidden by the app: nothing to wait for), or after `capMs`.
   */
  async flowingOn(path: string, capMs: number): Promise<void> {
    const samplesBefore = this.samples;
    for (const deadline = Date.now() + capMs; Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const progressed = this.lastProgressed.get(path);
      if (this.seen.size > 0 && [...this.seen.keys()].every((identity) => progressed?.has(identity))) return;
      if (this.seen.size === 0 && this.samples > samplesBefore) return;
    }
  }

  private tick(): Promise<void> {
    this.sampling ??= this.measure().finally(() => {
      this.sampling = null;
    });
    return this.sampling;
  }

  private async measure(): Promise<void> {
    let sample: VideoSample;
    try {
      sample = await this.sample();
    } catch {
      return; // a sample during teardown can fail; the next one counts
    }
    const now = Date.now();
    const progressedByPath = new Map<string, Set<string>>();
    // A participant who left has no gap.
    for (const identity of this.seen.keys()) if (!sample.has(identity)) this.seen.delete(identity);
    for (const [identity, paths] of sample) {
      const seen = this.seen.get(identity);
      if (!seen) {
        // Before the first frame there is nothing to measure a gap against.
        if (Object.values(paths).some((p) => p.frames > 0)) this.seen.set(identity, { paths, progressAt: now });
        continue;
      }
      let bound = Infinity;
      let boundPath = '';
      let progressed = false;
      for (const [path, counters] of Object.entries(paths)) {
        const before = seen.paths[path];
        // A path whose counter went back (a replaced connection) starts over.
        const restarted = !before || counters.frames < before.frames;
        if (!restarted && counters.freezes !== undefined && before.freezes !== undefined && counters.freezes > before.freezes) {
          const count = counters.freezes - before.freezes;
          const ms = ((counters.freezesDuration ?? 0) - (before.freezesDuration ?? 0)) * 1000;
          const onPath = this.freezeSummaryByPath.get(path) ?? { count: 0, totalMs: 0, longestSingleMs: 0 };
          this.freezeSummaryByPath.set(path, onPath);
          for (const summary of [this.freezeSummary, onPath]) {
            summary.count += count;
            summary.totalMs += ms;
            if (count === 1) summary.longestSingleMs = Math.max(summary.longestSingleMs, ms);
          }
        }
        const frames = restarted ? counters.frames : counters.frames - before.frames;
        if (frames <= 0) continue;
        progressed = true;
        const onPath = progressedByPath.get(path) ?? new Set<string>();
        progressedByPath.set(path, onPath.add(identity));
        // Only a path that was decoding already has a delay before each of these frames.
        if (restarted || before.frames === 0 || counters.interFrameDelay === undefined || before.interFrameDelay === undefined) continue;
        const sum = counters.interFrameDelay - before.interFrameDelay;
        const squares = (counters.squaredInterFrameDelay ?? 0) - (before.squaredInterFrameDelay ?? 0);
        const pathBound = largestValueBound(frames, sum, squares) * 1000;
        if (pathBound < bound) [bound, boundPath] = [pathBound, path];
      }
      if (progressed) {
        // A path that was decoding already bounds the gap; otherwise the sampler's view does.
        if (Number.isFinite(bound)) this.raise(bound, boundPath, identity);
        else this.raise(now - seen.progressAt, 'between-samples', identity);
        seen.progressAt = now;
      }
      seen.paths = paths;
    }
    this.lastProgressed = progressedByPath;
    this.samples++;
  }
}
