/**
 * The relay's UDP sockets on both kinds of I/O (turn/udpEndpoint.ts): the native addon
 * (recvmmsg batches, turn/native/udp_batch.c) and dgram behave the same to the relay.
 */
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { expect } from 'chai';
import { bindUdpEndpoint, chooseUdpIo, loadNativeUdp, nativeAddonPath, type UdpEndpoint, type UdpIo } from '../../turn/udpEndpoint.js';
import { waitFor } from './support.js';

type Received = { data: Buffer; address: string; port: number };

/** Why the addon cannot be built here, or undefined when it can (then it must load). */
function cannotBuildReason(): string | undefined {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (spawnSync('gcc', ['--version']).status !== 0) return 'gcc is not installed';
  if (!existsSync(join(dirname(process.execPath), '..', 'include', 'node', 'node_api.h'))) return "Node's headers are not installed";
  return undefined;
}

const nativeMissing = (() => {
  const binding = loadNativeUdp();
  return 'error' in binding ? binding.error : undefined;
})();

function collect(endpoint: UdpEndpoint): Received[] {
  const received: Received[] = [];
  // Copies: a native batch's slot is overwritten by the next batch.
  endpoint.onMessage((data, address, port) => received.push({ data: Buffer.from(data), address, port }));
  return received;
}

function udpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind({ port, address: '127.0.0.1', exclusive: true }, () => socket.close(() => resolve(true)));
  });
}

