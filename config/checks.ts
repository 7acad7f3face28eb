/**
 * Problems no single setting shows: what production refuses, a STORE without its URL, ranges
 * whose ends are two settings, ports two services would both listen on, and TURN's TLS files.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
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
 * must exist and not be PORT, METRICS_PORT, the TURN ports or the TURN relay range, or a worker
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
  const tlsPort = turn.enabled && turnTlsConfigured(turn) ? turn.tlsPort : 0;
  if (last > 65535) problems.push({ setting: 'SFU_PORT', message: `${ports}: SFU_PORT + SFU_WORKERS - 1 must not exceed 65535` });
  if (taken(http.port)) problems.push({ setting: 'SFU_PORT', message: `${ports} ${include} PORT ${http.port}` });
  if (taken(observability.metricsPort))
    problems.push({ setting: 'SFU_PORT', message: `${ports} ${include} METRICS_PORT ${observability.metricsPort}` });
  if (turn.enabled && turn.port !== 0 && first <= turn.port + turn.workers - 1 && last >= turn.port)
    problems.push({ setting: 'SFU_PORT', message: `${ports} ${include} ${turnPorts(turn)}` });
  if (taken(tlsPort)) problems.push({ setting: 'SFU_PORT', message: `${ports} ${include} TURN_TLS_PORT ${tlsPort}` });
  if (turn.enabled && first <= turn.maxPort && last >= turn.minPort)
    problems.push({
      setting: 'SFU_PORT',
      message: `${ports} ${first === last ? 'is in' : 'overlap'} the TURN relay range TURN_MIN_PORT..TURN_MAX_PORT (${turn.minPort}..${turn.maxPort})`,
    });
  return problems;
}

/** Whether TURN over TLS is asked for (either file named; turnTlsProblems requires both). */
export function turnTlsConfigured(turn: Pick<ParsedSettings['turn'], 'tlsCert' | 'tlsKey'>): boolean {
  return turn.tlsCert !== undefined || turn.tlsKey !== undefined;
}

/** "TURN_PORT 3478", or "TURN_PORT..TURN_PORT+TURN_WORKERS-1 (3478..3479)" with several relay workers. */
function turnPorts(turn: Pick<ParsedSettings['turn'], 'port' | 'workers'>): string {
  return turn.workers === 1
    ? `TURN_PORT ${turn.port}`
    : `TURN_PORT..TURN_PORT+TURN_WORKERS-1 (${turn.port}..${turn.port + turn.workers - 1})`;
}

/**
 * The bundled TURN server's ports: relay worker i listens on TURN_PORT + i (UDP, and TCP with
 * TURN_TCP), so TURN_PORT..TURN_PORT+TURN_WORKERS-1 must exist, stay out of the relay range
 * with several workers (one could find its port taken by another's relay socket), and over TCP not be PORT or
 * METRICS_PORT; TURN_TLS_PORT (TLS on) must not be any of those TCP ports. UDP and TCP share
 * each number on purpose, as coturn does.
 */
export function turnPortProblems({ http, observability, turn }: Pick<ParsedSettings, 'http' | 'observability' | 'turn'>): Problem[] {
  if (!turn.enabled) return [];
  const problems: Problem[] = [];
  const first = turn.port;
  const last = turn.port + turn.workers - 1;
  const inRange = (port: number): boolean => first !== 0 && port !== 0 && port >= first && port <= last;
  if (first !== 0 && last > 65535)
    problems.push({ setting: 'TURN_WORKERS', message: `${turnPorts(turn)}: TURN_PORT + TURN_WORKERS - 1 must not exceed 65535` });
  // One worker never binds its own port as a relay port; several could take each other's at boot.
  if (first !== 0 && turn.workers > 1 && first <= turn.maxPort && last >= turn.minPort)
    problems.push({
      setting: 'TURN_PORT',
      message: `${turnPorts(turn)} overlaps the relay range TURN_MIN_PORT..TURN_MAX_PORT (${turn.minPort}..${turn.maxPort})`,
    });
  const others: Array<[string, number]> = [
    ['PORT', http.port],
    ['METRICS_PORT', observability.metricsPort],
  ];
  if (turn.tcp)
    for (const [name, port] of others)
      if (inRange(port))
        problems.push({
          setting: 'TURN_PORT',
          message:
            turn.workers === 1
              ? `TCP port ${first} is also ${name} (set TURN_TCP=false for UDP only)`
              : `TCP ${turnPorts(turn)} include ${name} ${port} (set TURN_TCP=false for UDP only)`,
        });
  if (turnTlsConfigured(turn) && turn.tlsPort !== 0) {
    for (const [name, port] of others)
      if (port === turn.tlsPort) problems.push({ setting: 'TURN_TLS_PORT', message: `${turn.tlsPort} is also ${name}` });
    if (turn.tcp && inRange(turn.tlsPort))
      problems.push({
        setting: 'TURN_TLS_PORT',
        message: `${turn.tlsPort} is also ${turn.workers === 1 ? 'TURN_PORT' : turnPorts(turn)} (TURN over TCP)`,
      });
  }
  return problems;
}

/**
 * TURN over TLS: both files named, readable, a PEM certificate and a PEM private key that belong
 * together (checked at boot, so a typo stops the server with the file named, not a TLS error
 * at the first client). Expiry is a warning (turnTlsWarnings): the relay still serves.
 */
export function turnTlsProblems({ turn }: Pick<ParsedSettings, 'turn'>): Problem[] {
  if (!turn.enabled || !turnTlsConfigured(turn)) return [];
  if (turn.tlsCert === undefined)
    return [{ setting: 'TURN_TLS_CERT', message: 'required with TURN_TLS_KEY (TURN over TLS needs both files)' }];
  if (turn.tlsKey === undefined)
    return [{ setting: 'TURN_TLS_KEY', message: 'required with TURN_TLS_CERT (TURN over TLS needs both files)' }];
  const problems: Problem[] = [];
  const cert = readPem('TURN_TLS_CERT', turn.tlsCert, problems);
  const key = readPem('TURN_TLS_KEY', turn.tlsKey, problems);
  if (cert === undefined || key === undefined) return problems;
  try {
    new X509Certificate(cert);
  } catch (error) {
    problems.push({ setting: 'TURN_TLS_CERT', message: `${turn.tlsCert} is not a PEM certificate (${(error as Error).message})` });
  }
  try {
    createPrivateKey(key);
  } catch (error) {
    problems.push({ setting: 'TURN_TLS_KEY', message: `${turn.tlsKey} is not a PEM private key (${(error as Error).message})` });
  }
  if (problems.length > 0) return problems;
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    problems.push({ setting: 'TURN_TLS_KEY', message: `${turn.tlsKey} does not go with ${turn.tlsCert} (${(error as Error).message})` });
  }
  return problems;
}

/** A certificate past its end date boots (clients that check it will refuse it): said at boot. */
export function turnTlsWarnings({ turn }: Pick<ParsedSettings, 'turn'>): string[] {
  if (!turn.enabled || turn.tlsCert === undefined || turn.tlsKey === undefined) return [];
  const validTo = new Date(new X509Certificate(readFileSync(turn.tlsCert)).validTo);
  return validTo.getTime() < Date.now()
    ? [`TURN_TLS_CERT ${turn.tlsCert} expired on ${validTo.toISOString()}: clients that check it refuse turns: URLs`]
    : [];
}

function readPem(setting: string, path: string, problems: Problem[]): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    problems.push({ setting, message: `cannot read ${path}: ${code ?? message}` });
    return undefined;
  }
}
