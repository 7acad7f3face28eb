import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as SocketIoServer } from 'socket.io';
import type { IceServer } from '../client-sdk/protocol/events.js';
import type { Config } from '../config/index.js';
import { TokenService } from './auth/TokenService.js';
import { createHttpApp } from './http/app.js';
import { originChecker } from './http/origins.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './Metrics.js';
import { RoomManager } from './rooms/RoomManager.js';
import { SignalingGateway } from './signaling/SignalingGateway.js';
import type { AppServer } from './signaling/types.js';
import { createStore } from './store/index.js';
import type { Store } from './store/Store.js';

export interface CreateServerOptions {
  /** Defaults to a pino logger at config.logLevel on stdout. */
  logger?: Logger;
  /** Defaults to the store selected by config (memory, or MongoDB with MONGODB_URI). */
  store?: Store;
}

/** A running Switchboard: its address, its services (for tests and embedding), and close(). */
export interface SwitchboardServer {
  readonly url: string;
  readonly port: number;
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly httpServer: HttpServer;
  readonly io: AppServer;
  readonly store: Store;
  readonly tokens: TokenService;
  readonly rooms: RoomManager;
  readonly gateway: SignalingGateway;
  readonly metrics: Metrics;
  /** Graceful shutdown: /ready turns false, peers are told, everything closes by the deadline. Idempotent. */
  close(): Promise<void>;
}

/** The one place that builds and wires every service. */
export async function createServer(config: Readonly<Config>, options: CreateServerOptions = {}): Promise<SwitchboardServer> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const store = options.store ?? (await createStore(config));
  await store.init();
  for (const declared of config.tenants) {
    if (await store.tenants.get(declared.tenant_id)) continue;
    await store.tenants.create({
      tenant_id: declared.tenant_id,
      name: declared.name ?? declared.tenant_id,
      api_key: declared.api_key,
      api_secret_sha256: declared.api_secret_sha256,
      limits: { ...config.defaultTenantLimits, ...declared.limits },
      webhook: null,
      created_at: new Date(),
    });
  }

  const tokens = new TokenService({
    keys: config.auth.signingKeys,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    clockToleranceS: config.auth.clockToleranceS,
    maxLifetimeS: config.auth.maxTokenLifetimeS,
  });

  let shuttingDown = false;
  const metrics = new Metrics();
  const app = createHttpApp({
    config,
    logger,
    metrics,
    readiness: async () => {
      const storeOk = await store.ping().catch(() => false);
      const checks = { store: storeOk, accepting: !shuttingDown };
      return { ready: storeOk && !shuttingDown, checks };
    },
  });
  const httpServer = createHttpServer(app);

  const originAllowed = originChecker(config.http.corsOrigins);
  const io: AppServer = new SocketIoServer(httpServer, {
    serveClient: false,
    maxHttpBufferSize: config.socket.maxPayloadBytes,
    pingInterval: config.socket.pingIntervalMs,
    pingTimeout: config.socket.pingTimeoutMs,
    cors: { origin: (origin, callback) => callback(null, originAllowed(origin)) },
    // Refused before any Socket.IO work: foreign browser origins (403).
    allowRequest: (req, callback) => callback(null, originAllowed(req.headers.origin)),
  });

  const rooms = new RoomManager({ io, store, defaults: config.rooms, logger });
  metrics.observeRooms(rooms);
  const iceServers = (_userId: string): IceServer[] => config.turn.stunUrls.map((urls) => ({ urls }));
  const gateway = new SignalingGateway({ io, config, tokens, store, rooms, logger, metrics, iceServers, isShuttingDown: () => shuttingDown });

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.http.port, config.http.host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const port = (httpServer.address() as AddressInfo).port;
  const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ url }, 'switchboard listening');

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      shuttingDown = true;
      logger.info('shutting down');
      if (config.shutdownDrainMs > 0) await new Promise((resolve) => setTimeout(resolve, config.shutdownDrainMs));
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownTimeoutMs).unref());
      const orderly = (async () => {
        rooms.closeAll('server_shutdown');
        await new Promise<void>((resolve) => io.close(() => resolve()));
      })();
      await Promise.race([orderly, deadline]);
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
      await store.close();
      rooms.removeAllListeners();
      logger.info('shut down');
    })();
    return closing;
  };

  return { url, port, config, logger, httpServer, io, store, tokens, rooms, gateway, metrics, close };
}
