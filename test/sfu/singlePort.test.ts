/**
 * Single-port media (issue 20): each mediasoup worker's WebRtcServer listens on SFU_PORT + its
 * index, UDP and TCP; every transport of the worker is announced on that port; a worker killed
 * with -9 is replaced on the same port; a port in use fails the boot naming SFU_PORT, and a
 * replacement that cannot take its port keeps /ready at 503 until it can. Real mediasoup workers.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import type { SfuTransportInfo } from '../../protocol/events.js';
import { freeSfuPort } from '../helpers/ports.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';

const IP = '127.0.0.1';
const SFU_ENV = { SFU_ENABLED: 'true', SFU_WORKERS: '2', SFU_LISTEN_IP: IP };

function bindUdp(port: number): Promise<UdpSocket> {
  const socket = createSocket('udp4');
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, IP, () => resolve(socket));
  });
}

function listenTcp(port: number): Promise<TcpServer> {
  const server = createTcpServer();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, IP, () => resolve(server));
  });
}

/** The error a bind of `port` meets now (UDP, then TCP), or null when both bind. */
async function bindError(port: number): Promise<{ udp: string | null; tcp: string | null }> {
  const udp = await bindUdp(port).then(
    (s) => new Promise<null>((resolve) => s.close(() => resolve(null))),
    (error: NodeJS.ErrnoException) => error.code ?? 'error',
  );
  const tcp = await listenTcp(port).then(
    (s) => new Promise<null>((resolve) => s.close(() => resolve(null))),
    (error: NodeJS.ErrnoException) => error.code ?? 'error',
  );
  return { udp, tcp };
}

/** An ICE candidate of mediasoup's (the protocol types it as unknown). */
interface Candidate {
  protocol: string;
  ip: string;
  port: number;
  priority: number;
  tcpType?: string;
}
const iceCandidates = (transport: SfuTransportInfo): Candidate[] => transport.iceCandidates as Candidate[];

/** The (protocol, ip, port) of a transport's ICE candidates. */
const candidates = (transport: SfuTransportInfo) =>
  iceCandidates(transport)
    .map((c) => `${c.protocol} ${c.ip}:${c.port}`)
    .sort();

