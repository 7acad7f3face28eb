import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { Server as SocketIoServer } from 'socket.io';
import type { IceServer } from '../protocol/events.js';
import { buildIceServers } from '../turn/credentials.js';
import { TurnServer } from '../turn/TurnServer.js';
import type { Config } from '../config/index.js';
import { TokenService } from './auth/TokenService.js';
import { mountApi, type ApiRateLimits } from './http/api/index.js';
import { createHttpApp } from './http/app.js';
import { originChecker } from './http/origins.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './Metrics.js';
import { RoomManager } from './rooms/RoomManager.js';
import { TopologyController } from './rooms/TopologyController.js';
import { SessionRecorder } from './sessions/SessionRecorder.js';
import { SfuService } from './sfu/SfuService.js';
import { PendingSessionLimiter } from './signaling/PendingSessionLimiter.js';
import { SignalingGateway } from './signaling/SignalingGateway.js';
import type { AppServer } from './signaling/types.js';
import { createStore } from './store/index.js';
import type { Store } from './store/Store.js';
import { WebhookDispatcher, type WebhookSettings } from './webhooks/WebhookDispatcher.js';
import { WebhookUrlPolicy } from './webhooks/WebhookUrlPolicy.js';

export interface CreateServerOptions {
  /** Defaults to a pino logger at config.logLevel on stdout. */
  logger?: Logger;
  /** Defaults to the store selected by config (memory, or MongoDB with MONGODB_URI). */
  store?: Store;
  /** Webhook delivery tuning and URL policy; by default private and loopback receivers are refused. */
  webhooks?: WebhookSettings;
  /** Limits of the token and admin API routes (defaults in server/http/api/rateLimits.ts). */
  apiRateLimits?: Partial<ApiRateLimits>;
}

/** A running Switchboard: its address, its services (for tests and embedding), and close(). */
export interface SwitchboardServer {
  readonly url: string;
  readonly port: number;
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly httpServer: HttpServer;
  /** The express app (its router stack is what the OpenAPI coverage test walks). */
  readonly app: Express;
  readonly io: AppServer;
  readonly store: Store;
  readonly tokens: TokenService;
  readonly rooms: RoomManager;
  readonly gateway: SignalingGateway;
  /** Session audit records; the SFU work calls sessions.roomModeChanged(room). */
  readonly sessions: SessionRecorder;
  /** Tenant webhooks; the SFU work calls webhooks.modeChanged(room, reason). */
  readonly webhooks: WebhookDispatcher;
  readonly metrics: Metrics;
  /** The bundled TURN server, or null when TURN_ENABLED=false. */
  readonly turn: TurnServer | null;
  /** The mediasoup SFU, or null when SFU_ENABLED=false. */
  readonly sfu: SfuService | null;
  readonly topology: TopologyController;
  /** Graceful shutdown: /ready turns false, peers are told, everything closes by the deadline. Idempotent. */
  close(): Promise<void>;
}

