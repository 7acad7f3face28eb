/**
 * deploy/helm/switchboard without Helm (none runs here): Chart.yaml and values.yaml parse; the
 * templates' actions are balanced and every .Values path they read is in values.yaml; every
 * environment variable the chart sets (ConfigMap, Secret, per-pod env) is a setting of the
 * config schema; one pod's environment is a configuration the server accepts; ports, probes and
 * the termination grace period agree with the settings and their defaults; TURN over TLS comes
 * from a mounted kubernetes.io/tls Secret, only when values name one.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../config/index.js';
import { createSelfSignedCert, opensslUnavailableReason } from '../helpers/tlsCert.js';
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
  turnTls: { secretName: string };
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
 * Every template block opened by the action `{{- <opening> }}`, in order: where the action is,
 * and the text after it up to its matching `{{- end }}` (undefined when it has none).
 */
function blocks(text: string, opening: string): { at: number; body: string | undefined }[] {
  const open = `{{- ${opening} }}`;
  const found: { at: number; body: string | undefined }[] = [];
  for (let at = text.indexOf(open); at !== -1; at = text.indexOf(open, at + open.length)) {
    const start = at + open.length;
    let depth = 1;
    let body: string | undefined;
    for (const action of text.slice(start).matchAll(/\{\{-?\s*(\w+)?[^}]*\}\}/g)) {
      const word = action[1] ?? '';
      if (['if', 'range', 'with', 'define', 'block'].includes(word)) depth++;
      else if (word === 'end' && --depth === 0) {
        body = text.slice(start, start + action.index);
        break;
      }
    }
    found.push({ at, body });
  }
  return found;
}

/** The text of the first block opened by `{{- <opening> }}` (blocks); undefined when there is none. */
function blockBody(text: string, opening: string): string | undefined {
  return blocks(text, opening)[0]?.body;
}

/**
 * A block's YAML with its actions resolved: lines holding only an action (`{{- if ... }}`,
 * `{{- end }}`) dropped, every `{{ expression }}` replaced from `expressions` (an expression it
 * does not name throws), then parsed.
 */
function blockYaml(body: string, expressions: Record<string, string>): unknown {
  const lines = body.split('\n').filter((line) => !/^\s*\{\{-[^}]*\}\}\s*$/.test(line));
  const text = lines.join('\n').replace(/\{\{ ([^}]+) \}\}/g, (_, expression: string) => {
    const value = expressions[expression];
    if (value === undefined) throw new Error(`unexpected {{ ${expression} }}`);
    return value;
  });
  const indent = Math.min(...lines.filter((line) => line.trim() !== '').map((line) => /^ */.exec(line)?.[0].length ?? 0));
  return parseYaml(text.replace(new RegExp(`^ {${indent}}`, 'gm'), ''));
}

