import { expect } from 'chai';
import { closeRedisConnection, createRedisConnection, describeRedisUrl, retryDelay } from '../../server/cluster/connection.js';
import { settlesWithin } from '../helpers/deadlines.js';
import { capturedLogger } from '../helpers/logs.js';
import { delay, FAST_CONNECTION, waitUntil } from './nodes.js';
import { clusterSuite } from './setup.js';

interface LogLine {
  level: number;
  msg: string;
  redis?: string;
  connection?: string;
}

const parse = (lines: string[]): LogLine[] => lines.map((line) => JSON.parse(line) as LogLine);

describe('cluster: Redis connections', function () {
  it('describeRedisUrl keeps scheme, host and port only', function () {
    expect(describeRedisUrl('redis://user:hunter2@cache.example.com:6380/2?password=x')).to.equal('redis://cache.example.com:6380');
    expect(describeRedisUrl('rediss://:pw@10.0.0.5')).to.equal('rediss://10.0.0.5');
    expect(describeRedisUrl('redis://[::1]:7000')).to.equal('redis://[::1]:7000');
    // Unparseable (a raw "/" or "#" in the password): nothing of the text is shown.
    for (const url of ['redis://:pa/ss@host:6379', 'redis://:pa#ss@host', 'not a url hunter2', 'http://u:hunter2@host']) {
      const described = describeRedisUrl(url);
      expect(described).to.not.match(/pa|ss|hunter2/, url);
    }
  });

  it('reconnection delays grow linearly to their cap and never stop', function () {
    expect([1, 2, 3, 10, 1000].map((attempt) => retryDelay(attempt, 100, 2_000))).to.deep.equal([100, 200, 300, 1_000, 2_000]);
  });

  it('nothing listening: commands fail fast, one warn line for the whole outage, no password in it', async function () {
    const { logger, lines } = capturedLogger('debug');
    const redis = createRedisConnection('redis://switchboard:hunter2@127.0.0.1:1/0', { ...FAST_CONNECTION, name: 'test', logger });
    try {
      const outcome = await settlesWithin(redis.get('k'), 3_000);
      expect(outcome.error).to.be.an('error');
      await delay(600); // several reconnection attempts
      const warnings = parse(lines).filter((line) => line.level === 40);
      expect(warnings.map((line) => line.msg)).to.deep.equal(['redis connection lost; reconnecting']);
      expect(warnings[0]).to.include({ redis: 'redis://127.0.0.1:1', connection: 'test' });
      expect(lines.join('\n')).to.not.include('hunter2');
    } finally {
      await closeRedisConnection(redis);
    }
  });

  describe('against a redis-server that is killed and started again', function () {
    this.timeout(20_000);
    const suite = clusterSuite({ raw: 'none' });

    it('one warn line on loss, one info line on recovery; commands fail within the timeout meanwhile and work again after', async function () {
      const { logger, lines } = capturedLogger('info');
      const redis = createRedisConnection(suite.server.url, { ...FAST_CONNECTION, name: 'test', logger });
      try {
        expect(await redis.set('k', 'v')).to.equal('OK');
        await suite.server.kill();
        const outcome = await settlesWithin(redis.get('k'), 3_000);
        expect(outcome.error).to.be.an('error');
        expect(outcome.elapsed).to.be.below(2_000);
        await delay(500);
        await suite.server.restart();
        await waitUntil(async () => (await redis.get('k').catch(() => 'down')) === null, 'the new empty server answers', 5_000);
        const logged = parse(lines).map((line) => `${line.level} ${line.msg}`);
        expect(logged).to.deep.equal(['40 redis connection lost; reconnecting', '30 redis connection restored']);
      } finally {
        await closeRedisConnection(redis);
      }
    });

    it('the bus answers again after a restart (the subscriber subscribes again by itself)', async function () {
      type Kinds = { ping: { payload: { n: number }; answer: { n: number } } };
      const a = await suite.startBus<Kinds>('node-a');
      const b = await suite.startBus<Kinds>('node-b');
      b.bus.handle('ping', ({ n }) => ({ n: n + 1 }));
      expect(await a.bus.request('node-b', 'ping', { n: 1 })).to.deep.equal({ n: 2 });
      await suite.server.restart();
      await waitUntil(
        async () => (await a.bus.request('node-b', 'ping', { n: 2 }, { timeoutMs: 300 }).catch(() => null))?.n === 3,
        'node-b answers again',
        5_000,
      );
    });
  });
});
