/**
 * deploy/helm/switchboard without Helm (none runs here): Chart.yaml and values.yaml parse; the
 * templates' actions are balanced and every .Values path they read is in values.yaml; every
 * environment variable the chart sets (ConfigMap, Secret, per-pod env) is a setting of the
 * config schema; one pod's environment is a configuration the server accepts; ports, probes and
 * the termination grace period agree with the settings and their defaults.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { loadConfig } from '../../config/index.js';
import { readRepoFile, readYaml, repoPath, settingAccepts, settingDefault, settingNames, unknownSettings } from './deployFiles.js';

const CHART = 'deploy/helm/switchboard';

interface Values {
  replicaCount: number;
  publicUrl: string;
  config: Record<string, string>;
  secrets: { existingSecret: string; values: Record<string, string> };
  media: { hostNetwork: boolean };
  terminationGracePeriodSeconds: number;
  podDisruptionBudget: { enabled: boolean; maxUnavailable: number };
  [key: string]: unknown;
}

const values = readYaml(`${CHART}/values.yaml`) as Values;
const templateFiles = readdirSync(repoPath(`${CHART}/templates`));
const templates = new Map(templateFiles.map((file) => [file, readRepoFile(`${CHART}/templates/${file}`)]));
const template = (file: string): string => templates.get(file) ?? '';
/** Settings that hold secrets: they belong in the Secret, never in the ConfigMap. */
const SECRET_SETTINGS = ['SIGNING_KEYS', 'ADMIN_API_KEY', 'TURN_SECRET', 'MONGODB_URI', 'REDIS_URL'];

/** A setting as one pod gets it: config, else the server's default. */
const setting = (name: string): number => Number(values.config[name] ?? settingDefault(name));

/** The media ports declared per worker: the worker count's setting, the first port's template variable, the condition they are declared under. */
const WORKER_PORTS = [
  { workers: 'SFU_WORKERS', base: 'sfuPort', when: 'and $sfuOn (gt $sfuPort 0)' },
  { workers: 'TURN_WORKERS', base: 'turnPort', when: '$turnOn' },
] as const;

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The text of the template block opened by the action `{{- <opening> }}` (its first
 * occurrence), up to its matching `{{- end }}`; undefined when there is no such action.
 */
function blockBody(text: string, opening: string): string | undefined {
  const open = `{{- ${opening} }}`;
  const at = text.indexOf(open);
  if (at === -1) return undefined;
  const start = at + open.length;
  let depth = 1;
  for (const action of text.slice(start).matchAll(/\{\{-?\s*(\w+)?[^}]*\}\}/g)) {
    const word = action[1] ?? '';
    if (['if', 'range', 'with', 'define', 'block'].includes(word)) depth++;
    else if (word === 'end' && --depth === 0) return text.slice(start, start + action.index);
  }
  return undefined;
}

/** Kubernetes' rule for a container port name (IANA_SVC_NAME). */
function isPortName(name: string): boolean {
  return name.length <= 15 && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name) && /[a-z]/.test(name) && !name.includes('--');
}

/** Whether `path` (a.b.c) names a value of values.yaml; the keys of config and secrets.values are settings. */
function valueExists(path: string[]): boolean {
  const parent = path.slice(0, -1).join('.');
  const key = path.at(-1) as string;
  if (parent === 'config' || parent === 'secrets.values') return settingNames.has(key);
  let node: unknown = values;
  for (const part of path) {
    if (node === null || typeof node !== 'object' || !(part in node)) return false;
    node = (node as Record<string, unknown>)[part];
  }
  return true;
}

