import type { Config } from '../../config/index.js';
import type { Logger } from '../logger.js';
import { MemoryStore } from './MemoryStore.js';
import type { Store, StoreOptions } from './Store.js';

export type * from './Store.js';
export { MemoryStore } from './MemoryStore.js';

/** The store's tuning from config: token records outlive exp by the clock tolerance; three missed heartbeats make a session stale. */
export function storeOptionsOf(config: Pick<Config, 'auth' | 'sessions'>): Required<StoreOptions> {
  return { tokenGraceMs: config.auth.clockToleranceS * 1000, sessionStaleMs: config.sessions.staleAfterMs };
}

/** MongoDB when MONGODB_URI is set, else the in-memory store. mongoose loads only when used. */
export async function createStore(config: Pick<Config, 'store' | 'auth' | 'sessions'>, logger?: Logger): Promise<Store> {
  const options = storeOptionsOf(config);
  if (config.store.mongodbUri) {
    const { MongoStore } = await import('./MongoStore.js');
    return new MongoStore(config.store.mongodbUri, { ...options, logger });
  }
  return new MemoryStore(options);
}
