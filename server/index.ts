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
import { Cluster, type SocketAdapterFactory } from './cluster/Cluster.js';
import { ClusterLiveRooms } from './cluster/LiveRooms.js';
import { memoryLimiters, redisLimiters } from './cluster/rateLimiters.js';
import { RoomMoves } from './cluster/RoomMoves.js';
import { RoomSnapshots } from './cluster/RoomSnapshots.js';
import { mountApi, type ApiRateLimits } from './http/api/index.js';
import { createHttpApp } from './http/app.js';
import type { FrontendOptions } from './http/frontend.js';
import { MetricsListener } from './http/MetricsListener.js';
import { originChecker } from './http/origins.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './Metrics.js';
import { RoomManager } from './rooms/RoomManager.js';
import { TopologyController } from './rooms/TopologyController.js';
import { SessionRecorder } from './sessions/SessionRecorder.js';
import { SfuService } from './sfu/SfuService.js';
import { broadcastRoomEvents, broadcastTopologyEvents } from './signaling/broadcasts.js';
import { PendingSessionLimiter } from './signaling/PendingSessionLimiter.js';
import { SignalingGateway } from './signaling/SignalingGateway.js';
import type { AppServer, AppSocket, SocketRooms, SocketTopology } from './signaling/types.js';
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
  /** Where Prometheus scrapes: METRICS_HOST:METRICS_PORT's /metrics, or `${url}/metrics` with METRICS_PORT=0. */
  readonly metricsUrl: string;
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly httpServer: HttpServer;
  /** The express app (its router stack is what the OpenAPI coverage test walks). */
  readonly app: Express;
  readonly io: AppServer;
  readonly store: Store;
  readonly tokens: TokenService;
  readonly rooms: SocketRooms;
  readonly gateway: SignalingGateway;
  /** Session audit records; every mode change calls sessions.roomModeChanged(room). */
  readonly sessions: SessionRecorder;
  /** Tenant webhooks; every mode change calls webhooks.modeChanged(room, reason). */
  readonly webhooks: WebhookDispatcher;
  readonly metrics: Metrics;
  /** The bundled TURN server, or null when TURN_ENABLED=false. */
  readonly turn: TurnServer | null;
  /** The mediasoup SFU, or null when SFU_ENABLED=false. */
  readonly sfu: SfuService | null;
  readonly topology: SocketTopology;
  /** This node's cluster membership (registry, leases, bus), or null without REDIS_URL. */
  readonly cluster: Cluster | null;
  /** Graceful shutdown: /ready turns false, peers are told, everything closes by the deadline. Idempotent. */
  close(): Promise<void>;
}

/**
 * The one place that builds and wires every service, in dependency order. The metrics listener
 * binds first, so a METRICS_PORT in use stops the boot before anything else has started.
 */
export async function createServer(config: Readonly<Config>, options: CreateServerOptions = {}): Promise<SwitchboardServer> {
  const metrics = new Metrics();
  const { metricsPort, metricsHost } = config.observability;
  const metricsListener = metricsPort === 0 ? null : await MetricsListener.start({ metrics, host: metricsHost, port: metricsPort });
  try {
    return await startServices(config, options, metrics, metricsListener);
  } catch (error) {
    await metricsListener?.close();
    throw error;
  }
}