describe('TURN relay UDP I/O (TURN_UDP_IO)', () => {
  it('builds and loads the native addon wherever gcc and Node headers are (auto then chooses native)', function () {
    const reason = cannotBuildReason();
    if (reason) {
      console.log(`      skipped: the addon cannot be built here: ${reason}`);
      this.skip();
    }
    expect(nativeMissing, `${nativeAddonPath()}: run npm run build`).to.equal(undefined);
    expect(chooseUdpIo('auto')).to.deep.equal({ io: 'native' });
    expect(chooseUdpIo('dgram').io).to.equal('dgram');
  });

  for (const io of ['native', 'dgram'] as UdpIo[]) {
    describe(`on ${io}`, () => {
      const open: UdpEndpoint[] = [];
      const bind = async (port = 0, family: 4 | 6 = 4, address = family === 6 ? '::' : '127.0.0.1', bufferBytes = 0) => {
        const endpoint = await bindUdpEndpoint(io, family, address, port, bufferBytes);
        open.push(endpoint);
        return endpoint;
      };

      before(function () {
        if (io === 'native' && nativeMissing) {
          console.log(`      skipped: ${nativeMissing}`);
          this.skip();
        }
      });
      afterEach(async () => {
        await Promise.all(open.splice(0).map((endpoint) => endpoint.close()));
      });

      it('delivers datagrams with their source address and port: whole, from parts, and from a range', async () => {
        const [a, b] = [await bind(), await bind()];
        expect(a.io).to.equal(io);
        const received = collect(b);
        a.send(Buffer.from('one'), b.port, '127.0.0.1');
        a.send([Buffer.from('tw'), Buffer.from('o')], b.port, '127.0.0.1');
        a.send([Buffer.from('th'), Buffer.from('r'), Buffer.from('ee')], b.port, '127.0.0.1');
        a.send([Buffer.from('f'), Buffer.from('o'), Buffer.from('u'), Buffer.from('r')], b.port, '127.0.0.1');
        a.sendRange(Buffer.from('..five..'), 2, 4, b.port, '127.0.0.1');
        await waitFor(() => received.length === 5, 'five datagrams');
        expect(received.map((r) => r.data.toString())).to.deep.equal(['one', 'two', 'three', 'four', 'five']);
        for (const r of received) expect([r.address, r.port]).to.deep.equal(['127.0.0.1', a.port]);
        expect(a.address()).to.deep.equal({ address: '127.0.0.1', family: 'IPv4', port: a.port });
      });

      it('delivers a burst larger than a batch intact and in order, and the largest and the empty datagram', async () => {
        const [a, b] = [await bind(0, 4, '127.0.0.1', 4 << 20), await bind(0, 4, '127.0.0.1', 4 << 20)];
        const received = collect(b);
        const burst = Array.from({ length: 200 }, (_, i) => Buffer.alloc(100 + i, i));
        for (const datagram of burst) a.send(datagram, b.port, '127.0.0.1');
        const largest = Buffer.alloc(65_507, 7);
        a.send(largest, b.port, '127.0.0.1');
        a.send(Buffer.alloc(0), b.port, '127.0.0.1');
        await waitFor(() => received.length === burst.length + 2, 'the burst');
        expect(received.slice(0, burst.length).map((r) => r.data)).to.deep.equal(burst);
        expect(received[burst.length]?.data.equals(largest)).to.equal(true);
        expect(received[burst.length + 1]?.data.length).to.equal(0);
      });

      it('fails a bind to a taken port with EADDRINUSE, and frees its port as soon as close() resolves', async () => {
        const a = await bind();
        const taken = await bindUdpEndpoint(io, 4, '127.0.0.1', a.port).then(
          () => 'bound',
          (error: NodeJS.ErrnoException) => error.code,
        );
        expect(taken).to.equal('EADDRINUSE');
        await a.close();
        expect(await udpPortFree(a.port)).to.equal(true);
      });

      it('answers a send to an address that is not an IP literal of its family with an error, not a throw', async () => {
        const a = await bind();
        const errors: string[] = [];
        a.onError((error) => errors.push(error.message));
        const callbackError = await new Promise<Error | null>((resolve) => a.send(Buffer.from('x'), 9, '::1', resolve));
        expect(callbackError, 'IPv6 address on an IPv4 socket').to.be.instanceOf(Error);
        a.sendRange(Buffer.from('x'), 0, 1, 9, '999.1.1.1');
        await waitFor(() => errors.length === 1, 'the send error');
      });

      it('receives IPv4 datagrams on a dual-stack IPv6 socket from their mapped address, and sends back to it', async function () {
        let six: UdpEndpoint;
        try {
          six = await bind(0, 6, '::');
        } catch (error) {
          console.log(`      skipped: no IPv6 here (${(error as Error).message})`);
          this.skip();
        }
        const four = await bind();
        const atSix = collect(six);
        const atFour = collect(four);
        four.send(Buffer.from('to six'), six.port, '127.0.0.1');
        await waitFor(() => atSix.length === 1, 'the datagram on the IPv6 socket');
        expect([atSix[0]?.address, atSix[0]?.port]).to.deep.equal(['::ffff:127.0.0.1', four.port]);
        six.send(Buffer.from('back'), four.port, '::ffff:127.0.0.1');
        // Native also takes the plain IPv4 literal on an IPv6 socket (dgram refuses it).
        if (io === 'native') six.send(Buffer.from('plain'), four.port, '127.0.0.1');
        const expected = io === 'native' ? ['back', 'plain'] : ['back'];
        await waitFor(() => atFour.length === expected.length, 'the answers');
        expect(atFour.map((r) => r.data.toString())).to.deep.equal(expected);
      });

      it('delivers nothing after close(), also not the rest of a batch being delivered', async () => {
        const [a, b] = [await bind(), await bind()];
        let delivered = 0;
        b.onMessage(() => {
          delivered++;
          void b.close();
        });
        for (let i = 0; i < 10; i++) a.send(Buffer.from([i]), b.port, '127.0.0.1');
        await waitFor(() => delivered > 0, 'the first datagram');
        await new Promise((resolve) => setTimeout(resolve, 50));
        // dgram may have queued more than one datagram before the close took effect.
        if (io === 'native') expect(delivered).to.equal(1);
        else expect(delivered).to.be.lessThan(10);
      });
    });
  }

  it('releases the native sockets of a worker thread that is terminated with them open', async function () {
    if (nativeMissing) {
      console.log(`      skipped: ${nativeMissing}`);
      this.skip();
    }
    const source = `
      const { parentPort } = require('node:worker_threads');
      const udp = require(${JSON.stringify(nativeAddonPath())});
      udp.buffers();
      const handle = udp.open(4, '127.0.0.1', 0, 0, () => {});
      parentPort.postMessage(udp.port(handle));
    `;
    const worker = new Worker(source, { eval: true });
    const port = await new Promise<number>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(await udpPortFree(port), 'held by the worker').to.equal(false);
    await worker.terminate();
    await waitFor(() => udpPortFree(port), 'the port released');
  });
});
