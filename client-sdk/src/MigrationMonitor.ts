import type { RoomMode } from '../../protocol/events.js';
import { VideoGapMeter, type FreezeSummary, type GapSource, type VideoSample } from './VideoGapMeter.js';

/** How a migration went, as this client saw it. */
export interface MigrationReport {
  to: RoomMode;
  /** From mode_changed to the old topology closed. */
  durationMs: number;
  /**
   * The longest time any remote participant's video decoded no new frame, from mode_changed
   * until every participant's video runs on the new topology (or 20 s after the old one closed).
   */
  mediaGapMs: number;
  /** What measured `mediaGapMs` (see GapSource): which path stalled, or a hand-over between paths. */
  mediaGapFrom: GapSource;
  /**
   * Whose video it was: the remote participant's identity ('' when no gap). A participant who
   * joined during the migration (the one who caused a promotion) counts from their first frame.
   */
  mediaGapOf: string;
  /**
   * The browser's freeze counters (inbound-rtp freezeCount, totalFreezesDuration) over the same
   * window, summed over participants and paths: a second view of the gap that needs no bound.
   */
  freezes: FreezeSummary;
  /** The same, per path ('mesh', 'sfu'). */
  freezesByPath: Record<string, FreezeSummary>;
}

/** After the old topology closed, how long to wait for every video to run on the new one. */
const SETTLE_CAP_MS = 20_000;

/** Watches one migration: its duration and the largest video gap it caused. */
export class MigrationMonitor {
  private readonly started = Date.now();
  private readonly meter: VideoGapMeter;

  constructor(
    readonly to: RoomMode,
    sample: () => Promise<VideoSample>,
  ) {
    this.meter = new VideoGapMeter(sample);
  }

  /**
   * The old topology is closed: the migration's duration ends here, the gap measurement once
   * every video runs on the new path (a forced end can leave some still starting).
   */
  async finish(): Promise<MigrationReport> {
    const durationMs = Date.now() - this.started;
    await this.meter.flowingOn(this.to, SETTLE_CAP_MS);
    const mediaGapMs = await this.meter.finish();
    return {
      to: this.to,
      durationMs,
      mediaGapMs,
      mediaGapFrom: this.meter.largestFrom,
      mediaGapOf: this.meter.largestOf,
      freezes: this.meter.freezes,
      freezesByPath: this.meter.freezesByPath,
    };
  }
}
