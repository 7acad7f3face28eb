/** Problems no single setting shows: what production refuses, a STORE without its URL, and ranges whose ends are two settings. */
import type { ParsedSettings } from './sections/index.js';
import { selectedStore } from './sections/store.js';

export interface Problem {
  /** The setting the problem is reported under. */
  setting: string;
  message: string;
}

/**
 * Production does not start on development conveniences: it needs signing keys, a TURN secret
 * (TURN on), named browser origins, and, where a Redis is configured, records kept in it.
 */
export function productionRefusals({
  server,
  http,
  auth,
  turn,
  store,
}: Pick<ParsedSettings, 'server' | 'http' | 'auth' | 'turn' | 'store'>): Problem[] {
  if (server.nodeEnv !== 'production') return [];
  const problems: Problem[] = [];
  if (!auth.signingKeys)
    problems.push({ setting: 'SIGNING_KEYS', message: 'required when NODE_ENV=production ("kid:secret,kid:secret", secrets >= 32 bytes)' });
  if (!turn.secret && turn.enabled)
    problems.push({ setting: 'TURN_SECRET', message: 'required when NODE_ENV=production and TURN_ENABLED=true' });
  if (http.corsOrigins.includes('*')) problems.push({ setting: 'CORS_ORIGINS', message: '"*" is not allowed when NODE_ENV=production' });
  if (store.redisUrl && selectedStore(store) === 'memory')
    problems.push({
      setting: 'STORE',
      message:
        'memory is not allowed when NODE_ENV=production and REDIS_URL is set: records would live in one process only; use STORE=redis',
    });
  return problems;
}

/** Production on the in-memory store boots (one node, nothing to keep), but says what it loses. */
export function storeWarnings({ server, store }: Pick<ParsedSettings, 'server' | 'store'>): string[] {
  if (server.nodeEnv !== 'production' || selectedStore(store) !== 'memory') return [];
  return [
    'NODE_ENV=production on the in-memory store: tenants, rooms, revocations and sessions live in this process only and are lost at restart; set MONGODB_URI (or REDIS_URL) for a persistent store',
  ];
}

/** STORE names a store whose URL is set. */
export function storeSelectionProblems({ store }: Pick<ParsedSettings, 'store'>): Problem[] {
  if (store.kind === 'mongodb' && !store.mongodbUri)
    return [{ setting: 'STORE', message: 'mongodb needs MONGODB_URI (mongodb:// or mongodb+srv://)' }];
  if (store.kind === 'redis' && !store.redisUrl) return [{ setting: 'STORE', message: 'redis needs REDIS_URL (redis:// or rediss://)' }];
  return [];
}

/** Each port range's lower end does not exceed its upper end; METRICS_PORT is not PORT. */
export function portRangeProblems({
  http,
  observability,
  turn,
  sfu,
}: Pick<ParsedSettings, 'http' | 'observability' | 'turn' | 'sfu'>): Problem[] {
  const problems: Problem[] = [];
  // /metrics beside the API is METRICS_PORT=0; the same number would be a second listener on PORT.
  if (observability.metricsPort !== 0 && observability.metricsPort === http.port)
    problems.push({ setting: 'METRICS_PORT', message: 'must differ from PORT (0 serves /metrics on PORT)' });
  if (turn.minPort > turn.maxPort) problems.push({ setting: 'TURN_MIN_PORT', message: 'must not exceed TURN_MAX_PORT' });
  if (sfu.minPort > sfu.maxPort) problems.push({ setting: 'SFU_MIN_PORT', message: 'must not exceed SFU_MAX_PORT' });
  return problems;
}

/**
 * Single-port media (SFU_PORT > 0) takes SFU_PORT..SFU_PORT+SFU_WORKERS-1, UDP and TCP: they
 * must exist and not be PORT, METRICS_PORT, the TURN port or the TURN relay range, or a worker
 * would fail to bind at boot (or, worse, take a port the other service needs later).
 */
export function sfuPortProblems({
  sfu,
  turn,
  http,
  observability,
}: Pick<ParsedSettings, 'sfu' | 'turn' | 'http' | 'observability'>): Problem[] {
  if (!sfu.enabled || sfu.port === 0) return [];
  const first = sfu.port;
  const last = sfu.port + sfu.workers - 1;
  const ports = first === last ? `port ${first}` : `ports ${first}..${last} (one per SFU worker)`;
  const taken = (port: number) => port !== 0 && port >= first && port <= last;
  const include = first === last ? 'is also' : 'include';
  const problems: Problem[] = [];
  if (last > 65535) problems.push({ setting: 'SFU_PORT', message: `${ports}: SFU_PORT + SFU_WORKERS - 1 must not exceed 65535` });
  if (taken(http.port)) problems.push({ setting: 'SFU_PORT', message: `${ports} ${include} PORT ${http.port}` });
  if (taken(observability.metricsPort))
    problems.push({ setting: 'SFU_PORT', message: `${ports} ${include} METRICS_PORT ${observability.metricsPort}` });
  if (turn.enabled && taken(turn.port)) problems.push({ setting: 'SFU_PORT', message: `${ports} ${include} TURN_PORT ${turn.port}` });
  if (turn.enabled && first <= turn.maxPort && last >= turn.minPort)
    problems.push({
      setting: 'SFU_PORT',
      message: `${ports} ${first === last ? 'is in' : 'overlap'} the TURN relay range TURN_MIN_PORT..TURN_MAX_PORT (${turn.minPort}..${turn.maxPort})`,
    });
  return problems;
}