describe('deploy: Helm chart', () => {
  it('Chart.yaml and values.yaml parse; the chart is versioned with the server', () => {
    const chart = readYaml(`${CHART}/Chart.yaml`) as { apiVersion: string; name: string; appVersion: string; type: string };
    const pkg = JSON.parse(readRepoFile('package.json')) as { version: string };
    expect(chart).to.include({ apiVersion: 'v2', name: 'switchboard', type: 'application', appVersion: pkg.version });
    expect(values.replicaCount).to.be.greaterThan(1);
    expect(values.media.hostNetwork).to.equal(true);
  });

  it('has the objects of a deployment: StatefulSet, Services, ConfigMap, Secret, PodDisruptionBudget, ServiceAccount, NOTES', () => {
    const kinds = [...templates.values()].flatMap((text) => [...text.matchAll(/^kind: (\w+)$/gm)].map((match) => match[1]));
    expect([...new Set(kinds)].sort()).to.deep.equal([
      'ConfigMap',
      'PodDisruptionBudget',
      'Secret',
      'Service',
      'ServiceAccount',
      'StatefulSet',
    ]);
    expect(templateFiles).to.include('NOTES.txt');
    expect(template('pdb.yaml')).to.include('apiVersion: policy/v1').and.include('.Values.podDisruptionBudget.maxUnavailable');
    expect(values.podDisruptionBudget).to.deep.equal({ enabled: true, maxUnavailable: 1 });
  });

  it('templates: every action is closed, every block ended, every .Values path is in values.yaml', () => {
    for (const [file, text] of templates) {
      const opened = (text.match(/\{\{/g) ?? []).length;
      expect((text.match(/\}\}/g) ?? []).length, `${file}: {{ and }}`).to.equal(opened);
      const actions = [...text.matchAll(/\{\{-?\s*(\w+)/g)].map((match) => match[1]);
      const blocks = actions.filter((word) => ['if', 'range', 'with', 'define', 'block'].includes(word as string)).length;
      expect(actions.filter((word) => word === 'end').length, `${file}: blocks and ends`).to.equal(blocks);
      for (const match of text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        const path = (match[1] as string).slice(1).split('.');
        expect(valueExists(path), `${file}: .Values.${path.join('.')}`).to.equal(true);
      }
    }
  });

  it('sets only settings of the config schema, secrets in the Secret only', () => {
    expect(unknownSettings(Object.keys(values.config)), 'config').to.deep.equal([]);
    expect(unknownSettings(Object.keys(values.secrets.values)), 'secrets.values').to.deep.equal([]);
    expect(Object.keys(values.secrets.values).sort()).to.deep.equal([...SECRET_SETTINGS].sort());
    expect(Object.keys(values.config).filter((name) => SECRET_SETTINGS.includes(name))).to.deep.equal([]);
    const perPod = [...template('statefulset.yaml').matchAll(/^\s+- name: ([A-Z][A-Z0-9_]*)$/gm)].map((match) => match[1] as string);
    expect(perPod).to.deep.equal(['NODE_ID', 'PUBLIC_URL', 'SFU_ANNOUNCED_IP', 'TURN_EXTERNAL_IP', 'TURN_RELAY_IP']);
    expect(unknownSettings(perPod)).to.deep.equal([]);
    // NODE_ID is the pod's name, and PUBLIC_URL is per pod through it.
    expect(template('statefulset.yaml')).to.match(/- name: NODE_ID\n\s+valueFrom:\n\s+fieldRef:\n\s+fieldPath: metadata\.name\n/);
    expect(values.publicUrl).to.include('$(NODE_ID)');
  });

  it("one pod's environment is a configuration the server accepts: production, MongoDB store, cluster on Redis", () => {
    const nodeId = 'switchboard-1';
    const nodeIp = '198.51.100.7';
    const env = {
      ...values.config,
      SIGNING_KEYS: `main:${randomBytes(32).toString('hex')}`,
      ADMIN_API_KEY: randomBytes(32).toString('hex'),
      TURN_SECRET: randomBytes(32).toString('hex'),
      MONGODB_URI: 'mongodb://mongo-0.mongo:27017/switchboard?replicaSet=rs0',
      REDIS_URL: 'redis://:password@redis-master:6379',
      NODE_ID: nodeId,
      PUBLIC_URL: values.publicUrl.replaceAll('$(NODE_ID)', nodeId),
      SFU_ANNOUNCED_IP: nodeIp,
      TURN_EXTERNAL_IP: nodeIp,
      TURN_RELAY_IP: nodeIp,
    };
    const config = loadConfig(env);
    expect(config.nodeEnv).to.equal('production');
    expect(config.nodeId).to.equal(nodeId);
    expect(config.http.publicUrl).to.equal('https://switchboard-1.rtc.example.com');
    expect(config.store.kind).to.equal('mongodb');
    expect(config.cluster.enabled).to.equal(true);
    expect(config.observability.metricsHost).to.equal('0.0.0.0');
    expect(config.sfu.workers).to.equal(Number(values.config.SFU_WORKERS));
    expect(config.turn.enabled).to.equal(true);
    expect(config.turn.workers).to.equal(Number(values.config.TURN_WORKERS));
  });

  it("keeps the default ports, and the chart's fallbacks are the schema's defaults", () => {
    for (const name of ['PORT', 'METRICS_PORT', 'TURN_PORT', 'TURN_MIN_PORT', 'TURN_MAX_PORT', 'SFU_PORT']) {
      expect(Number(values.config[name]), name).to.equal(settingDefault(name));
    }
    const fallbacks = /\$defaults := dict ((?:"[A-Z_]+" "[^"]*"\s*)+)\}\}/.exec(template('_helpers.tpl'))?.[1] ?? '';
    const pairs = [...fallbacks.matchAll(/"([A-Z_]+)" "([^"]*)"/g)];
    expect(pairs.length).to.be.greaterThan(5);
    for (const [, name, fallback] of pairs) expect(fallback, name).to.equal(String(settingDefault(name as string)));
  });

  it('declares one port per SFU worker and per TURN relay worker (UDP, and TCP), on the node (hostNetwork) or as hostPorts', () => {
    const statefulset = template('statefulset.yaml');
    expect(statefulset).to.include('hostNetwork: true').and.include('dnsPolicy: ClusterFirstWithHostNet');
    for (const [variable, name] of [
      ['port', 'PORT'],
      ['metricsPort', 'METRICS_PORT'],
      ['turnPort', 'TURN_PORT'],
      ['sfuPort', 'SFU_PORT'],
    ]) {
      expect(statefulset, name).to.include(`{{- $${variable} := include "switchboard.setting" (list . "${name}") | int }}`);
    }
    // The largest worker index a count the schema accepts gives (1..256 workers: index 255).
    const widest = ['256', '257'].map((count) => WORKER_PORTS.map(({ workers }) => settingAccepts(workers, count)));
    expect(widest).to.deep.equal([
      [true, true],
      [false, false],
    ]);
    const names = ['http', 'metrics'];
    for (const { workers, base, when } of WORKER_PORTS) {
      const declared = blockBody(statefulset, `if ${when}`);
      const perWorker = blockBody(declared ?? '', `range $worker := until (int $.Values.config.${workers})`);
      expect(perWorker, `${workers}: a port per worker, under "if ${when}"`).to.be.a('string');
      const body = perWorker as string;
      expect(body, workers).to.match(/^\s*\{\{- range \$protocol := list "UDP" "TCP" \}\}/);
      expect(body, workers).to.include(`containerPort: {{ add $${base} $worker }}`);
      expect(body, workers).to.match(
        new RegExp(`\\{\\{- if not \\$\\.Values\\.media\\.hostNetwork \\}\\}\\n\\s+hostPort: \\{\\{ add \\$${base} \\$worker \\}\\}\\n`),
      );
      expect(body, workers).to.include('protocol: {{ $protocol }}');
      expect(declared, `${workers}: no port outside the per-worker ones`).to.not.include(`containerPort: {{ $${base} }}`);
      const name = /- name: (.+)\n/.exec(body)?.[1] ?? '';
      expect(name, workers).to.include('{{ $worker }}').and.include('{{ lower $protocol }}');
      const expand = (worker: number, protocol: string): string =>
        name.replace('{{ $worker }}', String(worker)).replace('{{ lower $protocol }}', protocol);
      for (const protocol of ['udp', 'tcp']) expect(isPortName(expand(255, protocol)), expand(255, protocol)).to.equal(true);
      names.push(expand(0, 'udp'), expand(0, 'tcp'), expand(255, 'udp'), expand(255, 'tcp'));
    }
    expect(new Set(names).size, names.join(' ')).to.equal(names.length);
    // TURN over TCP only with TURN_TCP; the SFU always has both.
    const turnPorts = blockBody(statefulset, 'range $worker := until (int $.Values.config.TURN_WORKERS)') ?? '';
    expect(turnPorts).to.match(/\{\{- range \$protocol := list "UDP" "TCP" \}\}\n\s+\{\{- if or \(eq \$protocol "UDP"\) \$turnTcp \}\}\n/);
    expect(statefulset).to.include('{{- $turnTcp := include "switchboard.setting" (list . "TURN_TCP") | regexMatch "^(true|1|yes|on)$" }}');
  });

  it('refuses to render without a worker count it declares ports for; values.yaml sets each', () => {
    const statefulset = template('statefulset.yaml');
    for (const { workers, when } of WORKER_PORTS) {
      const guard = new RegExp(
        `\\{\\{- if and ${escapeRegExp(when.replace(/^and /, ''))} \\(not \\.Values\\.config\\.${workers}\\) \\}\\}\\n\\{\\{- fail "config\\.${workers} must be set: [^"]+" \\}\\}\\n\\{\\{- end \\}\\}`,
      );
      const at = statefulset.search(guard);
      expect(at, `${workers}: fails without it, under ${when}`).to.be.greaterThan(-1);
      expect(at, `${workers}: checked before the ports are declared`).to.be.lessThan(
        statefulset.indexOf(`range $worker := until (int $.Values.config.${workers})`),
      );
      const count = values.config[workers] ?? '';
      expect(settingAccepts(workers, count), `values.yaml config.${workers}: ${count}`).to.equal(true);
      expect(count, `config.${workers}: a fixed count, not the schema's one per core`).to.match(/^[1-9]\d*$/);
    }
    expect(values.config.TURN_WORKERS).to.equal(values.config.SFU_WORKERS);
  });

  it('lists in NOTES the ports to open: each per-worker range with its count, and the relay range', () => {
    const notes = template('NOTES.txt');
    expect(notes).to.include('SFU_PORT..SFU_PORT+SFU_WORKERS-1').and.include('{{ .Values.config.SFU_WORKERS }} worker(s)');
    expect(notes).to.include('TURN_PORT..TURN_PORT+TURN_WORKERS-1').and.include('{{ .Values.config.TURN_WORKERS }} relay worker(s)');
    expect(notes).to.include('UDP{{ if $turnTcp }} and TCP{{ end }}');
    expect(notes).to.include('TURN_MIN_PORT..TURN_MAX_PORT');
    for (const name of ['SFU_PORT', 'TURN_PORT', 'TURN_MIN_PORT', 'TURN_MAX_PORT', 'TURN_ENABLED', 'TURN_TCP'])
      expect(notes, name).to.include(`include "switchboard.setting" (list . "${name}")`);
  });

  it('probes /health (startup, liveness) and /ready (readiness) on the HTTP port, PORT', () => {
    const statefulset = template('statefulset.yaml');
    const probes = [...statefulset.matchAll(/(\w+Probe):\n\s+httpGet:\n\s+path: (\S+)\n\s+port: (\S+)/g)].map((match) => match.slice(1));
    expect(probes).to.deep.equal([
      ['startupProbe', '/health', 'http'],
      ['livenessProbe', '/health', 'http'],
      ['readinessProbe', '/ready', 'http'],
    ]);
    expect(statefulset).to.match(/- name: http\n\s+containerPort: \{\{ \$port \}\}\n\s+protocol: TCP/);
  });

  it('gives a stopping pod more time than SHUTDOWN_DRAIN_MS + SHUTDOWN_TIMEOUT_MS, and refuses to render otherwise', () => {
    const shutdownS = (setting('SHUTDOWN_DRAIN_MS') + setting('SHUTDOWN_TIMEOUT_MS')) / 1000;
    expect(values.terminationGracePeriodSeconds).to.be.greaterThan(shutdownS);
    const statefulset = template('statefulset.yaml');
    expect(statefulset).to.include('terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}');
    expect(statefulset).to.include('{{- if le (int .Values.terminationGracePeriodSeconds) (int $shutdownS) }}');
  });
});
