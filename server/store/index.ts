import type { Config } from '../../config/index.js';
import { MemoryStore } from './MemoryStore.js';
import type { Store } from './Store.js';

export type * from './Store.js';
export { MemoryStore } from './MemoryStore.js';

/** MongoDB when MONGODB_URI is set, else the in-memory store. mongoose loads only when used. */
export async function createStore(config: Pick<Config, 'store'>): Promise<Store> {
  if (config.store.mongodbUri) {
    const { MongoStore } = await import('./MongoStore.js');
    return new MongoStore(config.store.mongodbUri);
  }
  return new MemoryStore();
}
