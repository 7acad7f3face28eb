import type { Logger } from './logger.js';

type EventMap = Record<string, unknown[]>;
type Listener<Args extends unknown[]> = (...args: Args) => void;

/**
 * A minimal typed event emitter whose listeners cannot break the emitter: a throwing
 * listener is logged and the remaining listeners still run (mediasoup's safeEmit).
 */
export class TypedEmitter<Events extends EventMap> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  constructor(private readonly listenerErrorLogger?: Logger) {}

  on<E extends keyof Events>(event: E, listener: Listener<Events[E]>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  emit<E extends keyof Events>(event: E, ...args: Events[E]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<Events[E]>)(...args);
      } catch (error) {
        this.listenerErrorLogger?.error({ err: error, event: String(event) }, 'event listener threw');
      }
    }
  }

  removeAllListeners(): void {
    this.listeners.clear();
  }
}
