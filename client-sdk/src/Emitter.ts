/** A small typed emitter for browsers and Node; a throwing listener cannot break the others. */
export class Emitter<Callbacks extends { [K in keyof Callbacks]: (...args: never[]) => void }> {
  private readonly listeners = new Map<keyof Callbacks, Set<Callbacks[keyof Callbacks]>>();

  on<E extends keyof Callbacks>(event: E, listener: Callbacks[E]): this {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return this;
  }

  once<E extends keyof Callbacks>(event: E, listener: Callbacks[E]): this {
    const wrapper = ((...args: Parameters<Callbacks[E]>) => {
      this.off(event, wrapper);
      (listener as (...a: Parameters<Callbacks[E]>) => void)(...args);
    }) as Callbacks[E];
    return this.on(event, wrapper);
  }

  off<E extends keyof Callbacks>(event: E, listener: Callbacks[E]): this {
    this.listeners.get(event)?.delete(listener);
    return this;
  }

  protected emit<E extends keyof Callbacks>(event: E, ...args: Parameters<Callbacks[E]>): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as (...a: Parameters<Callbacks[E]>) => void)(...args);
      } catch (error) {
        console.error(`switchboard: a "${String(event)}" listener threw`, error);
      }
    }
  }

  removeAllListeners(): void {
    this.listeners.clear();
  }
}
