import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io as ioClient } from 'socket.io-client';
import { loadConfig, reachableAddresses, SETTING_NAMES, testConfig } from '../../config/index.js';
import { problemsOf } from '../helpers/configProblems.js';
import { createServer } from '../../server/index.js';
import { waitFor } from '../helpers/server.js';

const KEY = 'k1:0123456789abcdef0123456789abcdef';

/** Runs the real entry point (server/main.ts) with an environment; resolves with its exit code and output. */
function runMain(env: Record<string, string>, timeoutMs = 15000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`main did not exit in time:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('config', () => {
  it('has working defaults for a dev run (ephemeral keys, dev tenant, printed)', () => {
    const config = loadConfig({});
    expect(config.http.port).to.equal(8080);
    expect(config.rooms.meshThreshold).to.equal(4);
    expect(config.turn.port).to.equal(3478);
    expect(config.sfu.enabled).to.equal(true);
    expect(config.store.mongodbUri).to.equal(undefined);
    expect(config.auth.signingKeys).to.have.length(1);
    expect(config.auth.signingKeys[0]?.secret.length).to.be.at.least(32);
    expect(config.tenants.map((t) => t.tenant_id)).to.deep.equal(['dev']);
    expect(config.bootNotices.join('\n'))
      .to.match(/SIGNING_KEYS=dev:/)
      .and.match(/api_secret=/);
    expect(Object.isFrozen(config.http)).to.equal(true);
  });

  it('parses the contract names', () => {
    const config = loadConfig({
      NODE_ENV: 'production',
      PORT: '9000',
      SIGNING_KEYS: `${KEY},k0:abcdefabcdefabcdefabcdefabcdefabcdef`,
      TURN_SECRET: 'x'.repeat(32),
      CORS_ORIGINS: 'https://a.example.com, https://b.example.com',
      MESH_THRESHOLD: '6',
      TURN_ALLOWED_PEER_CIDRS: '127.0.0.0/8,::1/128',
      SFU_WORKERS: '3',
      TURN_ENABLED: 'false',
    });
    expect(config.http.port).to.equal(9000);
    expect(config.auth.signingKeys.map((k) => k.kid)).to.deep.equal(['k1', 'k0']);
    expect(config.http.corsOrigins).to.deep.equal(['https://a.example.com', 'https://b.example.com']);
    expect(config.rooms.meshThreshold).to.equal(6);
    expect(config.turn.allowedPeerCidrs).to.deep.equal(['127.0.0.0/8', '::1/128']);
    expect(config.turn.enabled).to.equal(false);
    expect(config.sfu.workers).to.equal(3);
    expect(config.bootNotices).to.deep.equal([]);
    expect(config.auth.devTokenRoute).to.equal(false);
  });

  it('announces media where browsers reach it when SFU_ANNOUNCED_IP and TURN_RELAY_IP are not set', () => {
    const lan = {
      lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }],
      eth0: [
        { address: 'fe80::1', family: 'IPv6', internal: false },
        { address: '10.1.2.3', family: 'IPv4', internal: false },
      ],
    } as never;
    const loopbackOnly = { lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }] } as never;
    // A dev run (PUBLIC_URL on this machine): loopback, nothing to warn about.
    expect(reachableAddresses('http://localhost:8080', lan)).to.deep.equal({ announced: '127.0.0.1', local: '127.0.0.1', warning: null });
    expect(reachableAddresses('http://127.0.0.1:8080', lan).announced).to.equal('127.0.0.1');
    // A named host: the host's first non-internal IPv4, with a warning to confirm it.
    const named = reachableAddresses('https://rtc.example.com', lan);
    expect([named.announced, named.local]).to.deep.equal(['10.1.2.3', '10.1.2.3']);
    expect(named.warning).to.match(/10\.1\.2\.3/);
    // PUBLIC_URL's own IP is what browsers reach (a NATed host); relays still bind a local address.
    expect(reachableAddresses('http://203.0.113.7:8080', lan)).to.include({ announced: '203.0.113.7', local: '10.1.2.3' });
    // Nothing but loopback: say that media reaches no other machine.
    expect(reachableAddresses('https://rtc.example.com', loopbackOnly).warning).to.match(/no non-internal IPv4/);

    const defaults = loadConfig({});
    expect(defaults.sfu.announcedIp).to.equal('127.0.0.1');
    expect(defaults.turn.relayIp).to.equal('127.0.0.1');
    expect(defaults.bootWarnings).to.deep.equal([]);
    const named2 = loadConfig({ PUBLIC_URL: 'https://rtc.example.com' });
    expect(named2.sfu.announcedIp).to.be.a('string').and.not.equal('0.0.0.0');
    expect(named2.bootWarnings).to.have.length(1);
    const explicit = loadConfig({ PUBLIC_URL: 'https://rtc.example.com', SFU_ANNOUNCED_IP: '198.51.100.5', TURN_RELAY_IP: '127.0.0.1' });
    expect([explicit.sfu.announcedIp, explicit.bootWarnings.length]).to.deep.equal(['198.51.100.5', 0]);
    expect(loadConfig({ SFU_LISTEN_IP: '127.0.0.1' }).sfu.announcedIp).to.equal(undefined);
  });

  it('.env.example names only real settings', () => {
    const names = [...readFileSync('.env.example', 'utf8').matchAll(/^#? ?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]);
    expect(names.length).to.be.greaterThan(20);
    expect(names.filter((name) => !SETTING_NAMES.includes(name as string))).to.deep.equal([]);
  });

  it('parses webhook and API limit settings, and reports bad CIDRs', () => {
    const config = loadConfig({
      WEBHOOK_ALLOWED_CIDRS: '10.1.2.0/24, 192.168.0.0/16',
      RATE_LIMIT_TOKENS_PER_MIN: '50',
      RATE_LIMIT_ADMIN_PER_MIN: '5',
    });
    expect(config.webhooks).to.deep.equal({ allowedCidrs: ['10.1.2.0/24', '192.168.0.0/16'], allowPrivateNetworks: false });
    expect(config.rateLimits).to.include({ tokensPerTenantPerMinute: 50, adminPerIpPerMinute: 5 });
    expect(problemsOf({ WEBHOOK_ALLOWED_CIDRS: '10.0.0.0/99' }).join('\n')).to.include('WEBHOOK_ALLOWED_CIDRS');
  });

  it('serves /metrics on 127.0.0.1:9464 with access logs by default; METRICS_PORT must differ from PORT unless 0', () => {
    expect(loadConfig({}).observability).to.deep.equal({ metricsPort: 9464, metricsHost: '127.0.0.1', accessLog: true });
    expect(loadConfig({ METRICS_PORT: '0', METRICS_HOST: '0.0.0.0', ACCESS_LOG: 'false' }).observability).to.deep.equal({
      metricsPort: 0,
      metricsHost: '0.0.0.0',
      accessLog: false,
    });
    expect(problemsOf({ PORT: '9000', METRICS_PORT: '9000' })).to.deep.equal([
      'METRICS_PORT: must differ from PORT (0 serves /metrics on PORT)',
    ]);
    expect(problemsOf({ PORT: '0', METRICS_PORT: '0' })).to.deep.equal([]);
    expect(problemsOf({ METRICS_PORT: '70000', ACCESS_LOG: 'maybe' }).join('\n'))
      .to.include('METRICS_PORT')
      .and.include('ACCESS_LOG');
  });

  it('reports every problem at once, naming each setting', () => {
    const problems = problemsOf({
      PORT: 'eighty',
      MESH_THRESHOLD: '0',
      TURN_ENABLED: 'maybe',
      SIGNING_KEYS: 'k1:short',
      TURN_ALLOWED_PEER_CIDRS: 'not-a-cidr',
      LOG_LEVEL: 'loud',
    });
    const text = problems.join('\n');
    for (const name of ['PORT', 'MESH_THRESHOLD', 'TURN_ENABLED', 'LOG_LEVEL']) expect(text).to.include(name);
    expect(problems.length).to.be.at.least(4);
  });

  it('refuses production without signing keys, TURN secret or explicit origins', () => {
    const text = problemsOf({ NODE_ENV: 'production', CORS_ORIGINS: '*' }).join('\n');
    expect(text).to.include('SIGNING_KEYS').and.include('TURN_SECRET').and.include('CORS_ORIGINS');
  });

  it('reads CSP_CONNECT_SRC as scheme-and-host sources, and refuses anything else', () => {
    expect(
      loadConfig({ CSP_CONNECT_SRC: 'wss://*.rtc.example.com, https://*.rtc.example.com, ws://127.0.0.1:*' }).http.cspConnectSrc,
    ).to.deep.equal(['wss://*.rtc.example.com', 'https://*.rtc.example.com', 'ws://127.0.0.1:*']);
    expect(loadConfig({}).http.cspConnectSrc).to.deep.equal([]);
    for (const bad of ['*', 'ws:', "'unsafe-inline'", 'wss://example.com/path', 'javascript://x', 'wss://a.example.com;script-src *']) {
      expect(problemsOf({ CSP_CONNECT_SRC: bad }).join('\n'), `CSP_CONNECT_SRC=${bad}`).to.include('CSP_CONNECT_SRC');
    }
  });

  it('selects the store: STORE, else MongoDB with MONGODB_URI, else Redis with REDIS_URL, else memory', () => {
    const mongo = 'mongodb://127.0.0.1:27017/sb';
    const redis = 'redis://127.0.0.1:6379/0';
    expect(loadConfig({}).store.kind).to.equal('memory');
    expect(loadConfig({ MONGODB_URI: mongo }).store.kind).to.equal('mongodb');
    expect(loadConfig({ REDIS_URL: redis }).store).to.deep.include({ kind: 'redis', redisUrl: redis });
    expect(loadConfig({ REDIS_URL: 'rediss://user:pw@cache.example.com:6380' }).store.kind).to.equal('redis');
    expect(loadConfig({ MONGODB_URI: mongo, REDIS_URL: redis }).store.kind).to.equal('mongodb');
    expect(loadConfig({ STORE: 'redis', MONGODB_URI: mongo, REDIS_URL: redis }).store.kind).to.equal('redis');
    expect(loadConfig({ STORE: 'memory', REDIS_URL: redis }).store.kind).to.equal('memory');
    // Development's generated "dev" tenant only on the in-memory store: a persistent one keeps the first run's.
    expect(loadConfig({ REDIS_URL: redis }).tenants).to.deep.equal([]);
    expect(loadConfig({ STORE: 'memory', REDIS_URL: redis }).tenants.map((t) => t.tenant_id)).to.deep.equal(['dev']);
  });

  it('warns at boot when production runs on the in-memory store, and only then', () => {
    const production = { NODE_ENV: 'production', SIGNING_KEYS: KEY, TURN_ENABLED: 'false', CORS_ORIGINS: 'https://a.example.com' };
    const warning = /^NODE_ENV=production on the in-memory store: .* lost at restart; set MONGODB_URI \(or REDIS_URL\)/;
    const onMemory = loadConfig(production).bootWarnings;
    expect(onMemory.filter((w) => warning.test(w))).to.have.length(1);
    expect(loadConfig({ ...production, MONGODB_URI: 'mongodb://db.example.com/sb' }).bootWarnings.some((w) => warning.test(w))).to.equal(
      false,
    );
    expect(loadConfig({ ...production, REDIS_URL: 'redis://127.0.0.1:6379' }).bootWarnings.some((w) => warning.test(w))).to.equal(false);
    expect(loadConfig({ SIGNING_KEYS: KEY }).bootWarnings.some((w) => warning.test(w))).to.equal(false);
  });

  it('reads MONGODB_MIGRATE (off by default)', () => {
    expect(loadConfig({}).store.mongodbMigrate).to.equal(false);
    expect(loadConfig({ MONGODB_MIGRATE: 'true', MONGODB_URI: 'mongodb://db.example.com/sb' }).store.mongodbMigrate).to.equal(true);
    expect(problemsOf({ MONGODB_MIGRATE: 'sometimes' })[0]).to.match(/^MONGODB_MIGRATE: /);
  });

  it('reports a STORE without its URL, an unknown STORE and a REDIS_URL that is not redis:// or rediss://', () => {
    expect(problemsOf({ STORE: 'redis' })).to.deep.equal(['STORE: redis needs REDIS_URL (redis:// or rediss://)']);
    expect(problemsOf({ STORE: 'mongodb', REDIS_URL: 'redis://127.0.0.1:6379' })).to.deep.equal([
      'STORE: mongodb needs MONGODB_URI (mongodb:// or mongodb+srv://)',
    ]);
    expect(problemsOf({ STORE: 'postgres' }).join('\n')).to.match(/^STORE: must be one of memory, mongodb, redis$/);
    expect(problemsOf({ REDIS_URL: 'http://127.0.0.1:6379' }).join('\n')).to.include('REDIS_URL: must start with redis:// or rediss://');
  });

  it('refuses production on the in-memory store when REDIS_URL is set', () => {
    const production = { NODE_ENV: 'production', SIGNING_KEYS: KEY, TURN_ENABLED: 'false', CORS_ORIGINS: 'https://a.example.com' };
    const refused = problemsOf({ ...production, REDIS_URL: 'redis://127.0.0.1:6379', STORE: 'memory' });
    expect(refused).to.have.length(1);
    expect(refused[0]).to.match(/^STORE: memory is not allowed when NODE_ENV=production and REDIS_URL is set/);
    expect(loadConfig({ ...production, REDIS_URL: 'redis://127.0.0.1:6379' }).store.kind).to.equal('redis');
    // Without REDIS_URL production may still run on memory, as before, with a warning.
    expect(loadConfig({ ...production, STORE: 'memory' }).store.kind).to.equal('memory');
  });

  it('refuses short or duplicate signing keys without echoing the secret', () => {
    const text = problemsOf({ SIGNING_KEYS: 'a:tooshortsecret,a:0123456789abcdef0123456789abcdef' }).join('\n');
    expect(text).to.include('at least 32 bytes').and.include('appears twice');
    expect(text).to.not.include('tooshortsecret');
  });

  it('reads a YAML config file with roles and tenants; the environment wins', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-config-'));
    const file = join(dir, 'switchboard.yaml');
    writeFileSync(
      file,
      [
        'PORT: 7000',
        'MESH_THRESHOLD: 5',
        'roles:',
        '  moderator: { roomJoin: true, roomAdmin: true }',
        'tenants:',
        '  - tenant_id: acme',
        '    api_key: acme-key-1',
        `    api_secret: ${'s'.repeat(40)}`,
        '    limits: { mesh_threshold: 3 }',
      ].join('\n'),
    );
    const config = loadConfig({ CONFIG_FILE: file, PORT: '7100' });
    expect(config.http.port).to.equal(7100);
    expect(config.rooms.meshThreshold).to.equal(5);
    expect(config.roles.moderator).to.include({ roomJoin: true, roomAdmin: true, canPublish: false });
    expect(config.tenants[0]).to.include({ tenant_id: 'acme', api_key: 'acme-key-1' });
    expect(config.tenants[0]?.api_secret_sha256).to.match(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(config)).to.not.include('s'.repeat(40));
  });

  it('takes canPublishSources in a config file role, refuses a malformed one, and has the guide preset and MAX_SCREEN_SHARES', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-config-'));
    const good = join(dir, 'roles.yaml');
    writeFileSync(
      good,
      ['roles:', '  narrator: { roomJoin: true, canPublish: true, canPublishSources: [microphone, screen_audio] }'].join('\n'),
    );
    const config = loadConfig({ CONFIG_FILE: good, MAX_SCREEN_SHARES: '3' });
    expect(config.roles.narrator?.canPublishSources).to.deep.equal(['microphone', 'screen_audio']);
    expect(config.roles.guide).to.deep.include({ canPublish: true, canPublishData: true, canPublishSources: ['microphone'] });
    expect(config.roles.listener).to.not.have.property('canPublishSources');
    expect(config.rooms.maxScreenShares).to.equal(3);
    expect(loadConfig({}).rooms.maxScreenShares, 'default').to.equal(1);
    expect(problemsOf({ MAX_SCREEN_SHARES: '-1' }).join('\n')).to.include('MAX_SCREEN_SHARES');

    const bad = join(dir, 'bad-roles.yaml');
    writeFileSync(bad, ['roles:', '  narrator: { roomJoin: true, canPublishSources: [microphone, laser] }'].join('\n'));
    expect(problemsOf({ CONFIG_FILE: bad }).join('\n')).to.include('canPublishSources');
  });

  it('reports unknown and malformed config file content', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-config-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ PORTT: 1, tenants: [{ tenant_id: 'x' }] }));
    const text = problemsOf({ CONFIG_FILE: file }).join('\n');
    expect(text).to.include('unknown setting "PORTT"').and.include('tenants');
    expect(problemsOf({ CONFIG_FILE: join(dir, 'missing.yaml') }).join('\n')).to.include('cannot read');
  });

  it('npm run token (switchboard token create) mints a token from the configured key ring that joins', async function () {
    this.timeout(30000);
    const env = { SIGNING_KEYS: `k1:${'c'.repeat(40)}` };
    const minted = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'server/cli/cli.ts',
          'token',
          'create',
          '--room',
          'cli-room',
          '--user',
          'cli-user',
          '--role',
          'host',
          '--tenant',
          'dev',
        ],
        {
          env: { PATH: process.env.PATH ?? '', ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
    expect(minted.code, minted.stderr).to.equal(0);
    const token = minted.stdout.trim();
    expect(token.split('.')).to.have.length(3);
    const server = await createServer(testConfig(env));
    try {
      const client = ioClient(server.url, { auth: { token }, transports: ['websocket'], reconnection: false });
      const ack = await client.timeout(5000).emitWithAck('join', {});
      client.close();
      expect(ack.ok).to.equal(true);
      expect(ack.self).to.include({ user_id: 'cli-user' });
      expect(ack.self.grants.roomAdmin).to.equal(true);
    } finally {
      await server.close();
    }
  });

  it('npm run token (switchboard token create) refuses to sign with a throw-away key', async function () {
    this.timeout(30000);
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'server/cli/cli.ts', 'token', 'create', '--tenant', 'dev', '--room', 'r', '--user', 'u'],
        {
          env: { PATH: process.env.PATH ?? '' },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (c) => resolve({ code: c, stderr: err }));
    });
    expect(code).to.equal(2);
    expect(stderr).to.include('SIGNING_KEYS');
  });

  it('the server process exits non-zero naming each problem', async function () {
    this.timeout(30000);
    const { code, stderr } = await runMain({ PORT: '-1', MESH_THRESHOLD: 'many', SFU_ENABLED: 'perhaps' });
    expect(code).to.equal(1);
    expect(stderr).to.include('PORT').and.include('MESH_THRESHOLD').and.include('SFU_ENABLED');
  });

  it('the server process boots in production on the in-memory store with the warning in its log', async function () {
    this.timeout(60000);
    const env = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      SIGNING_KEYS: KEY,
      TURN_ENABLED: 'false',
      SFU_ENABLED: 'false',
      CORS_ORIGINS: 'https://a.example.com',
      PORT: '0',
      HOST: '127.0.0.1',
    };
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await waitFor(() => output.includes('switchboard listening on'), 45000, `boot:\n${output}`);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).to.equal(0);
    const line = output.split('\n').find((l) => l.includes('NODE_ENV=production on the in-memory store'));
    expect(line, output).to.be.a('string');
    expect(JSON.parse(line as string)).to.include({ level: 40 });
  });

  it('the server process refuses to boot in production on the in-memory store with REDIS_URL set', async function () {
    this.timeout(30000);
    const { code, stderr } = await runMain({
      NODE_ENV: 'production',
      SIGNING_KEYS: KEY,
      TURN_ENABLED: 'false',
      CORS_ORIGINS: 'https://a.example.com',
      REDIS_URL: 'redis://127.0.0.1:1',
      STORE: 'memory',
    });
    expect(code).to.equal(1);
    expect(stderr).to.include('STORE: memory is not allowed when NODE_ENV=production and REDIS_URL is set');
  });

  it('the server process refuses to boot in production without keys', async function () {
    this.timeout(30000);
    const { code, stderr } = await runMain({ NODE_ENV: 'production' });
    expect(code).to.equal(1);
    expect(stderr).to.include('SIGNING_KEYS');
  });
});
