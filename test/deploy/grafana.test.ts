/**
 * deploy/grafana/switchboard.json: a dashboard Grafana can import (panels with unique ids and
 * places, every query on the dashboard's Prometheus data source), whose PromQL names only
 * metrics a live server exports: a node with the bundled TURN server on and in a cluster on a
 * real redis-server, scraped on its own metrics listener.
 */
import { expect } from 'chai';
import { startRedisOrSkip, type RedisServer } from '../helpers/redis.js';
import { freePort } from '../helpers/clusterProcess.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { readRepoFile } from './deployFiles.js';

interface Target {
  refId: string;
  expr: string;
  datasource: { type: string; uid: string };
}

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
}

interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown }[] };
}

/** The series names a Prometheus text exposition declares (# TYPE), with a histogram's _bucket, _sum and _count. */
function exportedSeries(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const match of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = match as unknown as [string, string, string];
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
    else if (type === 'summary') for (const suffix of ['', '_sum', '_count']) names.add(`${name}${suffix}`);
    else names.add(name);
  }
  return names;
}

/** The metric names of a PromQL expression: the identifiers in front of a label matcher. */
function selectorNames(expr: string): string[] {
  return [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{/g)].map((match) => match[1] as string);
}

describe('deploy: Grafana dashboard', function () {
  this.timeout(30_000);
  const dashboard = JSON.parse(readRepoFile('deploy/grafana/switchboard.json')) as Dashboard;
  const queryPanels = dashboard.panels.filter((panel) => panel.type !== 'row');
  const targets = queryPanels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title, ...target })));

  let redis: RedisServer | undefined;
  let t: TestServer | undefined;
  let exported: Set<string>;

  before(async function () {
    redis = await startRedisOrSkip(this);
    const metricsPort = await freePort();
    t = await startServer({
      REDIS_URL: redis.url,
      TURN_ENABLED: 'true',
      TURN_PORT: '0',
      TURN_LISTEN_IP: '127.0.0.1',
      TURN_RELAY_IP: '127.0.0.1',
      TURN_SECRET: 'dashboard-turn-secret-0123456789-0123456789',
      METRICS_PORT: String(metricsPort),
    });
    // A room, so the per-mode gauges have a series as well as their declaration.
    await t.join({ room: 'dashboard', user: 'alice' });
    const response = await fetch(t.server.metricsUrl);
    expect(response.status).to.equal(200);
    exported = exportedSeries(await response.text());
  });
  after(async () => {
    await t?.close();
    await redis?.stop();
  });

  it('is importable: a uid, unique panel ids, panels placed on the 24-column grid, queries on the data source variable', () => {
    expect(dashboard.uid).to.match(/^[a-z0-9-]{1,40}$/);
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).to.equal(ids.length);
    for (const panel of dashboard.panels) {
      expect(panel.gridPos.x + panel.gridPos.w, panel.title).to.be.at.most(24);
      expect(panel.gridPos.w * panel.gridPos.h, panel.title).to.be.greaterThan(0);
    }
    expect(dashboard.templating.list.map((variable) => [variable.name, variable.type])).to.deep.equal([
      ['datasource', 'datasource'],
      ['instance', 'query'],
    ]);
    expect(queryPanels.length).to.be.greaterThan(20);
    for (const panel of queryPanels) {
      expect(panel.datasource, panel.title).to.deep.equal({ type: 'prometheus', uid: '${datasource}' });
      expect(panel.targets?.length, panel.title).to.be.greaterThan(0);
    }
    for (const target of targets) expect(target.datasource, target.panel).to.deep.equal({ type: 'prometheus', uid: '${datasource}' });
  });

  it("names only metrics the live server exports, each selector filtered by the dashboard's node variable", () => {
    const queried = new Set<string>();
    for (const target of targets) {
      const names = selectorNames(target.expr);
      expect(names.length, `${target.panel}: ${target.expr}`).to.be.greaterThan(0);
      // Every metric in the expression sits in a selector: no bare name escapes the check.
      const mentioned = target.expr.match(/\bswitchboard_[a-z0-9_]+/g) ?? [];
      expect(mentioned.length, `${target.panel}: ${target.expr}`).to.equal(names.length);
      for (const name of names) {
        queried.add(name);
        expect(exported.has(name), `${target.panel}: ${name} is not exported`).to.equal(true);
      }
      const selectors = target.expr.match(/[a-zA-Z_:][a-zA-Z0-9_:]*\s*\{[^}]*\}/g) ?? [];
      for (const selector of selectors) expect(selector, target.panel).to.include('instance=~"$instance"');
    }
    // The node variable's own query.
    const variable = dashboard.templating.list.find((entry) => entry.name === 'instance');
    const variableMetric = /label_values\((\w+), instance\)/.exec(JSON.stringify(variable?.query))?.[1] ?? '';
    expect(exported.has(variableMetric), variableMetric).to.equal(true);
    console.log(`      ${queried.size} metric names in ${targets.length} queries, all among the ${exported.size} exported series`);
  });

  it('covers every area of the exposition: each switchboard_* metric the server declares is on the dashboard', () => {
    const queried = new Set(targets.flatMap((target) => selectorNames(target.expr)));
    // Process and Node.js runtime metrics (prom-client's defaults) are covered by a few panels, not all.
    const own = [...exported].filter((name) => name.startsWith('switchboard_') && !/^switchboard_(process|nodejs)_/.test(name));
    const families = new Set(own.map((name) => name.replace(/_(bucket|sum|count)$/, '')));
    const shown = new Set([...queried].map((name) => name.replace(/_(bucket|sum|count)$/, '')));
    expect([...families].filter((family) => !shown.has(family))).to.deep.equal([]);
  });
});
