/**
 * A benchmark server in its own process (so it can be pinned to a core and measured alone),
 * driven by its parent over IPC. Kinds:
 * - switchboard: createServer() with the bench config (env overrides as argv[3], JSON);
 * - switchboard-inline-turn: the same with TURN off, plus the relay (TurnRelay) running on
 *   the signaling thread: the counterfactual the worker thread exists to avoid;
 * - baseline: a bare Socket.IO relay, same socket.io version, minimal handlers, no auth.
 * It exits when the parent goes away, so a crashed run leaves nothing behind.
 */
import { writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { Session } from 'node:inspector/promises';
import { PerformanceObserver } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { Server as SocketIoServer, type Socket } from 'socket.io';
import { createServer, type SwitchboardServer } from '../../server/index.js';
import { TurnCounters } from '../../turn/TurnCounters.js';
import { TurnRelay } from '../../turn/TurnRelay.js';
import { BENCH_TENANT, benchConfig, turnEnv } from '../lib/benchConfig.js';
import { serveCommands } from '../lib/childCommands.js';
import type { ServerKind, ToServer } from '../lib/ServerProcess.js';

const kind = process.argv[2] as ServerKind;
const overrides = JSON.parse(process.argv[3] ?? '{}') as Record<string, string>;

interface Running {
  io: SocketIoServer;
  url: string;
  port: number;
  turnPort?: number;
  /** Every relay worker's port (TURN_WORKERS), worker 0's first. */
  turnPorts?: number[];
  devApiSecret?: string;
  close(): Promise<void>;
}

async function startSwitchboard(env: Record<string, string>, inlineTurn: boolean): Promise<Running> {
  const config = benchConfig(env);
  const server: SwitchboardServer = await createServer(config);
  // upsert: the nodes of the cluster benchmark share one Redis store.
  await server.store.tenants.upsert({
    tenant_id: BENCH_TENANT,
    name: BENCH_TENANT,
    api_key: `key-${BENCH_TENANT}`,
    api_secret_sha256: '0'.repeat(64),
    limits: { ...config.defaultTenantLimits, max_rooms: 1_000_000 },
    webhook: null,
    created_at: new Date(),
  });
  let relay: TurnRelay | undefined;
  let turnPort = server.turn?.port;
  if (inlineTurn) {
    relay = new TurnRelay({ settings: benchConfig(turnEnv()).turn, counters: new TurnCounters(), log: () => undefined, port: 0 });
    turnPort = (await relay.start()).port;
  }
  const devApiSecret = /api_secret=(\S+)/.exec(config.bootNotices.join('\n'))?.[1];
  return {
    io: server.io as unknown as SocketIoServer,
    url: server.url,
    port: server.port,
    turnPort,
    turnPorts: relay ? [turnPort as number] : server.turn?.ports,
    devApiSecret,
    close: async () => {
      await relay?.close();
      await server.close();
    },
  };
}

/** The baseline: what a minimal Socket.IO signaling relay does, nothing more. */
async function startBaseline(): Promise<Running> {
  const httpServer = createHttpServer((_req, res) => {
    res.writeHead(404).end();
  });
  const defaults = benchConfig();
  const io = new SocketIoServer(httpServer, {
    serveClient: false,
    maxHttpBufferSize: defaults.socket.maxPayloadBytes,
    pingInterval: defaults.socket.pingIntervalMs,
    pingTimeout: defaults.socket.pingTimeoutMs,
  });
  io.on('connection', (socket: Socket) => {
    socket.on('join', (room: string, ack?: (response: object) => void) => {
      void socket.join(room);
      const peers = [...(io.sockets.adapter.rooms.get(room) ?? [])].filter((id) => id !== socket.id);
      socket.to(room).emit('peer_joined', { id: socket.id });
      ack?.({ ok: true, self: { id: socket.id }, peers: peers.map((id) => ({ id })) });
    });
    socket.on('signal', (message: { to: string }, ack?: (response: object) => void) => {
      const { to, ...rest } = message;
      io.to(to).emit('signal', { from: socket.id, ...rest });
      ack?.({ ok: true });
    });
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', () => resolve()));
  const port = (httpServer.address() as AddressInfo).port;
  return {
    io,
    url: `http://127.0.0.1:${port}`,
    port,
    close: async () => {
      await new Promise<void>((resolve) => io.close(() => resolve()));
      httpServer.closeAllConnections();
    },
  };
}

let profiler: Session | undefined;

/** GC pauses since the last 'gcStats' request (both servers observe them the same way). */
const gcPauses = { count: 0, totalMs: 0, maxMs: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gcPauses.count += 1;
    gcPauses.totalMs += entry.duration;
    gcPauses.maxMs = Math.max(gcPauses.maxMs, entry.duration);
  }
}).observe({ entryTypes: ['gc'] });

async function handle(running: Running, message: ToServer): Promise<unknown> {
  switch (message.cmd) {
    case 'usage': {
      const cpu = process.cpuUsage();
      const memory = process.memoryUsage();
      return { cpuS: (cpu.user + cpu.system) / 1e6, rss: memory.rss, heapUsed: memory.heapUsed };
    }
    case 'gc': {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      gc?.();
      return { collected: Boolean(gc) };
    }
    case 'gcStats': {
      const stats = { ...gcPauses };
      Object.assign(gcPauses, { count: 0, totalMs: 0, maxMs: 0 });
      return stats;
    }
    case 'addresses': {
      const counts: Record<string, number> = {};
      for (const socket of running.io.sockets.sockets.values())
        counts[socket.handshake.address] = (counts[socket.handshake.address] ?? 0) + 1;
      return counts;
    }
    case 'profileStart': {
      profiler = new Session();
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
      await profiler.post('Profiler.start');
      return {};
    }
    case 'profileStop': {
      if (!profiler) throw new Error('profiler not started');
      const { profile } = await profiler.post('Profiler.stop');
      profiler.disconnect();
      profiler = undefined;
      writeFileSync(String(message.args), JSON.stringify(profile));
      return { file: message.args };
    }
    case 'close':
      await running.close();
      return {};
    default:
      throw new Error(`unknown command ${String((message as { cmd: unknown }).cmd)}`);
  }
}

async function main(): Promise<void> {
  const running =
    kind === 'baseline'
      ? await startBaseline()
      : await startSwitchboard(
          kind === 'switchboard-inline-turn' ? { ...overrides, TURN_ENABLED: 'false' } : overrides,
          kind === 'switchboard-inline-turn',
        );
  serveCommands(
    (message) => handle(running, message),
    { url: running.url, port: running.port, turnPort: running.turnPort, turnPorts: running.turnPorts, devApiSecret: running.devApiSecret },
    () => running.close(),
  );
}

main().catch((error: unknown) => {
  console.error(`[bench server ${kind}]`, error);
  process.exit(1);
});
