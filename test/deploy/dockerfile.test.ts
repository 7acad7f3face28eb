/**
 * The Dockerfile, read line by line (no Docker engine runs here to build it): its runtime stage
 * holds what `npm start` runs and serves, runs as a non-root user over root-owned files, smoke
 * tests the mediasoup worker, and its ENV and EXPOSE lines agree with the config schema's names
 * and defaults.
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import {
  dockerEnv,
  parseDockerfile,
  readRepoFile,
  repoPath,
  settingDefault,
  unknownSettings,
  type DockerInstruction,
} from './deployFiles.js';

const instructions = parseDockerfile(readRepoFile('Dockerfile'));
const lastStage = Math.max(...instructions.map((i) => i.stage));
const runtime = instructions.filter((i) => i.stage === lastStage);
const build = instructions.filter((i) => i.stage < lastStage);
const args = (list: DockerInstruction[], keyword: string): string[] => list.filter((i) => i.keyword === keyword).map((i) => i.args);
const packageJson = JSON.parse(readRepoFile('package.json')) as { engines: { node: string }; scripts: Record<string, string> };

/** The repository's top-level source folders that `entry` reaches through relative imports. */
function sourceFoldersReached(entry: string): Set<string> {
  const root = repoPath('');
  const seen = new Set<string>();
  const pending = [resolve(root, entry)];
  while (pending.length > 0) {
    const file = pending.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/(?:from\s+|import\(\s*|new URL\(\s*)'(\.{1,2}\/[^']+)'/g)) {
      const target = resolve(dirname(file), (match[1] as string).replace(/\.js$/, '.ts'));
      const candidates = [target, target.replace(/\.ts$/, '.tsx')];
      const found = candidates.find((candidate) => existsSync(candidate));
      if (found) pending.push(found);
    }
  }
  return new Set([...seen].map((file) => relative(root, file).split('/')[0] as string));
}

