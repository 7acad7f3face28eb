import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../config/index.js';
import { roomKey } from '../../server/cluster/keys.js';
import { parseNodeInfo } from '../../server/cluster/NodeRegistry.js';
import { rejection } from './nodes.js';
import { clusterSuite } from './setup.js';

const entry = (fields: Record<string, unknown>): string =>
  JSON.stringify({
    id: 'node-x',
    url: 'https://x.example',
    ws_url: 'https://x.example',
    load: 0,
    state: 'serving',
    started_at: new Date().toISOString(),
    ...fields,
  });

describe('cluster review (issue 17): registry entries are checked before a client is sent anywhere', function () {
  const suite = clusterSuite();

  it('parseNodeInfo takes http(s)/ws(s) URLs without credentials and a node id, nothing else', function () {
    expect(parseNodeInfo(entry({}))?.ws_url).to.equal('https://x.example');
    expect(parseNodeInfo(entry({ ws_url: 'ws://x.example:8080' }))?.ws_url).to.equal('ws://x.example:8080');
    for (const ws_url of ['javascript:alert(1)', 'file:///etc/passwd', 'https://user:pw@x.example', 'not a url', '']) {
      expect(parseNodeInfo(entry({ ws_url })), ws_url).to.equal(null);
      expect(parseNodeInfo(entry({ url: ws_url })), ws_url).to.equal(null);
    }
    expect(parseNodeInfo(entry({ id: 'a:b' }))).to.equal(null);
  });

  it('a lease held by a node whose entry advertises a URL with credentials or another scheme redirects nobody there', async function () {
    const a = await suite.startNode('node-a');
    const key = roomKey('t1', 'r');
    for (const ws_url of ['javascript:alert(1)', 'https://user:secret@evil.example']) {
      await suite.raw.set(suite.keys.node('node-x'), entry({ ws_url }), 'PX', 60_000);
      await suite.raw.set(suite.keys.lease(key), 'node-x:5', 'PX', 60_000);
      const refused = await rejection(a.leases.claim(key));
      expect(refused.code).to.equal('unavailable');
      expect(a.leases.epochOf(key)).to.equal(null);
    }
  });
});

describe('cluster review (issue 17): PUBLIC_URL', function () {
  it('refuses credentials (they would be every client ws_url and the registry entry), without echoing them', function () {
    let message = '';
    try {
      loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', PUBLIC_URL: 'https://user:s3cret@sb.example' });
    } catch (error) {
      expect(error).to.be.instanceOf(ConfigError);
      message = (error as Error).message;
    }
    expect(message).to.match(/PUBLIC_URL/);
    expect(message).to.not.include('s3cret');
    expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', PUBLIC_URL: 'https://sb.example' })).to.not.throw();
  });
});
