import type { RoomMode } from '../protocol/events.js';

/** How a migration went, as this client saw it. */
export interface MigrationReport {
  to: RoomMode;
  /** From mode_changed to the old topology closed. */
  durationMs: number;
  /** The longest time any remote participant's video decoded no new frame during the migration. */
  mediaGapMs: number;
}

type Sampler = () => Promise<Map<string, { framesDecoded: number }>>;

/** Samples decoded video frames per remote participant every 100 ms while a migration runs. */
export class MigrationMonitor {
  private readonly started = Date.now();
  private readonly lastProgress = new Map<string, { frames: number; at: number }>();
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
      for (const [identity, { framesDecoded }] of await this.sample()) {
        const last = this.lastProgress.get(identity);
        if (!last || framesDecoded > last.frames) {
          if (last) this.maxGapMs = Math.max(this.maxGapMs, now - last.at);
          // Before the first frame there is nothing to measure a gap against.
          if (framesDecoded > 0) this.lastProgress.set(identity, { frames: framesDecoded, at: now });
        } else {
          this.maxGapMs = Math.max(this.maxGapMs, now - last.at);
        }
      }
    } catch {
      // A sample during teardown can fail; the next one counts.
    } finally {
      this.sampling = false;
    }
  }
}
