/**
 * TURN traffic for the benchmarks, from the raw client of test/helpers/stun.ts: flows
 * (one allocation each, a channel bound to a plain UDP peer), ChannelData sent at a paced
 * rate, datagrams counted at the peers; and allocation bursts. The same flows also run
 * through the bare UDP forwarder (bench/servers/udpForwarder.ts), the runtime's ceiling.
 * TurnFlows is the Node load generator and the control plane of the native one
 * (bench/lib/nativeBlast.ts), which takes the flows' ports over (handOver).
 */
import dgram from 'node:dgram';
import { createTurnCredentials } from '../../turn/credentials.js';
import { AttrType, encodeChannelData, Method, TurnClient, type TransportAddress } from '../../test/helpers/stun.js';

export interface TurnEndpoint {
  address: string;
  port: number;
  secret: string;
  /**
   * The relay's ports when it listens on several (one per relay worker; any client may use
   * any of them): flow (or client) i goes to ports[i % ports.length]. Without it, all go to `port`.
   */
  ports?: number[];
}

/** The relay port the i-th flow (or client) towards `endpoint` uses. */
export function flowPort(endpoint: TurnEndpoint, i: number): number {
  const ports = endpoint.ports?.length ? endpoint.ports : [endpoint.port];
  return ports[i % ports.length] as number;
}

/** What the capacity ladder and the sustained stream drive: TurnFlows (Node) or NativeFlows (bench/lib/nativeBlast.ts). */
export interface LoadFlows {
  /** The process whose sockets send and count the packets (for its CPU time and drop counters). */
  readonly pid: number;
  /**
   * Sends `rate` ChannelData packets per second of `payloadBytes` (paced every millisecond,
   * round-robin over the flows) for `durationMs`, or until stop() when durationMs is 0.
   * Returns what was sent and the rate achieved (below `rate` when the generator is the limit).
   */
  send(payloadBytes: number, rate: number, durationMs: number): Promise<{ sent: number; achievedRate: number }>;
  /** Datagrams the peers received so far. */
  received(): Promise<number>;
  /** Ends a send started with durationMs 0. */
  stop(): void;
  /** Releases the allocations and closes every socket. */
  close(): Promise<void>;
}

/** One flow as a native generator takes it over: the ports to bind, where to send, with which channel. */
export interface FlowPorts {
  clientPort: number;
  address: string;
  port: number;
  channel: number;
  peerPort: number;
}

/** Flows whose sockets Node closed, their allocations kept; release() frees those once the client ports are free again. */
export interface HandedOver {
  flows: FlowPorts[];
  release(): Promise<void>;
}

const CHANNEL = 0x4000;
/** Allocate tries per flow, each from a new port, while the server answers 437 (a port whose old allocation it still holds). */
const MAX_ALLOCATE_ATTEMPTS = 5;
const BUFFER_BYTES = 4 * 1024 * 1024;
let userCounter = 0;

function user(): string {
  return `bench-${process.pid}-${++userCounter}`;
}

/** What a client sends the bare forwarder to name its peer: these 4 bytes and the peer's port (2 bytes). */
export const FORWARDER_REGISTER = Buffer.from('FWD1');

interface Flow {
  /** The client's socket (a TURN client's, or a plain one for the forwarder). */
  socket: dgram.Socket;
  peer: dgram.Socket;
  /** The relay (or forwarder) port it sends to. */
  port: number;
  received: number;
  /** Releases the client's side (its allocation) and closes its socket. */
  close(): Promise<void>;
  /** Closes both sockets but keeps the client's side on the relay; returns how to release it later. */
  handOver(): Promise<{ ports: FlowPorts; release: () => Promise<void> }>;
}

function closeSocket(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => socket.close(() => resolve()));
}

/** A UDP socket on 127.0.0.1 counting what it receives into `flow.received`. */
async function countingPeer(): Promise<{ peer: dgram.Socket; flow: { received: number } }> {
  const peer = dgram.createSocket({ type: 'udp4', recvBufferSize: BUFFER_BYTES });
  await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', () => resolve()));
  const flow = { received: 0 };
  peer.on('message', () => {
    flow.received += 1;
  });
  return { peer, flow };
}

