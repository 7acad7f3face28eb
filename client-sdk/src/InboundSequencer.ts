/**
 * Per-sender ordering and de-duplication of data messages. During a migration a message may
 * arrive twice (mesh and SFU) and out of order across the two paths; reliable messages are
 * delivered exactly once in sequence order, lossy ones at most once.
 */
export class InboundSequencer<T> {
  private readonly senders = new Map<string, SenderState<T>>();

  constructor(
    /**
     * How long a gap may hold back later messages before they are delivered anyway: the last
     * resort when no sync fills it (the sender vanished, or kept ignoring us).
     */
    private readonly gapTimeoutMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Accepts a message; calls deliver for every message now deliverable, in order. */
  accept(sender: string, seq: number, reliable: boolean, message: T, deliver: (message: T) => void): void {
    let state = this.senders.get(sender);
    if (!state) {
      state = { expected: reliable ? seq : 1, buffer: new Map(), gapSince: null, lossySeen: new Set(), lossyOrder: [] };
      this.senders.set(sender, state);
    }
    if (!reliable) {
      if (state.lossySeen.has(seq)) return;
      state.lossySeen.add(seq);
      state.lossyOrder.push(seq);
      if (state.lossyOrder.length > 1024) state.lossySeen.delete(state.lossyOrder.shift() as number);
      deliver(message);
      return;
    }
    if (seq < state.expected || state.buffer.has(seq)) return; // a copy from the other path
    state.buffer.set(seq, message);
    if (seq !== state.expected && state.gapSince === null) state.gapSince = this.now();
    this.drain(state, deliver);
    this.expireGap(state, deliver);
  }

  /**
   * Delivers what holes older than the gap timeout hold back, for every sender: called on a
   * timer, so a sender that went quiet after a hole does not keep its last messages back.
   */
  expire(deliver: (message: T) => void): void {
    for (const state of this.senders.values()) this.expireGap(state, deliver);
  }

  /**
   * Delivers everything held back from a sender, in order, skipping the holes (it left: nobody
   * can fill them any more). Its sequence goes on from there, so a sender that comes back with
   * the same epoch is neither replayed nor held back.
   */
  release(sender: string, deliver: (message: T) => void): void {
    const state = this.senders.get(sender);
    while (state && state.buffer.size > 0) this.skipHole(state, deliver);
  }

  /** The next sequence number expected from a sender, or null before its first reliable message. */
  expected(sender: string): number | null {
    return this.senders.get(sender)?.expected ?? null;
  }

  /** Makes a new sender's reliable sequence start at `seq` rather than at its first message seen. */
  expectFrom(sender: string, seq: number): void {
    if (!this.senders.has(sender))
      this.senders.set(sender, { expected: seq, buffer: new Map(), gapSince: null, lossySeen: new Set(), lossyOrder: [] });
  }

  /**
   * Senders whose reliable sequence has had a hole for at least minAgeMs: the first missing
   * number and the first number held back after it (the hole is [expected, next)).
   */
  gaps(minAgeMs: number): Array<{ sender: string; expected: number; next: number }> {
    const now = this.now();
    const found: Array<{ sender: string; expected: number; next: number }> = [];
    for (const [sender, state] of this.senders) {
      if (state.gapSince !== null && now - state.gapSince >= minAgeMs)
        found.push({ sender, expected: state.expected, next: Math.min(...state.buffer.keys()) });
    }
    return found;
  }

  /**
   * Gives up on the sender's messages before `seq` (it no longer holds them): what is held back
   * from there is delivered in order, the holes skipped.
   */
  skipTo(sender: string, seq: number, deliver: (message: T) => void): void {
    const state = this.senders.get(sender);
    if (!state || state.expected >= seq) return;
    for (; state.expected < seq; state.expected++) {
      const held = state.buffer.get(state.expected);
      if (held === undefined) continue;
      state.buffer.delete(state.expected);
      deliver(held);
    }
    state.gapSince = null;
    this.drain(state, deliver);
  }

  private expireGap(state: SenderState<T>, deliver: (message: T) => void): void {
    // A message was lost for good (both paths failed); do not hold the rest back forever.
    if (state.buffer.size > 0 && state.gapSince !== null && this.now() - state.gapSince > this.gapTimeoutMs) this.skipHole(state, deliver);
  }

  /** Gives up on the first hole: delivers from the oldest message held back on. */
  private skipHole(state: SenderState<T>, deliver: (message: T) => void): void {
    state.expected = Math.min(...state.buffer.keys());
    this.drain(state, deliver);
  }

  private drain(state: SenderState<T>, deliver: (message: T) => void): void {
    for (let next = state.buffer.get(state.expected); next !== undefined; next = state.buffer.get(state.expected)) {
      state.buffer.delete(state.expected);
      state.expected++;
      deliver(next);
    }
    state.gapSince = state.buffer.size > 0 ? (state.gapSince ?? this.now()) : null;
  }
}

interface SenderState<T> {
  expected: number;
  buffer: Map<number, T>;
  /** When the oldest unfilled gap appeared; null without a gap. */
  gapSince: number | null;
  lossySeen: Set<number>;
  lossyOrder: number[];
}
