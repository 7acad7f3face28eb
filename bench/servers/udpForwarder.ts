/**
 * The runtime's ceiling for the TURN benchmark: a bare Node.js UDP forwarder with no TURN in
 * it. One socket in (a 4 MiB receive buffer, as the bundled relay's listener), one socket out;
 * each datagram from a registered client loses its 4-byte ChannelData header and goes out to
 * that client's peer: one receive, one map lookup, one send, the least any relay written in
 * Node does per packet (its sockets skip dns.lookup, as the relay's dgram ones do). A client registers with `FWD1` and its peer's port (2 bytes, big
 * endian; the peer is on 127.0.0.1) and gets `OK` back.
 *
 * With `{"threads": N}` (argv[3]) it runs N such forwarders, one per worker thread, each on
 * its own port: the shape of the bundled relay with N relay workers, so that the relay across
 * cores can be compared with the ceiling of the same shape.
 */
import dgram from 'node:dgram';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { serveCommands } from '../lib/childCommands.js';
import type { ToServer } from '../lib/ServerProcess.js';
import { FORWARDER_REGISTER } from '../lib/turnLoad.js';

const BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * The address as it is, at once (the relay's dgram sockets do the same, literalLookup in
 * turn/udpEndpoint.ts, which also takes IPv6 and names): dgram's default lookup answers an IP
 * literal on the next tick, a tick per datagram.
 */
function literalLookup(address: string, _family: number, callback: (error: Error | null, address: string, family: number) => void): void {
  callback(null, address, 4);
}

async function bind(): Promise<dgram.Socket> {
  const socket = dgram.createSocket({
    type: 'udp4',
    recvBufferSize: BUFFER_BYTES,
    sendBufferSize: BUFFER_BYTES,
    lookup: literalLookup as unknown as dgram.SocketOptions['lookup'],
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return socket;
}

/** One forwarder; resolves with its inbound port and a close function. */
async function forward(): Promise<{ port: number; close(): void }> {
  const inbound = await bind();
  const outbound = await bind();
  // A send the kernel refuses (ENOBUFS) shows up as loss, as it does for the relays.
  outbound.on('error', () => undefined);
  /** Peer port by client port. */
  const peers = new Map<number, number>();
  inbound.on('message', (message, from) => {
    const peer = peers.get(from.port);
    if (peer !== undefined) {
      outbound.send(message.subarray(4), peer, '127.0.0.1');
      return;
    }
    if (message.length === 6 && message.subarray(0, 4).equals(FORWARDER_REGISTER)) {
      peers.set(from.port, message.readUInt16BE(4));
      inbound.send(Buffer.from('OK'), from.port, from.address);
    }
  });
  return {
    port: inbound.address().port,
    close: () => {
      inbound.close();
      outbound.close();
    },
  };
}

/** A forwarder on a worker thread: posts its port, closes when told. */
async function workerMain(): Promise<void> {
  const forwarder = await forward();
  parentPort?.postMessage(forwarder.port);
  parentPort?.once('message', () => {
    forwarder.close();
    parentPort?.close();
  });
}

async function startThreads(count: number): Promise<{ ports: number[]; close(): Promise<void> }> {
  // Node 20 does not pass tsx's loader hooks to worker threads: register tsx in each first (as turn/TurnServer.ts does).
  const tsx = createRequire(import.meta.url).resolve('tsx/cjs/api');
  const boot = `require(${JSON.stringify(tsx)}).register(); require(${JSON.stringify(fileURLToPath(import.meta.url))});`;
  const workers = Array.from({ length: count }, () => new Worker(boot, { eval: true }));
  const ports = await Promise.all(
    workers.map(
      (worker) =>
        new Promise<number>((resolve, reject) => {
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
  return {
    ports,
    close: async () => {
      await Promise.all(
        workers.map((worker) => {
          const exited = new Promise((resolve) => worker.once('exit', resolve));
          worker.postMessage('close');
          return exited;
        }),
      );
    },
  };
}

async function main(): Promise<void> {
  const threads = Number((JSON.parse(process.argv[3] ?? '{}') as { threads?: number }).threads ?? 0);
  // No threads: the forwarder runs on the process's main thread, as it always did.
  const forwarders =
    threads > 0 ? await startThreads(threads) : await forward().then((f) => ({ ports: [f.port], close: async () => f.close() }));
  const handle = async (message: ToServer): Promise<unknown> => {
    switch (message.cmd) {
      case 'usage': {
        const cpu = process.cpuUsage();
        return { cpuS: (cpu.user + cpu.system) / 1e6, rss: process.memoryUsage().rss, heapUsed: 0 };
      }
      case 'close':
        await forwarders.close();
        return {};
      default:
        throw new Error(`unknown command ${message.cmd}`);
    }
  };
  const port = forwarders.ports[0] as number;
  serveCommands(handle, { url: '', port, turnPort: port, turnPorts: forwarders.ports });
}

if (isMainThread)
  main().catch((error: unknown) => {
    console.error('[bench udp forwarder]', error);
    process.exit(1);
  });
else void workerMain();