describe('SFU single-port media: one WebRtcServer per worker on SFU_PORT + index (issue 20)', function () {
  this.timeout(30000);
  let t: TestServer | undefined;
  const held: Array<UdpSocket | TcpServer> = [];
  afterEach(async () => {
    await t?.close();
    t = undefined;
    for (const socket of held.splice(0)) socket.close();
  });

  it("announces every transport of worker i on SFU_PORT + i, UDP and TCP, at SFU_ANNOUNCED_IP; both ports are the workers' own", async () => {
    const port = await freeSfuPort(2, IP);
    t = await startServer({ ...SFU_ENV, SFU_PORT: String(port), SFU_ANNOUNCED_IP: '127.0.0.1' });
    const sfu = t.server.sfu!;
    // Least loaded placement: the first room on worker 0, the second on worker 1.
    const rooms = [await sfu.open('r0', 't1'), await sfu.open('r1', 't1')];
    expect(rooms.map((r) => r.worker.index)).to.deep.equal([0, 1]);
    for (const [index, room] of rooms.entries()) {
      const transports = [
        await room.createTransport('a', true, 'send'),
        await room.createTransport('a', true, 'recv'),
        await room.createTransport('b', true, 'recv'),
      ];
      for (const transport of transports)
        expect(candidates(transport), `worker ${index}`).to.deep.equal([`tcp 127.0.0.1:${port + index}`, `udp 127.0.0.1:${port + index}`]);
      // The TCP candidate is passive (the browser connects) and ranks below UDP (preferUdp).
      const [udp, tcp] = ['udp', 'tcp'].map((p) => iceCandidates(transports[0]!).find((c) => c.protocol === p)!) as [Candidate, Candidate];
      expect(tcp.tcpType).to.equal('passive');
      expect(udp.priority).to.be.greaterThan(tcp.priority);
    }
    // The worker processes hold both ports, UDP and TCP.
    for (const index of [0, 1])
      expect(await bindError(port + index), `port ${port + index}`).to.deep.equal({ udp: 'EADDRINUSE', tcp: 'EADDRINUSE' });
  });

  it('refuses to boot, naming SFU_PORT and the port, when a worker port is taken (UDP or TCP)', async () => {
    const port = await freeSfuPort(2, IP);
    held.push(await bindUdp(port + 1));
    let error: Error | null = null;
    await startServer({ ...SFU_ENV, SFU_PORT: String(port) }).catch((e: Error) => (error = e));
    expect(error, 'boot error').to.be.an('error');
    expect(String((error as Error | null)?.message)).to.match(
      new RegExp(`^SFU_PORT: SFU worker 1 cannot listen on 127\\.0\\.0\\.1:${port + 1}\\b`),
    );
    expect(String((error as Error | null)?.message)).to.include('address already in use');
    // What the failed boot started is closed again: worker 0's port is free.
    await waitFor(async () => (await bindError(port)).udp === null, 5000, 'worker 0 to release its port');

    // TCP taken, UDP free: refused as well (ICE over TCP needs it).
    for (const socket of held.splice(0)) socket.close();
    held.push(await listenTcp(port));
    error = null;
    await startServer({ ...SFU_ENV, SFU_PORT: String(port) }).catch((e: Error) => (error = e));
    expect(String((error as Error | null)?.message)).to.match(
      new RegExp(`^SFU_PORT: SFU worker 0 cannot listen on 127\\.0\\.0\\.1:${port}\\b`),
    );
  });

  it("the server process (npm start's entry point) exits 1 with one line naming SFU_PORT, no stack trace, when its port is taken", async () => {
    const port = await freeSfuPort(1, IP);
    held.push(await listenTcp(port));
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      PORT: '0',
      TURN_ENABLED: 'false',
      SFU_WORKERS: '1',
      SFU_LISTEN_IP: IP,
      SFU_PORT: String(port),
      LOG_LEVEL: 'silent',
    };
    if (process.env.MEDIASOUP_WORKER_BIN) env.MEDIASOUP_WORKER_BIN = process.env.MEDIASOUP_WORKER_BIN;
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).to.equal(1);
    expect(stderr.trim().split('\n'), stderr).to.have.length(1);
    expect(stderr).to.match(
      new RegExp(`^switchboard: cannot start: SFU_PORT: SFU worker 0 cannot listen on 127\\.0\\.0\\.1:${port}\\b.*address already in use`),
    );
  });

  it('replaces a worker killed with -9 on the same port; /ready is 503 while the replacement cannot take its port, 200 once it can', async () => {
    const port = await freeSfuPort(2, IP);
    t = await startServer({ ...SFU_ENV, SFU_PORT: String(port) });
    const pool = t.server.sfu!.pool;
    const ready = async () => {
      const response = await fetch(`${t!.url}/ready`);
      return { status: response.status, sfu: ((await response.json()) as { checks: { sfu: boolean } }).checks.sfu };
    };
    expect(await ready()).to.deep.equal({ status: 200, sfu: true });

    // Kill worker 1: its replacement listens on SFU_PORT + 1 again, and new transports there are announced on it.
    const first = pool.at(1)!.worker.pid;
    process.kill(first, 'SIGKILL');
    await waitFor(() => (pool.at(1)?.worker.pid ?? first) !== first, 10000, 'a replacement of worker 1');
    expect(pool.at(1)!.webRtcServer, 'the replacement has a WebRtcServer').to.not.equal(null);
    expect(await bindError(port + 1)).to.deep.equal({ udp: 'EADDRINUSE', tcp: 'EADDRINUSE' });
    await t.server.sfu!.open('busy', 't1'); // worker 0 (both idle: the first in order)
    const onReplacement = await t.server.sfu!.open('after-restart', 't1');
    expect(onReplacement.worker.index).to.equal(1);
    expect(candidates(await onReplacement.createTransport('p', true, 'recv'))).to.deep.equal([
      `tcp 127.0.0.1:${port + 1}`,
      `udp 127.0.0.1:${port + 1}`,
    ]);
    expect(await ready()).to.deep.equal({ status: 200, sfu: true });

    // Kill it again and take its UDP port as soon as the dead process lets go of it (the pool waits 500 ms).
    const second = pool.at(1)!.worker.pid;
    process.kill(second, 'SIGKILL');
    await waitFor(
      async () => {
        const socket = await bindUdp(port + 1).catch(() => null);
        if (socket) held.push(socket);
        return socket !== null;
      },
      5000,
      'the dead worker to release its port',
    );
    await waitFor(() => pool.failedSlots.has(1), 10000, 'the replacement to fail on its port');
    expect(pool.failedSlots.get(1)).to.match(new RegExp(`SFU_PORT: SFU worker 1 cannot listen on 127\\.0\\.0\\.1:${port + 1}\\b`));
    expect(pool.at(1)).to.equal(null);
    expect(pool.at(0), 'worker 0 still serves').to.not.equal(null);
    expect(await ready()).to.deep.equal({ status: 503, sfu: false });

    // Port free again: the next try (every 2 s) takes it, and the node is ready.
    for (const socket of held.splice(0)) socket.close();
    await waitFor(() => pool.at(1) !== null, 10000, 'the replacement to start once the port is free');
    expect(pool.failedSlots.size).to.equal(0);
    expect(await bindError(port + 1)).to.deep.equal({ udp: 'EADDRINUSE', tcp: 'EADDRINUSE' });
    expect(await ready()).to.deep.equal({ status: 200, sfu: true });
  });

  it('SFU_PORT=0 keeps the port range: each transport its own port within SFU_MIN_PORT..SFU_MAX_PORT, no WebRtcServer', async () => {
    const base = 46000 + Math.floor(Math.random() * 3000);
    t = await startServer({ ...SFU_ENV, SFU_WORKERS: '1', SFU_PORT: '0', SFU_MIN_PORT: String(base), SFU_MAX_PORT: String(base + 20) });
    expect(t.server.sfu!.pool.at(0)!.webRtcServer).to.equal(null);
    const room = await t.server.sfu!.open('range', 't1');
    const ports = [];
    for (let i = 0; i < 3; i++)
      for (const c of iceCandidates(await room.createTransport(`p${i}`, true, 'recv'))) {
        expect(c.port).to.be.within(base, base + 20);
        ports.push(`${c.protocol}:${c.port}`);
      }
    expect(new Set(ports).size, `ports ${ports.join(', ')}`).to.equal(6);
  });
});