/** One pod's environment: config, the Secret's settings (filled in), the per-pod env (node address 198.51.100.7). */
function podEnv(nodeId: string): Record<string, string> {
  const nodeIp = '198.51.100.7';
  return {
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
}

/** The name a test gives turnTls.secretName. */
const TLS_SECRET = 'turn-example-com-tls';

/**
 * The statefulset's blocks under `{{- if .Values.turnTls.secretName }}`, as YAML with that
 * name, the TURN_TLS_PORT default, and the mount directory `dir` (the template's own when
 * undefined); `at` is the number of the pod sections (env, ports, volumeMounts, volumes) opened
 * before the block, so 1 is inside env.
 */
function turnTlsBlocks(dir?: string): { at: number; yaml: unknown; body: string }[] {
  const statefulset = template('statefulset.yaml');
  const templateDir = /^\{\{- \$turnTlsDir := "([^"]+)" \}\}$/m.exec(statefulset)?.[1] ?? '';
  const expressions = {
    $turnTlsDir: dir ?? templateDir,
    '.Values.turnTls.secretName | quote': JSON.stringify(TLS_SECRET),
    $turnTlsPort: String(settingDefault('TURN_TLS_PORT')),
  };
  const sections = ['          env:\n', '          ports:\n', '          volumeMounts:\n', '      volumes:\n'].map((heading) =>
    statefulset.indexOf(heading),
  );
  return blocks(statefulset, 'if .Values.turnTls.secretName').map(({ at, body }) => ({
    at: sections.filter((start) => start !== -1 && start < at).length,
    yaml: blockYaml(body ?? '', expressions),
    body: body ?? '',
  }));
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
    expect(perPod).to.deep.equal([
      'NODE_ID',
      'PUBLIC_URL',
      'SFU_ANNOUNCED_IP',
      'TURN_EXTERNAL_IP',
      'TURN_RELAY_IP',
      'TURN_TLS_CERT',
      'TURN_TLS_KEY',
    ]);
    expect(unknownSettings(perPod)).to.deep.equal([]);
    // NODE_ID is the pod's name, and PUBLIC_URL is per pod through it.
    expect(template('statefulset.yaml')).to.match(/- name: NODE_ID\n\s+valueFrom:\n\s+fieldRef:\n\s+fieldPath: metadata\.name\n/);
    expect(values.publicUrl).to.include('$(NODE_ID)');
  });

  it("one pod's environment is a configuration the server accepts: production, MongoDB store, cluster on Redis", () => {
    const nodeId = 'switchboard-1';
    const config = loadConfig(podEnv(nodeId));
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
    for (const name of ['SFU_PORT', 'TURN_PORT', 'TURN_MIN_PORT', 'TURN_MAX_PORT', 'TURN_ENABLED', 'TURN_TCP', 'TURN_TLS_PORT'])
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

  it('TURN over TLS (turnTls.secretName): the Secret mounted as a directory, TURN_TLS_CERT and TURN_TLS_KEY its files, the port declared, only with the Secret', () => {
    expect(values.turnTls, 'off by default').to.deep.equal({ secretName: '' });
    const statefulset = template('statefulset.yaml');
    const dir = /^\{\{- \$turnTlsDir := "([^"]+)" \}\}$/m.exec(statefulset)?.[1];
    expect(dir, 'the mount directory').to.match(/^\/[\w/-]+$/);
    expect(statefulset).to.include('{{- $turnTlsPort := include "switchboard.setting" (list . "TURN_TLS_PORT") | int }}');
    const found = turnTlsBlocks();
    // One block in each section of the container and pod: env, ports, volumeMounts, volumes.
    expect(found.map(({ at }) => at)).to.deep.equal([1, 2, 3, 4]);
    const [env, port, mount, volume] = found;
    // The Secret named by values, the whole of it (no items), in a directory mount without
    // subPath: the kubelet updates such a mount when the Secret changes (a renewal).
    expect(volume?.yaml).to.deep.equal([{ name: 'turn-tls', secret: { secretName: TLS_SECRET } }]);
    expect(mount?.yaml).to.deep.equal([{ name: 'turn-tls', mountPath: dir, readOnly: true }]);
    expect(statefulset).to.not.match(/subPath(Expr)?:/);
    // The keys of a kubernetes.io/tls Secret, under the mount, as settings of the schema.
    expect(env?.yaml).to.deep.equal([
      { name: 'TURN_TLS_CERT', value: `${dir}/tls.crt` },
      { name: 'TURN_TLS_KEY', value: `${dir}/tls.key` },
    ]);
    expect(unknownSettings(['TURN_TLS_CERT', 'TURN_TLS_KEY', 'TURN_TLS_PORT', 'TURN_TLS_HOST'])).to.deep.equal([]);
    // TCP on TURN_TLS_PORT, a hostPort without hostNetwork as for the TURN ports, among them (TURN on).
    expect(port?.yaml).to.deep.equal([{ name: 'turn-tls', containerPort: 5349, hostPort: 5349, protocol: 'TCP' }]);
    expect(settingDefault('TURN_TLS_PORT')).to.equal(5349);
    expect(port?.body).to.match(
      /\{\{- if not \.Values\.media\.hostNetwork \}\}\n\s+hostPort: \{\{ \$turnTlsPort \}\}\n\s+\{\{- end \}\}\n/,
    );
    expect(blockBody(statefulset, 'if $turnOn'), 'declared under TURN_ENABLED').to.include(port?.body);
    expect(isPortName('turn-tls')).to.equal(true);
    const portNames = [...(blockBody(statefulset, 'if $turnOn') ?? '').matchAll(/- name: ([a-z][a-z0-9-]*)\n/g)].map((match) => match[1]);
    expect(portNames).to.deep.equal(['turn-tls']);
    // Nothing of it outside those blocks.
    let outside = statefulset;
    for (const { body } of found) outside = outside.replace(body, '');
    expect(outside).to.not.match(/name: turn-tls|secretName: \{\{|\$turnTlsDir \}\}|\$turnTlsPort \}\}|name: TURN_TLS_/);
  });

  it('a pod with the Secret mounted loads TURN over TLS from its files', function () {
    const reason = opensslUnavailableReason();
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    const cert = createSelfSignedCert();
    // The mounted Secret: its keys as file names.
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-turn-tls-'));
    try {
      copyFileSync(cert.certPath, join(dir, 'tls.crt'));
      copyFileSync(cert.keyPath, join(dir, 'tls.key'));
      const env = turnTlsBlocks(dir).find(({ at }) => at === 1)?.yaml as { name: string; value: string }[];
      const config = loadConfig({ ...podEnv('switchboard-0'), ...Object.fromEntries(env.map(({ name, value }) => [name, value])) });
      expect(config.turn.tlsEnabled).to.equal(true);
      expect([config.turn.tlsCert, config.turn.tlsKey, config.turn.tlsPort]).to.deep.equal([
        join(dir, 'tls.crt'),
        join(dir, 'tls.key'),
        settingDefault('TURN_TLS_PORT'),
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      cert.remove();
    }
  });

  it('refuses to render turnTls.secretName with TURN off, or with TURN_TLS_CERT / TURN_TLS_KEY also in config or secrets.values', () => {
    const statefulset = template('statefulset.yaml');
    const object = statefulset.indexOf('\nkind: StatefulSet\n');
    expect(statefulset).to.include(
      '{{- $turnOn := include "switchboard.setting" (list . "TURN_ENABLED") | regexMatch "^(true|1|yes|on)$" }}',
    );
    const turnOff = statefulset.search(
      /\{\{- if and \.Values\.turnTls\.secretName \(not \$turnOn\) \}\}\n\{\{- fail "turnTls\.secretName [^"]+" \}\}\n\{\{- end \}\}\n/,
    );
    expect(turnOff, 'fails with TURN off').to.be.greaterThan(-1).and.lessThan(object);
    const overridden = statefulset.search(
      /\{\{- range \$name := list "TURN_TLS_CERT" "TURN_TLS_KEY" \}\}\n\{\{- if and \$\.Values\.turnTls\.secretName \(or \(hasKey \$\.Values\.config \$name\) \(hasKey \$\.Values\.secrets\.values \$name\)\) \}\}\n\{\{- fail \(printf "%s [^"]+" \$name\) \}\}\n\{\{- end \}\}\n\{\{- end \}\}\n/,
    );
    expect(overridden, 'fails when config or secrets.values sets the files too').to.be.greaterThan(-1).and.lessThan(object);
    for (const name of ['TURN_TLS_CERT', 'TURN_TLS_KEY']) expect(Object.keys(values.config), name).to.not.include(name);
  });

  it('lists in NOTES the TLS port (with TURN) and TURN_TLS_HOST, only with turnTls.secretName', () => {
    const notes = template('NOTES.txt');
    const port = notes.search(
      /\{\{ if \.Values\.turnTls\.secretName \}\}\n\s+TURN_TLS_PORT \(\{\{ include "switchboard\.setting" \(list \. "TURN_TLS_PORT"\) \}\}\) TCP[^\n]*\{\{ end \}\}\n/,
    );
    expect(port, 'the port line').to.be.greaterThan(-1);
    // Inside the TURN list: after the relay workers' ports, before the relay range closes it.
    expect(port)
      .to.be.greaterThan(notes.indexOf('TURN_PORT..TURN_PORT+TURN_WORKERS-1'))
      .and.lessThan(notes.indexOf('TURN_MIN_PORT..TURN_MAX_PORT'));
    const paragraph = blockBody(notes, 'if .Values.turnTls.secretName') ?? '';
    expect(paragraph).to.include('{{ .Values.turnTls.secretName }}').and.include('{{- if .Values.config.TURN_TLS_HOST }}');
    expect(paragraph).to.include('set config.TURN_TLS_HOST');
  });
});
