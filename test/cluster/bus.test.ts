import { expect } from 'chai';
import { Redis } from 'ioredis';
import { parseBusMessage } from '../../server/cluster/ClusterBus.js';
import { AppError } from '../../server/errors.js';
import { capturedLogger } from '../helpers/logs.js';
import { delay, rejection, startBus, waitUntil, type TestBus } from './nodes.js';
import { clusterSuite } from './setup.js';

/** The request kinds these tests use. */
type Kinds = {
  echo: { payload: { n: number; at?: Date }; answer: { n: number; by: string; from: string } };
  slow: { payload: { n: number; ms: number }; answer: { n: number } };
  fail: { payload: { code: 'room_not_found' | 'boom' }; answer: never };
  count: { payload: { value: number }; answer: number };
  silent: { payload: Record<string, never>; answer: null };
};

describe('cluster: ClusterBus', function () {
  const suite = clusterSuite();
  const start = (id: string, options?: Parameters<typeof startBus>[3]): Promise<TestBus<Kinds>> => suite.startBus<Kinds>(id, options);

  const serveEcho = (node: TestBus<Kinds>): void => {
    node.bus.handle('echo', ({ n }, { from }) => ({ n, by: node.bus.nodeId, from }));
  };

  it('request -> answer round trip, addressed to one node; payloads travel as JSON', async function () {
    const a = await start('node-a');
    const b = await start('node-b');
    const c = await start('node-c');
    serveEcho(b);
    serveEcho(c);
    expect(await a.bus.request('node-b', 'echo', { n: 7 })).to.deep.equal({ n: 7, by: 'node-b', from: 'node-a' });
    expect(await a.bus.request('node-c', 'echo', { n: 8 })).to.deep.equal({ n: 8, by: 'node-c', from: 'node-a' });
    // A request to the node itself runs its own handler (it has none for echo: unavailable).
    expect((await rejection(a.bus.request('node-a', 'echo', { n: 1 }))).code).to.equal('unavailable');
    serveEcho(a);
    expect(await a.bus.request('node-a', 'echo', { n: 9 })).to.deep.equal({ n: 9, by: 'node-a', from: 'node-a' });
    // JSON: a Date arrives as its ISO string.
    let received: unknown = null;
    b.bus.handle('echo', (payload) => {
      received = payload;
      return { n: payload.n, by: 'node-b', from: 'x' };
    });
    await a.bus.request('node-b', 'echo', { n: 1, at: new Date(0) });
    expect(received).to.deep.equal({ n: 1, at: '1970-01-01T00:00:00.000Z' });
    expect(a.bus.pendingCount).to.equal(0);
  });

  it('a node that is gone (not subscribed): unavailable at once, well within the timeout', async function () {
    const a = await start('node-a');
    const b = await start('node-b');
    serveEcho(b);
    await b.close();
    const started = Date.now();
    const error = await rejection(a.bus.request('node-b', 'echo', { n: 1 }, { timeoutMs: 2_000 }));
    expect(error.code).to.equal('unavailable');
    expect(Date.now() - started).to.be.below(1_000);
    expect((await rejection(a.bus.request('node-never', 'echo', { n: 1 }))).code).to.equal('unavailable');
    expect(a.bus.pendingCount).to.equal(0);
  });

  it('a node that receives but never answers (hung, or died mid-request): unavailable after the timeout, and a late answer is ignored', async function () {
    const a = await start('node-a');
    const b = await start('node-b');
    let release: () => void = () => undefined;
    b.bus.handle('silent', () => new Promise<null>((resolve) => (release = () => resolve(null))));
    const started = Date.now();
    const error = await rejection(a.bus.request('node-b', 'silent', {}, { timeoutMs: 300 }));
    const elapsed = Date.now() - started;
    expect(error.code).to.equal('unavailable');
    expect(error.message).to.match(/did not answer silent within 300 ms/);
    expect(elapsed).to.be.within(290, 1_000);
    expect(a.bus.pendingCount).to.equal(0);
    release();
    await delay(100);
    // The bus still works after the late answer arrived and was dropped.
    serveEcho(b);
    expect((await a.bus.request('node-b', 'echo', { n: 2 })).n).to.equal(2);
  });

  it("a handler's error code and message travel back; an unexpected error is `internal` without its detail", async function () {
    const a = await start('node-a');
    const b = await start('node-b');
    b.bus.handle('fail', ({ code }) => {
      if (code === 'room_not_found') throw new AppError('room_not_found', 'no room r1 in tenant t1');
      throw new Error('secret internal detail');
    });
    const known = await rejection(a.bus.request('node-b', 'fail', { code: 'room_not_found' }));
    expect(known.code).to.equal('room_not_found');
    expect(known.message).to.equal('no room r1 in tenant t1');
    expect(known.status).to.equal(404);
    const unexpected = await rejection(a.bus.request('node-b', 'fail', { code: 'boom' }));
    expect(unexpected.code).to.equal('internal');
    expect(unexpected.message).to.not.include('secret');
    // No handler for a kind: unavailable.
    expect((await rejection(a.bus.request('node-b', 'count', { value: 1 }))).code).to.equal('unavailable');
  });

  it("a handler's parse rejects an invalid payload with payload_invalid", async function () {
    const a = await start('node-a');
    const b = await start('node-b');
    b.bus.handle('count', ({ value }) => value + 1, {
      parse: (raw) => {
        const value = (raw as { value?: unknown } | null)?.value;
        if (typeof value !== 'number') throw new Error('value must be a number');
        return { value };
      },
    });
    expect(await a.bus.request('node-b', 'count', { value: 41 })).to.equal(42);
    const forged = { value: 'x' } as unknown as { value: number };
    expect((await rejection(a.bus.request('node-b', 'count', forged))).code).to.equal('payload_invalid');
  });

  it('concurrent requests to several nodes are matched to their answers by id', async function () {
    const a = await start('node-a');
    const b = await start('node-b');
    const c = await start('node-c');
    for (const node of [b, c]) {
      node.bus.handle('slow', async ({ n, ms }) => {
        await delay(ms);
        return { n };
      });
    }
    // Answers come back in an order unrelated to the requests' (random delays).
    const requests = Array.from({ length: 100 }, (_, n) =>
      a.bus.request(n % 2 === 0 ? 'node-b' : 'node-c', 'slow', { n, ms: Math.floor(Math.random() * 50) }, { timeoutMs: 5_000 }),
    );
    const answers = await Promise.all(requests);
    expect(answers.map((answer) => answer.n)).to.deep.equal(Array.from({ length: 100 }, (_, n) => n));
    expect(a.bus.pendingCount).to.equal(0);
  });

  it('malformed or forged messages on a node channel are dropped with a debug line; the bus keeps working', async function () {
    const { logger, lines } = capturedLogger('debug');
    const a = await start('node-a', { logger });
    const b = await start('node-b');
    serveEcho(b);
    let calls = 0;
    a.bus.handle('count', ({ value }) => {
      calls++;
      return value;
    });
    const channel = suite.keys.busChannel('node-a');
    // A request to b whose answer a is waiting for, while garbage (and a forged reply) arrives.
    b.bus.handle('slow', async ({ n, ms }) => {
      await delay(ms);
      return { n };
    });
    const pending = a.bus.request('node-b', 'slow', { n: 5, ms: 300 }, { timeoutMs: 3_000 });
    await delay(50);
    const garbage = [
      'not json',
      'null',
      '[]',
      '42',
      '{}',
      JSON.stringify({ v: 2, type: 'request', id: '1', from: 'node-b', kind: 'count', payload: { value: 1 } }),
      JSON.stringify({ v: 1, type: 'request', id: '', from: 'node-b', kind: 'count' }),
      JSON.stringify({ v: 1, type: 'request', id: '1', from: 'bad node!', kind: 'count' }),
      JSON.stringify({ v: 1, type: 'request', id: '1', from: 'node-b', kind: 42 }),
      JSON.stringify({ v: 1, type: 'reply', id: 'unknown-id', from: 'node-b', ok: true, answer: 1 }),
      JSON.stringify({ v: 1, type: 'reply', id: 'x', from: 'node-b', ok: 'yes' }),
      JSON.stringify({ v: 1, type: 'shout', id: 'x', from: 'node-b' }),
      'x'.repeat(1024 * 1024 + 1),
    ];
    for (const message of garbage) await suite.raw.publish(channel, message);
    expect(await pending).to.deep.equal({ n: 5 });
    expect(calls).to.equal(0);
    const dropped = lines
      .map((line) => JSON.parse(line) as { msg: string; level: number })
      .filter((line) => /^bus (message|reply) dropped/.test(line.msg));
    expect(dropped.length).to.equal(garbage.length);
    expect(dropped.every((line) => line.level === 20)).to.equal(true);
    // Still answers and still asks.
    expect(await b.bus.request('node-a', 'count', { value: 3 })).to.equal(3);
    expect((await a.bus.request('node-b', 'echo', { n: 4 })).n).to.equal(4);
  });

  it('a reply from another node than the target does not settle the request', async function () {
    const a = await start('node-a');
    const b = await start('node-b');
    let requestId: string | null = null;
    // A raw listener on b's channel sees a's request (and its id) without answering it.
    const spy = new Redis(suite.server.url);
    try {
      await spy.subscribe(suite.keys.busChannel('node-b'));
      spy.on('message', (_channel: string, text: string) => {
        const message = parseBusMessage(text);
        if (typeof message !== 'string') requestId = message.id;
      });
      b.bus.handle('slow', async ({ n, ms }) => {
        await delay(ms);
        return { n };
      });
      const pending = a.bus.request('node-b', 'slow', { n: 1, ms: 300 }, { timeoutMs: 3_000 });
      await waitUntil(() => requestId !== null, 'the spy saw the request');
      const forged = { v: 1, type: 'reply', id: requestId, from: 'node-c', ok: true, answer: { n: 666 } };
      await suite.raw.publish(suite.keys.busChannel('node-a'), JSON.stringify(forged));
      expect(await pending).to.deep.equal({ n: 1 });
    } finally {
      spy.disconnect();
    }
  });

  it('close() fails pending requests with unavailable and refuses new ones', async function () {
    const a = await start('node-a');
    const b = await start('node-b');
    b.bus.handle('silent', () => new Promise<null>(() => undefined));
    const pending = rejection(a.bus.request('node-b', 'silent', {}, { timeoutMs: 10_000 }));
    await delay(50);
    const started = Date.now();
    await a.bus.close();
    expect((await pending).code).to.equal('unavailable');
    expect(Date.now() - started).to.be.below(1_000);
    expect((await rejection(a.bus.request('node-b', 'silent', {}))).code).to.equal('unavailable');
  });

  it('parseBusMessage checks the envelope only', function () {
    expect(parseBusMessage('{"v":1,"type":"request","id":"i","from":"n1","kind":"k"}')).to.deep.include({ type: 'request', kind: 'k' });
    expect(parseBusMessage('{"v":1,"type":"reply","id":"i","from":"n1","ok":false,"error":{"code":"nope","message":"m"}}')).to.deep.include(
      {
        ok: false,
        error: { code: 'internal', message: 'm' },
      },
    );
    expect(parseBusMessage('{"v":1,"type":"request","id":"i","from":"n:1","kind":"k"}')).to.be.a('string');
  });
});
