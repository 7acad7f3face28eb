/**
 * A UDP proxy in front of one server (the bundled TURN server) that drops a settable share of
 * the datagrams going back to its clients, as a lossy downlink would: a page whose TURN server
 * is this proxy (and which relays everything) receives its media through it. Each client
 * address gets its own upstream socket, so the server sees one 5-tuple per client.
 */
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';

export interface LossyUdpProxy {
  readonly port: number;
  /** Share of server -> client datagrams dropped from now on (0..1). */
  setLoss(loss: number): void;
  /** Datagrams forwarded to and dropped on the way to the clients so far. */
  counts(): { forwarded: number; dropped: number };
  close(): Promise<void>;
}

export async function startLossyUdpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<LossyUdpProxy> {
  const front = createSocket('udp4');
  const upstreams = new Map<string, Socket>();
  let loss = 0;
  let forwarded = 0;
  let dropped = 0;
  front.on('message', (message, client) => {
    const key = `${client.address}:${client.port}`;
    let upstream = upstreams.get(key);
    if (!upstream) {
      const socket = createSocket('udp4');
      socket.on('message', (reply) => {
        if (Math.random() < loss) {
          dropped++;
          return;
        }
        forwarded++;
        front.send(reply, client.port, client.address);
      });
      socket.on('error', () => undefined);
      socket.bind(0, '127.0.0.1');
      upstreams.set(key, socket);
      upstream = socket;
    }
    upstream.send(message, targetPort, targetHost);
  });
  front.on('error', () => undefined);
  await new Promise<void>((resolve) => front.bind(0, '127.0.0.1', resolve));
  return {
    port: (front.address() as AddressInfo).port,
    setLoss: (value) => {
      loss = value;
    },
    counts: () => ({ forwarded, dropped }),
    close: async () => {
      for (const socket of upstreams.values()) socket.close();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    },
  };
}
