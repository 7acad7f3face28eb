import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import WebSocket from 'ws';
import { createLogger } from '../../server/logger.js';
import { emitAck, nextEvent, signRaw, startServer, TEST_SECRET, validClaims, type TestServer } from '../helpers/server.js';

describe('connection lifecycle', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('cleans up a half-open client through the ping timeout (reason timeout), once its held place expires', async function () {
    this.timeout(15000);
    t = await startServer({ SOCKET_PING_INTERVAL_MS: '300', SOCKET_PING_TIMEOUT_MS: '300', RESUME_GRACE_MS: '500' });
    const watcher = await t.join({ room: 'half', user: 'watcher' });
    // A raw Engine.IO client that joins and then never answers a ping (a vanished laptop).
    const token = t.mint({ room: 'half', user: 'ghost' });
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
    ws.on('message', (data: Buffer) => {
      const text = data.toString();
      if (text.startsWith('0')) ws.send(`40${JSON.stringify({ token })}`);
      else if (text.startsWith('40')) ws.send('420["join",{}]');
    });
    await nextEvent(watcher.client, 'peer_joined');
    // The ghost never closes: the server's ping timeout drops it, its place is held for
    // RESUME_GRACE_MS, then given up (reason timeout). How fast is bench/'s business; a
    // wall-clock bound here breaks on a loaded machine.
    const left = await nextEvent<{ user_id: string; reason: string }>(watcher.client, 'peer_left', 12000);
    expect(left).to.deep.equal({ ...left, user_id: 'ghost', reason: 'timeout' });
    ws.terminate();
  });

  it('never writes a token or secret to the log, even at trace level', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    t = await startServer({ LOG_LEVEL: 'trace' }, { logger: createLogger('trace', sink) });
    const token = t.mint({ room: 'logs', user: 'alice' });
    const a = await t.connect(token);
    await emitAck(a, 'join', {});
    const badToken = signRaw(validClaims(), { secret: 'wrong-secret-wrong-secret-wrong-secret' });
    await t.connect(badToken).catch(() => undefined);
    await t.connect(token, { query: { token } }).catch(() => undefined);
    t.server.logger.info({ token, auth: { token }, headers: { authorization: `Bearer ${token}` } }, 'a careless log call');
    await new Promise((r) => setTimeout(r, 50));
    const all = lines.join('');
    expect(lines.length).to.be.greaterThan(0);
    for (const secret of [token, badToken, TEST_SECRET, token.split('.')[2] as string]) expect(all).to.not.include(secret);
    expect(all).to.include('[redacted]');
  });
});

describe('graceful shutdown', () => {
  it('on SIGTERM: /ready turns false, peers are told, the process exits 0', async function () {
    this.timeout(40000);
    const secret = '0123456789abcdef0123456789abcdef';
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
      env: {
        PATH: process.env.PATH ?? '',
        PORT: '0',
        HOST: '127.0.0.1',
        METRICS_PORT: '0',
        LOG_LEVEL: 'warn',
        SIGNING_KEYS: `k1:${secret}`,
        TURN_ENABLED: 'false',
        SFU_ENABLED: 'false',
        SHUTDOWN_DRAIN_MS: '1500',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const match = /listening on [^:]+:(\d+)/.exec(out);
          if (match) resolve(Number(match[1]));
        });
        child.on('exit', (code) => reject(new Error(`exited early with ${code}`)));
      });
      const url = `http://127.0.0.1:${port}`;
      expect((await fetch(`${url}/ready`)).status).to.equal(200);

      const { io } = await import('socket.io-client');
      const jwt = (await import('jsonwebtoken')).default;
      const now = Math.floor(Date.now() / 1000);
      const token = jwt.sign({ ...validClaims({ tid: 'dev', iat: now, exp: now + 60 }) }, secret, { algorithm: 'HS256', keyid: 'k1' });
      const client = io(url, { auth: { token }, transports: ['websocket'], reconnection: false });
      const ack = await client.timeout(5000).emitWithAck('join', {});
      expect(ack.ok).to.equal(true);
      const closed = new Promise<{ reason: string }>((resolve) => client.once('room_closed', resolve));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));

      child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      const ready = await fetch(`${url}/ready`);
      expect(ready.status).to.equal(503);
      expect(((await ready.json()) as { checks: { accepting: boolean } }).checks.accepting).to.equal(false);
      expect((await closed).reason).to.equal('server_shutdown');
      expect(await exited).to.equal(0);
      client.close();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
