/** StreamConnection over a real loopback TCP connection: relayed data dropped for a client that does not read, answers kept; the idle timer. */
import net from 'node:net';
import { expect } from 'chai';
import { MAX_QUEUED_BYTES, READ_PAUSE_BYTES, StreamConnection, type StreamCloseReason } from '../../turn/StreamConnection.js';

/** A server-side StreamConnection and the client socket at the other end (paused: it reads nothing until resumed). */
async function connectionPair(
  idleTimeoutMs = 60_000,
  onFrame: (connection: StreamConnection, frame: Buffer) => void = () => undefined,
): Promise<{
  socket: net.Socket;
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
    onFrame,
    onClose: (_connection, reason) => onClose(reason),
  });
  return {
    socket,
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

  it('stops reading a client that sends requests without reading the answers, and serves it again once it reads', async () => {
    // Each 20-byte request (a Binding needs no credentials) gets an 80-byte answer, as a STUN answer outweighs its request.
    const answer = Buffer.alloc(80, 1);
    let answered = 0;
    const { socket, client, close } = await connectionPair(60_000, (connection) => {
      answered += 1;
      connection.send(answer);
    });
    try {
      const request = Buffer.alloc(20);
      request.writeUInt32BE(0x2112a442, 4);
      const chunk = Buffer.concat(Array.from({ length: 3_000 }, () => request));
      let written = 0;
      let maxQueued = 0;
      const started = Date.now();
      while (written < 4 * 1024 * 1024 && Date.now() - started < 5_000) {
        if (client.writableLength < 1024 * 1024) {
          client.write(chunk);
          written += chunk.length;
        }
        await new Promise((resolve) => setImmediate(resolve));
        maxQueued = Math.max(maxQueued, socket.writableLength);
      }
      // Without backpressure the queue holds four times what the client wrote, less what the kernel took.
      expect(maxQueued, 'bytes queued towards the client').to.be.below(READ_PAUSE_BYTES + 256 * 1024);
      // The client reads: everything it sent is answered, nothing was lost.
      let received = 0;
      client.on('data', (data: Buffer) => (received += data.length));
      client.resume();
      await new Promise<void>((resolve, reject) => {
        const deadline = Date.now() + 15_000;
        const check = (): void => {
          if (received >= (written / 20) * answer.length) resolve();
          else if (Date.now() > deadline) reject(new Error(`${received} of ${(written / 20) * answer.length} bytes answered`));
          else setTimeout(check, 20);
        };
        check();
      });
      expect(answered).to.equal(written / 20);
    } finally {
      await close();
    }
  });

  it('re-arms its idle timer once per read, not once per message (a read can hold thousands of tiny ones)', async () => {
    let frames = 0;
    const { client, close } = await connectionPair(60_000, () => (frames += 1));
    const realSetTimeout = globalThis.setTimeout;
    let timers = 0;
    globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
      timers += 1;
      return realSetTimeout(...args);
    }) as typeof setTimeout;
    try {
      // 4,000 empty ChannelData messages (4 bytes each) in one write: a few reads at most.
      client.write(Buffer.concat(Array.from({ length: 4_000 }, () => Buffer.from([0x40, 0x00, 0x00, 0x00]))));
      const deadline = Date.now() + 5_000;
      while (frames < 4_000 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
      expect(frames).to.equal(4_000);
      expect(timers, 'idle timers armed').to.be.below(50);
    } finally {
      globalThis.setTimeout = realSetTimeout;
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