/** The one place that builds and wires every service. */
export async function createServer(config: Readonly<Config>, options: CreateServerOptions = {}): Promise<SwitchboardServer> {
  const logger = options.logger ?? createLogger(config.logLevel);
  for (const warning of config.bootWarnings) logger.warn(warning);
  const store = options.store ?? (await createStore(config, logger));
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

  const tokens = TokenService.fromConfig(config.auth);

  const sessions = new SessionRecorder({ store, logger, nodeId: config.nodeId, heartbeatMs: config.sessions.heartbeatMs });
  await sessions.start();
  // Config gives the SSRF allow-list; options (tests, embedding) may override it and tune delivery.
  const { allowPrivateNetworks = config.webhooks.allowPrivateNetworks, allowedCidrs = config.webhooks.allowedCidrs, ...webhookDelivery } = options.webhooks ?? {};
  const webhooks = new WebhookDispatcher({ store, logger, policy: new WebhookUrlPolicy({ allowPrivateNetworks, allowedCidrs }), settings: webhookDelivery });

  let shuttingDown = false;
  const metrics = new Metrics();
  const devTenant = config.tenants[0]?.tenant_id;
  const app = createHttpApp({
    config,
    logger,
    metrics,
    frontend: {
      roles: Object.keys(config.roles),
      devToken:
        config.auth.devTokenRoute && devTenant
          ? ({ room, name, role, user }) => {
              const userId = user ?? `${name.replace(/[^A-Za-z0-9_]/g, '').slice(0, 32) || 'guest'}-${randomBytes(3).toString('hex')}`;
              const grants = config.roles[role] ?? config.roles.guest;
              if (!grants) throw new Error(`role ${role} is not configured`);
              const minted = tokens.mint({ tenantId: devTenant, roomId: room, userId, name, grants, ttlS: 3600 });
              return { token: minted.token, expires_at: minted.expiresAt.toISOString() };
            }
          : null,
    },
    // API handlers read rooms, gateway and iceServers at request time: those are built after the HTTP server.
    mount: (expressApp) => {
      mountApi(expressApp, {
        config,
        logger,
        store,
        tokens,
        webhooks,
        get rooms() {
          return rooms;
        },
        get gateway() {
          return gateway;
        },
        iceServers: (userId) => iceServers(userId),
        rateLimits: {
          tokensPerTenantPerMinute: config.rateLimits.tokensPerTenantPerMinute,
          adminPerIpPerMinute: config.rateLimits.adminPerIpPerMinute,
          ...options.apiRateLimits,
        },
      });
    },
    readiness: async () => {
      const storeOk = await store.ping().catch(() => false);
      const sfuOk = !config.sfu.enabled || Boolean(sfu?.alive);
      const checks = { store: storeOk, sfu: sfuOk, accepting: !shuttingDown };
      return { ready: storeOk && sfuOk && !shuttingDown, checks };
    },
  });
  const httpServer = createHttpServer(app);

  const originAllowed = originChecker(config.http.corsOrigins);
  const pendingSessions = new PendingSessionLimiter(config.socket.pendingSessionsPerIp);
  const io: AppServer = new SocketIoServer(httpServer, {
    serveClient: false,
    maxHttpBufferSize: config.socket.maxPayloadBytes,
    pingInterval: config.socket.pingIntervalMs,
    pingTimeout: config.socket.pingTimeoutMs,
    connectTimeout: config.socket.connectTimeoutMs,
    cors: { origin: (origin, callback) => callback(null, originAllowed(origin)) },
    // Refused before any Socket.IO work (403): foreign browser origins, and an address holding
    // too many sessions that have not authenticated yet.
    allowRequest: (req, callback) => {
      if (!originAllowed(req.headers.origin)) return callback('origin not allowed', false);
      if (!pendingSessions.allows(req)) return callback('too many unauthenticated sessions from this address', false);
      callback(null, true);
    },
  });
  pendingSessions.attach(io);

  const rooms = new RoomManager({ io, store, defaults: config.rooms, logger });
  metrics.observeRooms(rooms);
  sessions.attach(rooms);
  webhooks.attach(rooms);
  // TURN starts before the HTTP server listens, so every ice_servers list points at a live relay.
  const turn = config.turn.enabled ? new TurnServer({ config: config.turn, logger }) : null;
  await turn?.start();
  if (turn) metrics.observeTurn(() => turn.stats());
  const iceServers = (userId: string): IceServer[] => (turn ? turn.iceServers(userId) : buildIceServers(config.turn, userId));
  let topology: TopologyController | null = null;
  const gateway = new SignalingGateway({
    io,
    config,
    tokens,
    store,
    rooms,
    logger,
    metrics,
    iceServers,
    isShuttingDown: () => shuttingDown,
    sfuJoinInfo: (room, peer) => topology?.joinInfo(room, peer),
  });
  const sfu = config.sfu.enabled ? new SfuService({ config: config.sfu, logger }) : null;
  await sfu?.start();
  sfu?.on('data_dropped', () => metrics.sfuDataDropped.inc());
  topology = new TopologyController({
    io,
    rooms,
    gateway,
    sfu,
    config,
    logger,
    metrics,
    onModeChanged: (room, reason) => {
      sessions.roomModeChanged(room);
      webhooks.modeChanged(room, reason);
    },
  });

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
      topology?.close();
      sfu?.stop();
      await turn?.close();
      await Promise.all([sessions.close(), webhooks.close()]);
      await store.close();
      rooms.removeAllListeners();
      logger.info('shut down');
    })();
    return closing;
  };

  return { url, port, config, logger, httpServer, app, io, store, tokens, rooms, gateway, metrics, sessions, webhooks, turn, sfu, topology, close };
}
