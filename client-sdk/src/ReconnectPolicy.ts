/** What a reconnect policy sees when deciding the next delay. */
export interface ReconnectContext {
  /** Attempts made so far in this outage (0 before the first). */
  retryCount: number;
  /** Milliseconds since the connection was lost. */
  elapsedMs: number;
  /** Why the connection was lost. */
  reason: string;
}

/** Decides how long to wait before the next reconnect attempt; null stops reconnecting. */
export interface ReconnectPolicy {
  nextRetryDelayInMs(context: ReconnectContext): number | null;
}

/** LiveKit's schedule: 0, 300, 1200, 2700, 4800 ms, then 7000 ms with jitter, up to a total time. */
export class DefaultReconnectPolicy implements ReconnectPolicy {
  constructor(
    private readonly delays: readonly number[] = [0, 300, 1200, 2700, 4800],
    private readonly steadyDelayMs = 7000,
    private readonly maxElapsedMs = 5 * 60_000,
    private readonly random: () => number = Math.random,
  ) {}

  nextRetryDelayInMs({ retryCount, elapsedMs }: ReconnectContext): number | null {
    if (elapsedMs > this.maxElapsedMs) return null;
    const base = this.delays[retryCount] ?? this.steadyDelayMs;
    // Jitter after the first attempts spreads a thundering herd after a server restart.
    return retryCount === 0 ? base : Math.round(base + this.random() * 1000);
  }
}
