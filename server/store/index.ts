import type { Config } from '../../config/index.js';
import type { Logger } from '../logger.js';
import { MemoryStore } from './MemoryStore.js';
import { RedisStore } from './RedisStore.js';
import type { Store, StoreOptions } from './Store.js';

export type * from './Store.js';
export { MemoryStore } from './MemoryStore.js';

/** The store's tuning from config: token records outlive exp by the clock tolerance; three missed heartbeats make a session stale. */
export function storeOptionsOf(config: Pick<Config, 'auth' | 'sessions'>): Required<StoreOptions> {
  return { tokenGraceMs: config.auth.clockToleranceS * 1000, sessionStaleMs: config.sessions.staleAfterMs };
}

/**
 * The store config.store.kind names (STORE, else MongoDB with MONGODB_URI, else Redis with
 * REDIS_URL, else in memory); the config has checked that the chosen store's URL is set.
 * mongoose loads only when used. The Redis store is imported statically: its errors are then
 * the server's AppError under any loader (tsx loads a test's static imports as CommonJS and
 * dynamic ones as ESM, two module instances).
 */
export async function createStore(config: Pick<Config, 'store' | 'auth' | 'sessions'>, logger?: Logger): Promise<Store> {
  const options = storeOptionsOf(config);
  const { kind, mongodbUri, redisUrl } = config.store;
  if (kind === 'mongodb') {
    if (!mongodbUri) throw new Error('[createStore] STORE=mongodb needs MONGODB_URI');
    const { MongoStore } = await import('./MongoStore.js');
    return new MongoStore(mongodbUri, { ...options, logger, migrateIndexes: config.store.mongodbMigrate });
  }
  if (kind === 'redis') {
    if (!redisUrl) throw new Error('[createStore] STORE=redis needs REDIS_URL');
    return new RedisStore(redisUrl, { ...options, logger });
  }
  return new MemoryStore(options);
}
