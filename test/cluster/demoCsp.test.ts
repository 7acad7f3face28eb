/**
 * The demo page's Content-Security-Policy: in a cluster its connect-src allows 'self' and the
 * live nodes' origins (the SDK may be redirected to any of them), never any host (a bare ws: or
 * wss:); a single node keeps helmet's default policy.
 */
import type { ServerResponse } from 'node:http';
import { expect } from 'chai';
import type { Request, Response } from 'express';
import helmet from 'helmet';
import { useCluster, type ClusterNode } from '../helpers/cluster.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';

async function pagePolicy(url: string): Promise<string> {
  const response = await fetch(`${url}/`, { signal: AbortSignal.timeout(5_000) });
  await response.arrayBuffer();
  const policy = response.headers.get('content-security-policy');
  if (policy === null) throw new Error(`no Content-Security-Policy on ${url}/`);
  return policy;
}

/** The sources of one directive, or null when the policy has none. */
function directive(policy: string, name: string): string[] | null {
  for (const part of policy.split(';')) {
    const [directiveName, ...sources] = part.trim().split(/\s+/);
    if (directiveName === name) return sources;
  }
  return null;
}

/** The Content-Security-Policy helmet() sets with its defaults. */
function helmetDefaultPolicy(): string {
  const headers = new Map<string, string>();
  const res = {
    setHeader: (name: string, value: string) => headers.set(name.toLowerCase(), value),
    removeHeader: () => undefined,
  } as unknown as ServerResponse;
  helmet()({} as Request, res as Response, () => undefined);
  const policy = headers.get('content-security-policy');
  if (!policy) throw new Error('helmet set no Content-Security-Policy');
  return policy;
}

const originsOf = (node: ClusterNode): string[] => {
  const { host } = new URL(node.url);
  return [`http://${host}`, `ws://${host}`];
};

describe('demo page Content-Security-Policy', function () {
  this.timeout(30_000);

  describe('in a cluster', function () {
    const suite = useCluster();

    it("connect-src lists 'self' and every live node's HTTP and WebSocket origins, and no bare ws: or wss:", async function () {
      const cluster = await suite.start(2);
      const [a, b] = cluster.nodes;
      if (!a || !b) throw new Error('two nodes');
      const expected = [...originsOf(a), ...originsOf(b)];
      // A lists the nodes on every heartbeat; B started after A's first listing.
      const connectSrcOfA = async (): Promise<string[]> => directive(await pagePolicy(a.url), 'connect-src') ?? [];
      await waitFor(
        async () => {
          const sources = await connectSrcOfA();
          return expected.every((origin) => sources.includes(origin));
        },
        3_000,
        "node B's origins in node A's connect-src",
      );
      for (const node of [a, b]) {
        const policy = await pagePolicy(node.url);
        const sources = directive(policy, 'connect-src');
        expect(sources, policy).to.include("'self'");
        expect(sources, policy).to.include.members(expected);
        expect(sources, policy).to.not.include.members(['ws:', 'wss:', 'http:', 'https:', '*']);
        // Nothing but 'self' and the nodes' origins.
        expect(sources!.filter((source) => source !== "'self'").sort(), policy).to.deep.equal([...expected].sort());
      }
      // A node that left is no longer allowed once the registry's listing shows it gone.
      const gone = originsOf(b);
      await cluster.stopNode(1);
      await waitFor(
        async () => {
          const sources = await connectSrcOfA();
          return !gone.some((origin) => sources.includes(origin));
        },
        3_000,
        "node B's origins gone from node A's connect-src",
      );
    });
  });

  describe('on a single node (no REDIS_URL)', function () {
    let server: TestServer | undefined;
    afterEach(async function () {
      await server?.close();
      server = undefined;
    });

    it("keeps helmet's default policy", async function () {
      server = await startServer();
      const policy = await pagePolicy(server.url);
      expect(policy).to.equal(helmetDefaultPolicy());
      expect(directive(policy, 'connect-src')).to.equal(null);
    });
  });
});