async function startServices(
  config: Readonly<Config>,
  options: CreateServerOptions,
  metrics: Metrics,
  metricsListener: MetricsListener | null,
): Promise<SwitchboardServer> {
  const logger = options.logger ?? createLogger(config.logLevel);
  for (const warning of config.bootWarnings) logger.warn(warning);
  const store = await openStore(config, logger, options.store);
  const tokens = TokenService.fromConfig(config.auth);
  const sessions = await startSessionRecorder(config, store, logger);
  const webhooks = createWebhookDispatcher(config, store, logger, options.webhooks);
  // TURN starts before the HTTP server listens, so every ice_servers list points at a live relay.
  const turn = await startTurn(config, logger, metrics);
  const iceServers = (userId: string): IceServer[] => (turn ? turn.iceServers(userId) : buildIceServers(config.turn, userId));
  // The SFU binds its media ports (SFU_PORT): a port in use fails the boot, after closing what started.
  const sfu = await startSfu(config, logger, metrics).catch(async (error: unknown) => {
    await turn?.close();
    await Promise.all([sessions.close(), webhooks.close()]);
    await store.close();
    throw error;
  });

  const httpServer = createHttpServer();
  // Bound before the services that need this node's address (its cluster registry entry); no
  // request is served before the app and Socket.IO attach below, in the same turn in a single node.
  const { port, url } = await listen(httpServer, config.http);
  const cluster = config.cluster.enabled
    ? new Cluster({ config, publicUrl: advertisedUrl(config, url), load: () => io.of('/').sockets.size, logger })
    : null;
  const limiters = cluster ? redisLimiters(cluster.redis, cluster.prefix) : memoryLimiters;
  if (cluster) metrics.observeLeases(() => cluster.leases.uncertainCount);

  const sockets = createSocketServer(config, cluster?.adapter);
  const io = sockets.io;
  const rooms = createRooms({ io, config, store, logger, metrics, sessions, webhooks });
  const topology = createTopology({ io, rooms, sfu, config, logger, metrics, sessions, webhooks });
  const shutdown = { started: false };
  const gateway = new SignalingGateway({
    io,
    config,
    tokens,
    store,
    rooms,
    topology,
    logger,
    metrics,
    iceServers,
    isShuttingDown: () => shutdown.started,
    limiters,
    cluster,
  });
  // The HTTP API's room operations run on each room's owner node (single node: the API's own LocalLiveRooms).
  const liveRooms = cluster
    ? new ClusterLiveRooms({
        rooms,
        store,
        disconnectToken: (tenantId, jti) => gateway.disconnectToken(tenantId, jti),
        nodeId: cluster.nodeId,
        leases: cluster.leases,
        bus: cluster.bus,
        redis: cluster.redis,
        prefix: cluster.prefix,
        logger,
      })
    : undefined;
  // A draining node's rooms move to other nodes; other nodes' rooms move in here.
  const roomMoves = cluster
    ? new RoomMoves({
        rooms,
        topology,
        leases: cluster.leases,
        ownership: cluster.ownership,
        bus: cluster.bus,
        otherServingNodes: () => cluster.otherServingNodes(),
        publicUrl: cluster.publicUrl,
        placeGraceMs: config.rooms.resumeGraceMs,
        logger,
      })
    : undefined;
  // A room whose owner died goes on from the snapshot it left: places for its participants, its mode.
  const snapshots =
    cluster && roomMoves
      ? new RoomSnapshots({
          redis: cluster.redis,
          prefix: cluster.prefix,
          rooms,
          topology,
          holds: (key) => cluster.leases.epochOf(key) !== null,
          ttlMs: ROOM_SNAPSHOT_TTL_MS,
          logger,
        })
      : undefined;
  if (cluster && roomMoves && snapshots) {
    cluster.takeOver = async (tenantId, roomId) => {
      if (rooms.get(tenantId, roomId)) return;
      const left = await snapshots.read(tenantId, roomId);
      if (!left) return;
      // The store decides what the room is now (it may have been deleted, locked or changed
      // since the snapshot): the snapshot gives only its participants and mode.
      const [tenant, record] = await Promise.all([store.tenants.get(tenantId), store.rooms.get(tenantId, roomId)]);
      const expired = record?.expires_at ? record.expires_at.getTime() <= Date.now() : false;
      if (!tenant || (!record && !tenant.limits.auto_create_rooms) || expired) {
        await snapshots.forget(tenantId, roomId);
        return;
      }
      const config = rooms.resolveConfig(tenant, record);
      // A lock set live (admin:lock) is not stored: it holds too.
      config.locked ||= left.config.locked;
      await roomMoves.adopt({ ...left, config, expires_at: record?.expires_at?.toISOString() ?? null }, 'snapshot');
    };
  }
  // The tenant's max_rooms counts its live rooms on every node.
  if (liveRooms) rooms.tenantLiveRoomsElsewhere = (tenantId, roomId) => liveRooms.liveRoomCount(tenantId, roomId);

  const app = createHttpApp({
    config,
    logger,
    metrics,
    limiters,
    frontend: frontendOptions(config, tokens),
    liveNodes: cluster ? () => cluster.registry.knownNodes : undefined,
    mount: (expressApp) => {
      mountApi(expressApp, {
        config,
        logger,
        store,
        tokens,
        webhooks,
        rooms,
        gateway,
        liveRooms,
        iceServers,
        rateLimits: {
          tokensPerTenantPerMinute: config.rateLimits.tokensPerTenantPerMinute,
          adminPerIpPerMinute: config.rateLimits.adminPerIpPerMinute,
          counters: limiters,
          ...options.apiRateLimits,
        },
      });
    },
    readiness: async () => {
      const storeOk = await store.ping().catch(() => false);
      const sfuOk = !config.sfu.enabled || Boolean(sfu?.alive);
      const checks = { store: storeOk, sfu: sfuOk, accepting: !shutdown.started };
      return { ready: storeOk && sfuOk && !shutdown.started, checks };
    },
  });
  httpServer.on('request', app);
  sockets.attach(httpServer);
  await startCluster(cluster, httpServer);
  liveRooms?.start();
  roomMoves?.start();
  snapshots?.start();
  const metricsUrl = metricsListener?.url ?? `${url}/metrics`;
  logger.info({ url, metrics: metricsUrl, node: config.nodeId, cluster: cluster !== null }, 'switchboard listening');

  const close = once(async () => {
    shutdown.started = true;
    logger.info('shutting down');
    // A cluster node stops taking rooms first: placement and handshakes send clients elsewhere.
    await cluster?.drain().catch(() => undefined);
    if (config.shutdownDrainMs > 0) await drainRooms(rooms, roomMoves, config.shutdownDrainMs);
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownTimeoutMs).unref());
    const orderly = (async () => {
      // With another node serving, rooms move rather than end: leases are released first, so
      // the clients' reconnections land on a node that can claim them; nobody hears room_closed.
      if (cluster && (await cluster.otherServingNodes()).length > 0) {
        // The node that takes a room over starts it from its snapshot: the latest one, first.
        await snapshots?.flush();
        await cluster.releaseLeases();
        rooms.dropAll('moved');
      } else rooms.closeAll('server_shutdown');
      await new Promise<void>((resolve) => io.close(() => resolve()));
    })();
    await Promise.race([orderly, deadline]);
    httpServer.closeAllConnections();
    await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    // Scraped to the end: the shutdown's own counts are readable until the API port has closed.
    await metricsListener?.close();
    liveRooms?.stop();
    roomMoves?.stop();
    snapshots?.stop();
    await cluster?.stop();
    topology.close();
    sfu?.stop();
    await turn?.close();
    await Promise.all([sessions.close(), webhooks.close()]);
    await store.close();
    rooms.removeAllListeners();
    logger.info('shut down');
  });

  return {
    url,
    port,
    metricsUrl,
    config,
    logger,
    httpServer,
    app,
    io,
    store,
    tokens,
    rooms,
    gateway,
    metrics,
    sessions,
    webhooks,
    turn,
    sfu,
    topology,
    cluster,
    close,
  };
}

