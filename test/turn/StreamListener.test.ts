/** StreamListener on a loopback port: an error of the listening socket after it listens is reported, not thrown. */
import net from 'node:net';
import { expect } from 'chai';
import { connectionCapKey, StreamListener } from '../../turn/StreamListener.js';

describe('StreamListener', () => {
  it('counts connections per IPv4 address and per IPv6 /64 (TURN_MAX_CONNECTIONS_PER_IP)', () => {
    expect(connectionCapKey('203.0.113.7')).to.equal('203.0.113.7');
    expect(connectionCapKey('::ffff:203.0.113.7')).to.equal('203.0.113.7');
    // Every address of one /64 is one client: a host can pick any of them.
    const keys = ['2001:db8:1:2::1', '2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:0db8:0001:0002:abcd::9'].map(connectionCapKey);
    expect(new Set(keys).size).to.equal(1);
    expect(connectionCapKey('2001:db8:1:3::1')).not.to.equal(keys[0]);
    expect(connectionCapKey('::1')).to.equal('0:0:0:0::/64');
  });

  it('reports an accept error (ENOBUFS, ENFILE, ...) and keeps accepting connections', async () => {
    const errors: Error[] = [];
    const frames: Buffer[] = [];
    const listener = new StreamListener({
      protocol: 'tcp',
      host: '127.0.0.1',
      idleTimeoutMs: 60_000,
      admit: () => true,
      onFrame: (_connection, frame) => void frames.push(frame),
      onEnd: () => undefined,
      onListenerError: (error) => void errors.push(error),
    });
    const port = await listener.listen(0);
    try {
      // What net.Server emits when accept() fails; node's libuv only hides EMFILE (its spare descriptor trick).
      const server = (listener as unknown as { server: net.Server }).server;
      const error = Object.assign(new Error('accept ENOBUFS'), { code: 'ENOBUFS', syscall: 'accept' });
      expect(() => server.emit('error', error)).not.to.throw();
      expect(errors).to.deep.equal([error]);
      const client = net.connect({ host: '127.0.0.1', port });
      client.on('error', () => undefined);
      const binding = Buffer.alloc(20);
      binding.writeUInt16BE(0x0001, 0);
      binding.writeUInt32BE(0x2112a442, 4);
      client.write(binding);
      const deadline = Date.now() + 5_000;
      while (frames.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      client.destroy();
      expect(frames.map((frame) => frame.length)).to.deep.equal([20]);
    } finally {
      await listener.close();
    }
  });
});