/** Allocates and releases `count` allocations with `concurrency` in flight; returns allocations per second. */
export async function allocationBurst(
  endpoint: TurnEndpoint,
  count: number,
  concurrency: number,
): Promise<{ perS: number; failures: number }> {
  const clients: TurnClient[] = [];
  let failures = 0;
  let next = 0;
  const start = performance.now();
  const worker = async (): Promise<void> => {
    while (next < count) {
      const port = flowPort(endpoint, next);
      next += 1;
      const client = await TurnClient.open({ address: endpoint.address, port }, createTurnCredentials(endpoint.secret, user(), 3600));
      clients.push(client);
      const response = await client.allocate().catch(() => null);
      if (!response?.isSuccess) failures += 1;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
    const elapsed = (performance.now() - start) / 1000;
    return { perS: (count - failures) / elapsed, failures };
  } finally {
    await Promise.all(clients.map((c) => (c.integrityKey ? c.refresh(0).catch(() => undefined) : undefined)));
    await Promise.all(clients.map((c) => c.close()));
  }
}

/** Paced ChannelData streams through a relay (or the bare forwarder) to UDP peers, from this Node process. */
export class TurnFlows implements LoadFlows {
  readonly pid = process.pid;
  private stopped = false;

  private constructor(
    private readonly endpoint: TurnEndpoint,
    private readonly flows: Flow[],
  ) {}

  /** Allocates `count` flows (distinct users), each with a channel bound to its own peer socket. */
  static async open(endpoint: TurnEndpoint, count: number): Promise<TurnFlows> {
    const flows: Flow[] = [];
    const all = new TurnFlows(endpoint, flows);
    // Clients not (yet) in a flow: those whose port still held an allocation at the server (437),
    // kept bound until the flows are open so that the next try gets another port, and one whose
    // allocation failed. Closed at the end without releasing anything.
    const spare = new Set<TurnClient>();
    try {
      for (let i = 0; i < count; i++) {
        const { peer, flow: counter } = await countingPeer();
        const server = { address: endpoint.address, port: flowPort(endpoint, i) };
        const credentials = createTurnCredentials(endpoint.secret, user(), 3600);
        const openClient = async (): Promise<TurnClient> => {
          const opened = await TurnClient.open(server, credentials);
          spare.add(opened);
          // A send the kernel refuses (ENOBUFS) must not crash the run; it shows up as loss.
          opened.socket.on('error', () => undefined);
          return opened;
        };
        let client = await openClient();
        let allocation = await client.allocate();
        // A port the kernel hands out again may still hold an allocation of a client released a
        // moment ago (coturn frees a released 5-tuple after a second or more): 437, try another.
        for (let attempt = 1; allocation.errorCode === 437 && attempt < MAX_ALLOCATE_ATTEMPTS; attempt++) {
          client = await openClient();
          allocation = await client.allocate();
        }
        spare.delete(client);
        const flow: Flow = {
          socket: client.socket,
          peer,
          port: server.port,
          get received() {
            return counter.received;
          },
          close: async () => {
            if (client.integrityKey) await client.refresh(0).catch(() => undefined);
            await client.close();
          },
          handOver: async () => {
            const ports = { clientPort: client.localAddress.port, ...server, channel: CHANNEL, peerPort: peer.address().port };
            // Not client.close(): that would release the allocation, bound to this port.
            await closeSocket(client.socket);
            await closeSocket(peer);
            // Later, from the same port: a new client learns the realm and nonce (a 401 to an
            // unsigned Refresh: coturn answers an Allocate on this 5-tuple with 437) and releases it.
            const release = async (): Promise<void> => {
              // Should another socket have taken the port meanwhile, the allocation expires with its lifetime.
              const again = await TurnClient.open(server, credentials, ports.clientPort).catch(() => null);
              if (!again) return;
              again.socket.on('error', () => undefined);
              await again.challenge(Method.Refresh).catch(() => undefined);
              if (again.integrityKey) await again.refresh(0).catch(() => undefined);
              await again.close();
            };
            return { ports, release };
          },
        };
        flows.push(flow);
        client.socket.setSendBufferSize(BUFFER_BYTES);
        if (!allocation.isSuccess || !allocation.xorAddress(AttrType.XorRelayedAddress))
          throw new Error(`allocate failed: ${allocation.errorCode}`);
        const { port } = peer.address();
        const bound = await client.channelBind(CHANNEL, { address: '127.0.0.1', port } satisfies TransportAddress);
        if (!bound.isSuccess) throw new Error(`channel bind failed: ${bound.errorCode}`);
      }
    } catch (error) {
      await all.close();
      throw error;
    } finally {
      await Promise.all([...spare].map((c) => closeSocket(c.socket)));
    }
    return all;
  }

  /** Registers `count` flows with the bare forwarder, each to its own peer socket. */
  static async openBare(endpoint: TurnEndpoint, count: number): Promise<TurnFlows> {
    const flows: Flow[] = [];
    const all = new TurnFlows(endpoint, flows);
    try {
      for (let i = 0; i < count; i++) {
        const { peer, flow: counter } = await countingPeer();
        const socket = dgram.createSocket({ type: 'udp4', sendBufferSize: BUFFER_BYTES });
        await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
        socket.on('error', () => undefined);
        flows.push({
          socket,
          peer,
          port: flowPort(endpoint, i),
          get received() {
            return counter.received;
          },
          close: () => closeSocket(socket),
          handOver: async () => {
            const ports = {
              clientPort: socket.address().port,
              address: endpoint.address,
              port: flowPort(endpoint, i),
              channel: CHANNEL,
              peerPort: peer.address().port,
            };
            await closeSocket(socket);
            await closeSocket(peer);
            // The forwarder holds nothing worth releasing (it is stopped after the run).
            return { ports, release: () => Promise.resolve() };
          },
        });
        const registration = Buffer.alloc(6);
        FORWARDER_REGISTER.copy(registration);
        registration.writeUInt16BE(peer.address().port, 4);
        const answered = new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('the forwarder did not answer a registration')), 5000);
          socket.once('message', () => {
            clearTimeout(timer);
            resolve();
          });
        });
        socket.send(registration, flowPort(endpoint, i), endpoint.address);
        await answered;
      }
    } catch (error) {
      await all.close();
      throw error;
    }
    return all;
  }

  /** Datagrams the peers received so far. */
  received(): Promise<number> {
    return Promise.resolve(this.flows.reduce((sum, f) => sum + f.received, 0));
  }

  /** See LoadFlows.send: one `send` per packet on the flow's socket. */
  async send(payloadBytes: number, rate: number, durationMs: number): Promise<{ sent: number; achievedRate: number }> {
    const frame = encodeChannelData(CHANNEL, Buffer.alloc(payloadBytes, 0x5a));
    const { address } = this.endpoint;
    this.stopped = false;
    let sent = 0;
    let next = 0;
    const start = performance.now();
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const elapsed = performance.now() - start;
        const done = this.stopped || (durationMs > 0 && elapsed >= durationMs);
        const target = Math.floor((rate * Math.min(elapsed, durationMs > 0 ? durationMs : elapsed)) / 1000);
        // Never more than 20 ms worth in one tick: falling behind shows as a lower achieved rate.
        const due = Math.min(target - sent, Math.ceil(rate / 50));
        for (let k = 0; k < due; k++) {
          const flow = this.flows[next] as Flow;
          flow.socket.send(frame, flow.port, address);
          next = (next + 1) % this.flows.length;
        }
        sent += Math.max(0, due);
        if (done) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    const elapsedS = (performance.now() - start) / 1000;
    return { sent, achievedRate: sent / elapsedS };
  }

  stop(): void {
    this.stopped = true;
  }

  /**
   * Closes every socket and keeps the allocations (or forwarder registrations), so another
   * process can bind the same client and peer ports and send in these flows; this object is
   * done with after it.
   */
  async handOver(): Promise<HandedOver> {
    const flows = this.flows.splice(0);
    const handed = await Promise.all(flows.map((f) => f.handOver()));
    return {
      flows: handed.map((h) => h.ports),
      release: async () => {
        await Promise.all(handed.map((h) => h.release()));
      },
    };
  }

  /** Releases the allocations and closes every socket. */
  async close(): Promise<void> {
    await Promise.all(this.flows.map((f) => f.close()));
    await Promise.all(this.flows.map((f) => new Promise<void>((resolve) => f.peer.close(() => resolve()))));
  }
}