/**
 * The store, initialized, with every tenant the config declares reconciled by upsert: the
 * file's name, credentials and limits win over the stored ones (the webhook is the tenant's
 * own). Nodes booting together upsert the same tenants and all succeed. Logs name the changed
 * fields, never their values.
 */
async function openStore(config: Readonly<Config>, logger: Logger, given: Store | undefined): Promise<Store> {
  const store = given ?? (await createStore(config, logger));
  await store.init();
  for (const declared of config.tenants) {
    const tenant = declared.tenant_id;
    const { created, changed } = await store.tenants
      .upsert({
        tenant_id: tenant,
        name: declared.name ?? tenant,
        api_key: declared.api_key,
        api_secret_sha256: declared.api_secret_sha256,
        limits: { ...config.defaultTenantLimits, ...declared.limits },
        webhook: null,
        created_at: new Date(),
      })
      .catch((error: unknown) => {
        throw new Error(`declared tenant "${tenant}" cannot be stored: ${error instanceof Error ? error.message : String(error)}`, {
          cause: error,
        });
      });
    if (created) logger.info({ tenant }, 'declared tenant created');
    else if (changed.length > 0)
      logger.info({ tenant, changed }, `declared tenant updated: ${changed.join(', ')} changed in the config file`);
  }
  return store;
}

async function startSessionRecorder(config: Readonly<Config>, store: Store, logger: Logger): Promise<SessionRecorder> {
  const sessions = new SessionRecorder({ store, logger, nodeId: config.nodeId, heartbeatMs: config.sessions.heartbeatMs });
  await sessions.start();
  return sessions;
}

function createWebhookDispatcher(
  config: Readonly<Config>,
  store: Store,
  logger: Logger,
  settings: WebhookSettings = {},
): WebhookDispatcher {
  // Config gives the SSRF allow-list; options (tests, embedding) may override it and tune delivery.
  const {
    allowPrivateNetworks = config.webhooks.allowPrivateNetworks,
    allowedCidrs = config.webhooks.allowedCidrs,
    ...delivery
  } = settings;
  return new WebhookDispatcher({ store, logger, policy: new WebhookUrlPolicy({ allowPrivateNetworks, allowedCidrs }), settings: delivery });
}

async function startTurn(config: Readonly<Config>, logger: Logger, metrics: Metrics): Promise<TurnServer | null> {
  if (!config.turn.enabled) return null;
  const turn = new TurnServer({ config: config.turn, logger });
  await turn.start();
  metrics.observeTurn(() => turn.stats());
  return turn;
}

async function startSfu(config: Readonly<Config>, logger: Logger, metrics: Metrics): Promise<SfuService | null> {
  if (!config.sfu.enabled) return null;
  const sfu = new SfuService({ config: config.sfu, logger });
  await sfu.start();
  sfu.on('data_dropped', () => metrics.sfuDataDropped.inc());
  return sfu;
}

/**
 * The Socket.IO server, attached to the HTTP server later by `attach`: Engine.IO takes over the
 * HTTP server's request listeners when it attaches, so the HTTP app must be that listener first.
 */
