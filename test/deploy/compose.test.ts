/**
 * deploy/docker-compose.yml and its env file, read as Docker Compose would (no Docker engine
 * runs here): the YAML parses, every variable set is a setting of the config schema, the
 * resulting environment is a configuration the server accepts once the secrets are filled in
 * (and refuses while they are not), and ports, healthchecks and the stop grace period agree
 * with the settings.
 */
import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../config/index.js';
import {
  commentedSettings,
  fillPlaceholders,
  parseEnvFile,
  PLACEHOLDER,
  readRepoFile,
  readYaml,
  settingAccepts,
  settingDefault,
  unknownSettings,
} from './deployFiles.js';

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  network_mode?: string;
  env_file?: string;
  environment?: Record<string, string>;
  ports?: string[];
  restart?: string;
  stop_grace_period?: string;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[]; interval: string; timeout: string; retries: number };
}

interface ComposeFile {
  services: Record<string, ComposeService>;
}

/** A compose duration ("30s", "1m30s") in seconds. */
function durationSeconds(value: string): number {
  const match = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(value);
  if (!match || value === '') throw new Error(`not a duration: ${value}`);
  return Number(match[1] ?? 0) * 60 + Number(match[2] ?? 0);
}

/** The loopback port a service publishes for `containerPort`. */
function publishedLoopbackPort(service: ComposeService, containerPort: number): number | undefined {
  for (const mapping of service.ports ?? []) {
    const match = /^127\.0\.0\.1:(\d+):(\d+)$/.exec(mapping);
    if (match && Number(match[2]) === containerPort) return Number(match[1]);
  }
  return undefined;
}

