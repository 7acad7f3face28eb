/**
 * Events per key in fixed windows, checked synchronously: what TURN_TLS_HANDSHAKES_PER_MIN
 * holds each client IP to on the relay worker that serves TLS (the only one), before the
 * handshake's CPU is spent. A window holds at most `maxKeys` keys; past that, new keys are not
 * counted and are let through (the per-IP connection cap and the total still hold them), so a
 * flood of addresses neither grows the memory nor locks out addresses not seen yet.
 */
export class WindowCounter {
  private readonly counts = new Map<string, number>();
  private windowStart: number;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly maxKeys: number,
    private readonly now: () => number = Date.now,
  ) {
    this.windowStart = now();
  }

  /** Counts one event for `key`; false (not counted) when `key` already had `limit` in this window. */
  take(key: string): boolean {
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) {
      this.counts.clear();
      this.windowStart = now;
    }
    const count = this.counts.get(key) ?? 0;
    if (count >= this.limit) return false;
    if (count === 0 && this.counts.size >= this.maxKeys) return true;
    this.counts.set(key, count + 1);
    return true;
  }

  /** Keys counted in the current window. */
  get size(): number {
    return this.counts.size;
  }
}
