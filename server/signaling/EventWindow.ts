/**
 * The per-socket event limit, counted synchronously: `points` events per fixed window of
 * `durationMs`, the window opening at the first event after the previous one ended. These are
 * the semantics of rate-limiter-flexible's RateLimiterMemory as the gateway used it (consume one
 * point per event; refused once more than `points` were consumed in the window; refused events
 * count too), without its promise per event, which was 1.2% of the relay's busy time.
 * test/signaling/eventWindow.test.ts runs the same event times through both.
 *
 * One instance per socket, held by the socket's middleware closure, so it goes away with the
 * socket (nothing to delete on disconnect).
 */
export class EventWindow {
  private consumed = 0;
  private endsAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly points: number,
    private readonly durationMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one event; false when it is over the window's budget (refuse it). */
  take(): boolean {
    const now = this.now();
    if (now >= this.endsAt) {
      this.endsAt = now + this.durationMs;
      this.consumed = 0;
    }
    this.consumed += 1;
    return this.consumed <= this.points;
  }
}