describe('deploy: docker-compose.yml', () => {
  const compose = readYaml('deploy/docker-compose.yml') as ComposeFile;
  const switchboard = compose.services.switchboard as ComposeService;
  const envFile = parseEnvFile(readRepoFile('deploy/switchboard.env.example'));
  /** What the container gets: the env file, then `environment`, which wins. */
  const effective: Record<string, string> = { ...Object.fromEntries(envFile), ...switchboard.environment };
  const setting = (name: string): number => Number(effective[name] ?? settingDefault(name));

  it('runs Switchboard on the host network next to MongoDB and Redis, from the repository Dockerfile', () => {
    expect(Object.keys(compose.services).sort()).to.deep.equal(['mongo', 'redis', 'switchboard']);
    expect(switchboard.network_mode).to.equal('host');
    expect(switchboard.build).to.deep.equal({ context: '..', dockerfile: 'Dockerfile' });
    expect(switchboard.env_file).to.equal('switchboard.env');
    expect(switchboard.depends_on).to.deep.equal({ mongo: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.restart, `${name} restart`).to.equal('unless-stopped');
      expect(service.healthcheck?.test[0], `${name} healthcheck`).to.equal('CMD');
    }
  });

  it('sets only settings the config schema declares (compose environment, env file, .env.example)', () => {
    expect(unknownSettings(Object.keys(switchboard.environment ?? {})), 'environment').to.deep.equal([]);
    expect(unknownSettings(envFile.keys()), 'switchboard.env.example').to.deep.equal([]);
    expect(unknownSettings(parseEnvFile(readRepoFile('.env.example')).keys()), '.env.example').to.deep.equal([]);
    for (const file of ['deploy/switchboard.env.example', '.env.example'])
      expect(unknownSettings(commentedSettings(readRepoFile(file))), `${file}: # NAME=value examples`).to.deep.equal([]);
  });

  it('is a configuration the server accepts once every placeholder is replaced: production, MongoDB store, cluster on Redis', () => {
    const config = loadConfig(fillPlaceholders(effective));
    expect(config.nodeEnv).to.equal('production');
    expect(config.store.kind).to.equal('mongodb');
    expect(config.cluster.enabled).to.equal(true);
    expect(config.observability.metricsHost).to.equal('127.0.0.1');
    expect(config.sfu.announcedIp).to.equal(effective.SFU_ANNOUNCED_IP);
    expect(config.turn.relayIp).to.equal(effective.TURN_RELAY_IP);
    expect(config.sfu.workers).to.equal(Number(effective.SFU_WORKERS));
    expect(config.turn.enabled).to.equal(true);
    expect(config.turn.workers).to.equal(Number(effective.TURN_WORKERS));
  });

  it('is refused while the secrets are placeholders, naming each of them', () => {
    const placeholders = Object.entries(effective)
      .filter(([, value]) => value.includes(PLACEHOLDER))
      .map(([name]) => name);
    expect(placeholders.sort()).to.deep.equal(['ADMIN_API_KEY', 'SIGNING_KEYS', 'TURN_SECRET']);
    let problems: string[] = [];
    try {
      loadConfig(effective);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems = error.problems;
    }
    for (const name of placeholders)
      expect(
        problems.some((problem) => problem.startsWith(`${name}:`)),
        name,
      ).to.equal(true);
  });

  it('keeps the ports the README and the Dockerfile name: the config defaults', () => {
    for (const name of ['PORT', 'METRICS_PORT', 'TURN_PORT', 'TURN_MIN_PORT', 'TURN_MAX_PORT', 'SFU_PORT']) {
      expect(Number(effective[name]), name).to.equal(settingDefault(name));
    }
  });

  it('fixes the SFU and TURN worker counts, one port each, and names the ports to open for them', () => {
    const envText = readRepoFile('deploy/switchboard.env.example');
    const composeText = readRepoFile('deploy/docker-compose.yml');
    for (const [workers, range] of [
      ['SFU_WORKERS', 'SFU_PORT..SFU_PORT+SFU_WORKERS-1'],
      ['TURN_WORKERS', 'TURN_PORT..TURN_PORT+TURN_WORKERS-1'],
    ] as const) {
      // Set, not the schema's one per core: the ports to open do not follow the host's cores.
      expect(envFile.get(workers), workers).to.match(/^[1-9]\d*$/);
      expect(settingAccepts(workers, envFile.get(workers) as string), workers).to.equal(true);
      expect(envText, `switchboard.env.example: ${range}`).to.include(range);
      expect(composeText, `docker-compose.yml: ${workers}`).to.include(workers);
    }
    expect(envText).to.include('TURN_MIN_PORT..TURN_MAX_PORT (UDP)');
    expect(envFile.get('TURN_WORKERS')).to.equal(envFile.get('SFU_WORKERS'));
    // .env.example documents both counts and their ranges, leaving them at one per core.
    const example = readRepoFile('.env.example');
    for (const range of ['SFU_PORT..SFU_PORT+SFU_WORKERS-1', 'TURN_PORT..TURN_PORT+TURN_WORKERS-1'])
      expect(example, range).to.include(range);
    expect(commentedSettings(example)).to.include.members(['SFU_WORKERS', 'TURN_WORKERS']);
  });

  it('keeps the filled-in env file out of git and out of the build context', () => {
    for (const ignoreFile of ['.gitignore', '.dockerignore']) {
      expect(readRepoFile(ignoreFile).split('\n'), ignoreFile).to.include(`deploy/${switchboard.env_file}`);
    }
  });

  it('reaches MongoDB and Redis on the loopback ports they publish', () => {
    const mongo = new URL(effective.MONGODB_URI as string);
    const redis = new URL(effective.REDIS_URL as string);
    expect([mongo.hostname, redis.hostname]).to.deep.equal(['127.0.0.1', '127.0.0.1']);
    expect(publishedLoopbackPort(compose.services.mongo as ComposeService, 27017)).to.equal(Number(mongo.port));
    expect(publishedLoopbackPort(compose.services.redis as ComposeService, 6379)).to.equal(Number(redis.port));
  });

  it('checks /health on PORT and stops with more time than the drain and shutdown deadlines', () => {
    const probe = switchboard.healthcheck?.test.join(' ') ?? '';
    expect(probe).to.include("fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health')");
    expect(settingDefault('PORT')).to.equal(8080);
    const shutdownS = (setting('SHUTDOWN_DRAIN_MS') + setting('SHUTDOWN_TIMEOUT_MS')) / 1000;
    expect(durationSeconds(switchboard.stop_grace_period ?? '')).to.be.greaterThan(shutdownS);
  });
});
