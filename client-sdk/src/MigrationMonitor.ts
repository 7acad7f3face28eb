import type { RoomMode } from '../protocol/events.js';

/** How a migration went, as this client saw it. */
export interface MigrationReport {
  to: RoomMode;
  /** From mode_changed to the old topology closed. */
  durationMs: number;
  /** The longest time any remote participant's video decoded no new frame during the migration. */
  mediaGapMs: number;
}

/** Decoded video frames per remote participant, per path (mesh link, SFU consumers). */
type Sampler = () => Promise<Map<string, { framesByPath: Record<string, number> }>>;

/**
 * Samples decoded video frames per remote participant every 100 ms while a migration runs.
 * A participant's video progresses when the frame counter of any path rises: a path that stops
 * (the mesh link retired) or restarts from zero (a new consumer) is not a gap by itself.
 */
export class MigrationMonitor {
  private readonly started = Date.now();
  private readonly lastProgress = new Map<string, { frames: Record<string, number>; at: number }>();
  private maxGapMs = 0;
  private readonly timer: ReturnType<typeof setInterval>;
  private sampling = false;

  constructor(
    readonly to: RoomMode,
    private readonly sample: Sampler,
  ) {
    this.timer = setInterval(() => void this.tick(), 100);
  }

  async finish(): Promise<MigrationReport> {
    clearInterval(this.timer);
    await this.tick();
    return { to: this.to, durationMs: Date.now() - this.started, mediaGapMs: this.maxGapMs };
  }

  private async tick(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const now = Date.now();
      for (const [identity, { framesByPath }] of await this.sample()) {
        const last = this.lastProgress.get(identity);
        if (!last) {
          // Before the first frame there is nothing to measure a gap against.
          if (Object.values(framesByPath).some((f) => f > 0)) this.lastProgress.set(identity, { frames: { ...framesByPath }, at: now });
          continue;
        }
        const progressed = Object.entries(framesByPath).some(([path, frames]) => frames > (last.frames[path] ?? 0));
        this.maxGapMs = Math.max(this.maxGapMs, now - last.at);
        last.frames = { ...framesByPath };
        if (progressed) last.at = now;
      }
    } catch {
      // A sample during teardown can fail; the next one counts.
    } finally {
      this.sampling = false;
    }
  }
}
