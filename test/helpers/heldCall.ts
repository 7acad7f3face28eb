/**
 * Holds one call of a store method open until the test releases it: the round trip a remote
 * store (MongoDB) takes between a read and what the caller does with it, stretched so a test
 * can act inside that window. The in-memory store answers within the same turn, so without
 * this nothing else could run there.
 */
export interface HeldCall {
  /** Resolves when the held call arrived (before the store saw it, or after it answered: see holdNextCall). */
  readonly reached: Promise<void>;
  /** Lets the held call through to the store. */
  release(): void;
}

/**
 * Holds the next call of `target[method]` whose arguments match; later calls pass straight
 * through. With `answered`, the store runs the call at once and its answer is held (a read
 * whose reply is on its way back); otherwise the call reaches the store on release (a write
 * still on its way there).
 */
export function holdNextCall<T extends object, K extends keyof T>(
  target: T,
  method: K,
  matches: (...args: unknown[]) => boolean = () => true,
  answered = false,
): HeldCall {
  const original = target[method] as unknown as (...args: unknown[]) => Promise<unknown>;
  let arrived!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((resolve) => (arrived = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  let taken = false;
  (target as Record<K, unknown>)[method] = async (...args: unknown[]) => {
    if (taken || !matches(...args)) return original.apply(target, args);
    taken = true;
    const answer = answered ? original.apply(target, args) : undefined;
    arrived();
    await released;
    return answer ?? original.apply(target, args);
  };
  return { reached, release };
}
