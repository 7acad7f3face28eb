/** Cancels a scheduled run; calling it again does nothing. */
export type Cancel = () => void;

/** Time and timers, injectable so the protocol modules run under a test's clock. */
export interface Clock {
  now(): number;
  /** Runs `run` once after `ms`. */
  delay(ms: number, run: () => void): Cancel;
  /** Runs `run` every `ms`; `background` timers do not keep a Node process alive. */
  repeat(ms: number, run: () => void, options?: { background?: boolean }): Cancel;
}

/** The real clock: Date.now and the global timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  delay(ms, run) {
    const timer = setTimeout(run, ms);
    return () => clearTimeout(timer);
  },
  repeat(ms, run, options) {
    const timer = setInterval(run, ms);
    if (options?.background) (timer as { unref?: () => void }).unref?.();
    return () => clearInterval(timer);
  },
};
