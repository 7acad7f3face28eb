/**
 * The runtime's ceiling for the TURN benchmark: a bare Node.js UDP forwarder with no TURN in
 * it. One socket in (a 4 MiB receive buffer, as the bundled relay's listener), one socket out;
 * each datagram from a registered client loses its 4-byte ChannelData header and goes out to
 * that client's peer: one receive, one map lookup, one send, the least any relay written in
 * Node does per packet. A client registers with `FWD1` and its peer's port (2 bytes, big
 * endian; the peer is on 127.0.0.1) and gets `OK` back.
 */
import dgram from 'node:dgram';
import { serveCommands } from '../lib/childCommands.js';
import type { ToServer } from '../lib/ServerProcess.js';
import { FORWARDER_REGISTER } from '../lib/turnLoad.js';

const BUFFER_BYTES = 4 * 1024 * 1024;

async function bind(): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: BUFFER_BYTES, sendBufferSize: BUFFER_BYTES });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return socket;
}

async function main(): Promise<void> {
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
  const handle = async (message: ToServer): Promise<unknown> => {
    switch (message.cmd) {
      case 'usage': {
        const cpu = process.cpuUsage();
        return { cpuS: (cpu.user + cpu.system) / 1e6, rss: process.memoryUsage().rss, heapUsed: 0 };
      }
      case 'close':
        inbound.close();
        outbound.close();
        return {};
      default:
        throw new Error(`unknown command ${message.cmd}`);
    }
  };
  serveCommands(handle, { url: '', port: inbound.address().port, turnPort: inbound.address().port });
}

main().catch((error: unknown) => {
  console.error('[bench udp forwarder]', error);
  process.exit(1);
});
