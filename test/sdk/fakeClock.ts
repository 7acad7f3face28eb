import type { Cancel, Clock } from '../../client-sdk/src/clock.js';

/** Lets the promise chains a timer started run to their end (fakes answer at once). */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A clock whose time moves only when a test advances it. */
export class FakeClock implements Clock {
  private time = 0;
  private nextId = 0;
  private readonly timers = new Map<number, { at: number; every: number | null; run: () => void }>();

  now(): number {
    return this.time;
  }

  delay(ms: number, run: () => void): Cancel {
    return this.schedule(ms, null, run);
  }

  repeat(ms: number, run: () => void): Cancel {
    if (ms <= 0) throw new Error('FakeClock.repeat needs a positive period');
    return this.schedule(ms, ms, run);
  }

  /** Timers scheduled and not yet run or cancelled. */
  get pending(): number {
    return this.timers.size;
  }

  /**
   * Moves time forward by `ms`, running every timer that falls due in time order (creation
   * order at the same time), and letting the work each one started settle before the next.
   */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers].filter(([, timer]) => timer.at <= end).sort(([idA, a], [idB, b]) => a.at - b.at || idA - idB)[0];
      if (!due) break;
      const [id, timer] = due;
      this.time = timer.at;
      if (timer.every === null) this.timers.delete(id);
      else timer.at += timer.every;
      timer.run();
      await settle();
    }
    this.time = end;
    await settle();
  }

  private schedule(ms: number, every: number | null, run: () => void): Cancel {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, every, run });
    return () => {
      this.timers.delete(id);
    };
  }
}