function createSocketServer(
  config: Readonly<Config>,
  adapter: SocketAdapterFactory | undefined,
): { io: AppServer; attach(httpServer: HttpServer): void } {
  const originAllowed = originChecker(config.http.corsOrigins);
  const pendingSessions = new PendingSessionLimiter(config.socket.pendingSessionsPerIp);
  const io: AppServer = new SocketIoServer({
    serveClient: false,
    // The Redis adapter in a cluster (what crosses nodes: revocations); the in-memory one otherwise.
    ...(adapter ? { adapter } : {}),
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
  return {
    io,
    attach(httpServer) {
      io.attach(httpServer);
      pendingSessions.attach(io);
    },
  };
}

/** What observes the rooms and their topology: clients (through Socket.IO), metrics, session records and webhooks. */
interface RoomObservers {
  io: AppServer;
  config: Readonly<Config>;
  logger: Logger;
  metrics: Metrics;
  sessions: SessionRecorder;
  webhooks: WebhookDispatcher;
}

/** The live rooms, with their clients told first of every change, then metrics, session records and webhooks. */
function createRooms({ io, config, store, logger, metrics, sessions, webhooks }: RoomObservers & { store: Store }): SocketRooms {
  const rooms = new RoomManager<AppSocket>({ store, defaults: config.rooms, logger });
  broadcastRoomEvents(io, rooms);
  metrics.observeRooms(rooms);
  // A room that moved to another node is no longer active here (it did not finish: no room_finished).
  rooms.on('room_dropped', (room) => metrics.roomsActive.dec({ mode: room.mode }));
  sessions.attach(rooms);
  webhooks.attach(rooms);
  return rooms;
}

/** The topology policy, with its mode changes told to clients, then to session records and webhooks. */
function createTopology(options: RoomObservers & { rooms: SocketRooms; sfu: SfuService | null }): SocketTopology {
  const { io, rooms, sfu, config, logger, metrics, sessions, webhooks } = options;
  const topology = new TopologyController({ rooms, sfu, config, logger, metrics });
  broadcastTopologyEvents({ io, topology, config, logger, metrics });
  topology.on('mode_changed', (room, reason) => {
    sessions.roomModeChanged(room);
    webhooks.modeChanged(room, reason);
  });
  return topology;
}

/** The demo page's options: the dev token route mints tokens of the first declared tenant when enabled. */
function frontendOptions(config: Readonly<Config>, tokens: TokenService): FrontendOptions {
  const devTenant = config.tenants[0]?.tenant_id;
  return {
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
  };
}

/** Listens on the configured address; the URL names a loopback host when bound to every interface. */
async function listen(httpServer: HttpServer, http: Config['http']): Promise<{ port: number; url: string }> {
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(http.port, http.host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const port = (httpServer.address() as AddressInfo).port;
  const host = http.host === '0.0.0.0' || http.host === '::' ? '127.0.0.1' : http.host;
  return { port, url: `http://${host.includes(':') ? `[${host}]` : host}:${port}` };
}

/**
 * The URL this node registers as its url and ws_url: PUBLIC_URL, except that the default one
 * of a server on PORT=0 (http://localhost:0) is replaced by the address it actually listens on.
 */
function advertisedUrl(config: Readonly<Config>, listeningUrl: string): string {
  return new URL(config.http.publicUrl).port === '0' ? listeningUrl : config.http.publicUrl;
}

/** Registers the node and starts its leases and bus; a node that cannot reach Redis does not start (its port is closed again). */
async function startCluster(cluster: Cluster | null, httpServer: HttpServer): Promise<void> {
  if (!cluster) return;
  try {
    await cluster.start();
  } catch (error) {
    await cluster.stop();
    httpServer.closeAllConnections();
    await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot join the cluster on ${cluster.redisAddress}: ${reason}`, { cause: error });
  }
}

/**
 * The drain (SHUTDOWN_DRAIN_MS): in a cluster with another serving node, every room moves there
 * and the drain ends once the last client has followed its room (or at the deadline); otherwise
 * (one node) it waits the whole time, for load balancers to notice /ready.
 */
async function drainRooms(rooms: SocketRooms, roomMoves: RoomMoves | undefined, drainMs: number): Promise<void> {
  const deadline = Date.now() + drainMs;
  const { moved } = roomMoves ? await roomMoves.moveAll() : { moved: 0 };
  if (moved === 0) {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())));
    return;
  }
  while (rooms.all().some((room) => room.movingOut) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
}

/** How long a room's snapshot outlives its owner's last write (refreshed every third of it). */
const ROOM_SNAPSHOT_TTL_MS = 60_000;

/** The first call runs `run`; every later call gets that first call's promise. */
function once(run: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= run());
}
