/** StreamConnection over a real loopback TCP connection: relayed data dropped for a client that does not read, answers kept; the idle timer. */
import net from 'node:net';
import { expect } from 'chai';
import { MAX_QUEUED_BYTES, StreamConnection, type StreamCloseReason } from '../../turn/StreamConnection.js';

/** A server-side StreamConnection and the client socket at the other end (paused: it reads nothing until resumed). */
async function connectionPair(idleTimeoutMs = 60_000): Promise<{
  connection: StreamConnection;
  client: net.Socket;
  closed: Promise<StreamCloseReason>;
  close(): Promise<void>;
}> {
  let accepted: (socket: net.Socket) => void = () => undefined;
  const acceptedSocket = new Promise<net.Socket>((resolve) => (accepted = resolve));
  const server = net.createServer((socket) => accepted(socket));
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  const client = net.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
  client.pause();
  client.on('error', () => undefined);
  const socket = await acceptedSocket;
  let onClose: (reason: StreamCloseReason) => void = () => undefined;
  const closed = new Promise<StreamCloseReason>((resolve) => (onClose = resolve));
  const connection = new StreamConnection({
    protocol: 'tcp',
    socket,
    remoteAddress: socket.remoteAddress as string,
    remotePort: socket.remotePort as number,
    idleTimeoutMs,
    onFrame: () => undefined,
    onClose: (_connection, reason) => onClose(reason),
  });
  return {
    connection,
    client,
    closed,
    close: async () => {
      client.destroy();
      connection.close('shutdown');
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('StreamConnection', () => {
  it('drops relayed data once MAX_QUEUED_BYTES wait for a client that does not read, but still queues answers', async () => {
    const { connection, client, close } = await connectionPair();
    try {
      const chunk = Buffer.alloc(16 * 1024, 7);
      let written = 0;
      // The kernel buffers take some first; then the queue grows to the limit and writes are refused.
      while (connection.writeData([chunk])) {
        written += chunk.length;
        if (written > 64 * 1024 * 1024) throw new Error('never refused');
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(written).to.be.at.least(MAX_QUEUED_BYTES);
      connection.send(Buffer.from('answer'));
      // The client reads again: everything queued arrives, the answer last.
      let received = 0;
      const tail: Buffer[] = [];
      client.on('data', (data: Buffer) => {
        received += data.length;
        tail.push(data);
        if (tail.length > 2) tail.shift();
      });
      client.resume();
      await new Promise<void>((resolve) => {
        const check = (): void => (received >= written + 6 ? resolve() : void setTimeout(check, 10));
        check();
      });
      expect(received).to.equal(written + 6);
      expect(Buffer.concat(tail).subarray(-6).toString()).to.equal('answer');
    } finally {
      await close();
    }
  });

  it('closes after the idle timeout without an allocation, not while it holds one', async () => {
    const idle = await connectionPair(150);
    try {
      expect(await idle.closed).to.equal('idle');
      expect(idle.connection.isClosed).to.equal(true);
    } finally {
      await idle.close();
    }
    const holding = await connectionPair(150);
    try {
      holding.connection.setHoldsAllocation(true);
      const outcome = await Promise.race([holding.closed, new Promise((resolve) => setTimeout(() => resolve('open'), 500))]);
      expect(outcome).to.equal('open');
      holding.connection.setHoldsAllocation(false);
      expect(await holding.closed).to.equal('idle');
    } finally {
      await holding.close();
    }
  });
});