describe('deploy: Dockerfile', () => {
  it('builds on Node.js 22 LTS, which package.json engines accept', () => {
    const bases = args(instructions, 'FROM').map((from) => /^node:(\d+)-bookworm(-slim)?\b/.exec(from)?.[1]);
    expect(bases).to.deep.equal(['22', '22']);
    const minimumMajor = Number(/^>=(\d+)/.exec(packageJson.engines.node)?.[1]);
    expect(22).to.be.at.least(minimumMajor);
  });

  it('takes meson >= 1.1 from a pip venv on PATH for the worker build, not from backports', () => {
    const run = args(build, 'RUN').join('\n');
    const version = /meson==(\d+)\.(\d+)\.(\d+)/.exec(run);
    expect(version, 'a pinned meson from pip').to.not.equal(null);
    expect(Number(version?.[1]) * 100 + Number(version?.[2])).to.be.at.least(101);
    expect(run).to.include('python3 -m venv /opt/meson');
    expect(dockerEnv(build).get('PATH')).to.match(/^\/opt\/meson\/bin:/);
    expect(run).to.not.include('backports');
    expect(run).to.include('bash scripts/build-mediasoup-worker.sh');
  });

  it('copies into the runtime stage everything `npm start` loads and serves, root-owned', () => {
    const copies = args(runtime, 'COPY');
    for (const copy of copies) expect(copy, 'root-owned files').to.not.include('--chown');
    const copied = copies.map((copy) => copy.split(/\s+/).at(-2) as string);
    // npm start: node dist/server/main.js, and every source folder main.ts reaches, compiled.
    expect(packageJson.scripts.start).to.equal('node dist/server/main.js');
    expect(args(runtime, 'CMD')).to.deep.equal(['["node", "dist/server/main.js"]']);
    for (const folder of sourceFoldersReached('server/main.ts')) expect(copied, `dist/${folder}`).to.include(`/app/dist/${folder}`);
    // What server/http/frontend.ts serves: the demo page and the SDK bundle (scripts/build-sdk.mjs).
    const frontend = readRepoFile('server/http/frontend.ts');
    expect(frontend).to.include("join(root, 'client-sdk', 'demo')").and.include("join(root, 'dist', 'sdk')");
    expect(copied).to.include.members(['/app/client-sdk/demo', '/app/dist/sdk', '/app/node_modules', '/app/package.json']);
    expect(existsSync(join(repoPath('client-sdk/demo'), 'index.html'))).to.equal(true);
    // The TURN relay's native UDP I/O (turn/udpEndpoint.ts loads dist/native/udp_batch.node): built strictly, copied, loaded as the runtime user.
    expect(readRepoFile('turn/udpEndpoint.ts')).to.include("join(dir, 'dist', 'native', 'udp_batch.node')");
    expect(args(build, 'RUN').join('\n')).to.include('node scripts/build-native.mjs --strict');
    expect(copied).to.include('/app/dist/native');
    const userAt = runtime.findIndex((i) => i.keyword === 'USER');
    const loads = runtime.findIndex((i) => i.keyword === 'RUN' && i.args.includes("chooseUdpIo('native')"));
    expect(loads, 'the addon loads after USER').to.be.greaterThan(userAt);
  });

  it('runs as the non-root node user, smoke-tests the mediasoup worker as that user, under tini', () => {
    const userAt = runtime.findIndex((i) => i.keyword === 'USER');
    expect(runtime[userAt]?.args).to.equal('node');
    const smoke = runtime.findIndex((i) => i.keyword === 'RUN' && i.args === 'node scripts/check-mediasoup-worker.mjs');
    expect(smoke, 'worker smoke test after USER').to.be.greaterThan(userAt);
    expect(existsSync(repoPath('scripts/check-mediasoup-worker.mjs'))).to.equal(true);
    expect(args(runtime, 'ENTRYPOINT')).to.deep.equal(['["/usr/bin/tini", "--"]']);
  });

  it('sets only settings of the config schema, with /metrics reachable from outside the container', () => {
    const env = dockerEnv(runtime);
    expect(unknownSettings(env.keys())).to.deep.equal([]);
    expect(Object.fromEntries(env)).to.deep.equal({ NODE_ENV: 'production', METRICS_HOST: '0.0.0.0' });
    expect(settingDefault('METRICS_HOST')).to.equal('127.0.0.1');
  });

  it('exposes the default ports: PORT and METRICS_PORT (TCP), one TURN_PORT + i and SFU_PORT + i per worker the image pins (UDP and TCP), and no range', () => {
    const env = dockerEnv(runtime);
    // Worker counts the image leaves at one per core fix only worker 0's port.
    const fixedPorts = (port: string, workers: string): number[] =>
      Array.from({ length: Number(env.get(workers) ?? 1) }, (_, i) => (settingDefault(port) as number) + i);
    const exposed = args(runtime, 'EXPOSE').flatMap((line) => line.split(/\s+/));
    expect(exposed.sort()).to.deep.equal(
      [
        `${settingDefault('PORT')}/tcp`,
        `${settingDefault('METRICS_PORT')}/tcp`,
        ...fixedPorts('TURN_PORT', 'TURN_WORKERS').flatMap((port) => [`${port}/udp`, `${port}/tcp`]),
        ...fixedPorts('SFU_PORT', 'SFU_WORKERS').flatMap((port) => [`${port}/udp`, `${port}/tcp`]),
      ].sort(),
    );
  });

  it('pins neither worker count (one per core), and says so where it exposes worker 0 only', () => {
    const env = dockerEnv(runtime);
    for (const workers of ['TURN_WORKERS', 'SFU_WORKERS']) expect(env.has(workers), workers).to.equal(false);
    // The comment block right above EXPOSE.
    const lines = readRepoFile('Dockerfile').split('\n');
    const exposeAt = lines.findIndex((line) => line.startsWith('EXPOSE '));
    let first = exposeAt;
    while (first > 0 && (lines[first - 1] as string).startsWith('#')) first--;
    const comment = lines.slice(first, exposeAt).join(' ');
    for (const phrase of ['TURN_WORKERS', 'SFU_WORKERS', 'TURN_PORT + i', 'SFU_PORT + i', 'one port per worker', 'TURN_TLS_PORT'])
      expect(comment, phrase).to.include(phrase);
  });

  it('checks /health on PORT (8080 by default)', () => {
    const [healthcheck] = args(runtime, 'HEALTHCHECK');
    expect(healthcheck).to.include("fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health')");
    expect(settingDefault('PORT')).to.equal(8080);
  });
});
