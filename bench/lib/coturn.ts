/**
 * Debian's coturn for the TURN benchmark, started exactly as test/turn/coturn.test.ts starts
 * it (no config file, use-auth-secret with the same shared secret, the README's peer policy,
 * loopback peers allowed), optionally pinned to a core with taskset.
 */
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Method, TurnClient } from '../../test/helpers/stun.js';
import { BENCH_TURN_REALM, BENCH_TURN_SECRET } from './benchConfig.js';
import { tasksetAvailable, trackChild } from './processes.js';

/** The denied-peer-ip lines of turn/README.md (as in test/turn/coturn.test.ts). */
const README_DENIED_PEERS = [
  '0.0.0.0-0.255.255.255',
  '10.0.0.0-10.255.255.255',
  '100.64.0.0-100.127.255.255',
  '169.254.0.0-169.254.255.255',
  '172.16.0.0-172.31.255.255',
  '192.168.0.0-192.168.255.255',
  '240.0.0.0-255.255.255.255',
  '::ffff:0.0.0.0-::ffff:255.255.255.255',
  '64:ff9b::-64:ff9b::ffff:ffff',
  'fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  'fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
];

export interface Coturn {
  address: string;
  port: number;
  secret: string;
  pid: number;
  version: string;
  close(): Promise<void>;
}

/** Why coturn cannot run here, or null. */
export function coturnUnavailableReason(): string | null {
  const probe = spawnSync('turnserver', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return probe.error ? `coturn's turnserver is not installed (${(probe.error as NodeJS.ErrnoException).code}); apt-get install -y coturn` : null;
}

function coturnVersion(): string {
  const probe = spawnSync('turnserver', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return `${probe.stdout ?? ''}${probe.stderr ?? ''}`.trim().split('\n').pop() ?? 'unknown';
}

async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

export async function startCoturn(cpus: string | null): Promise<Coturn> {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-coturn-'));
  const port = await freeUdpPort();
  const args = [
    '-n',
    '--listening-ip=127.0.0.1',
    `--listening-port=${port}`,
    '--relay-ip=127.0.0.1',
    '--use-auth-secret',
    `--static-auth-secret=${BENCH_TURN_SECRET}`,
    `--realm=${BENCH_TURN_REALM}`,
    '--no-tls',
    '--no-dtls',
    '--no-tcp',
    '--no-tcp-relay',
    '--no-cli',
    '--user-quota=2',
    '--no-multicast-peers',
    ...README_DENIED_PEERS.map((range) => `--denied-peer-ip=${range}`),
    '--allowed-peer-ip=127.0.0.1',
    '--allow-loopback-peers',
    `--log-file=${join(dir, 'turn.log')}`,
    '--simple-log',
    `--pidfile=${join(dir, 'turn.pid')}`,
    `--userdb=${join(dir, 'turndb')}`,
  ];
  const pin = cpus && tasksetAvailable() ? ['taskset', '-c', cpus] : [];
  const [command, ...rest] = [...pin, 'turnserver', ...args] as [string, ...string[]];
  const child = spawn(command, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  trackChild(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-5000)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-5000)));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const probe = await TurnClient.open({ address: '127.0.0.1', port });
  const ready = await Promise.race([probe.request(Method.Binding, [], { sign: false }).then(() => true), exited.then(() => false)]).catch(() => false);
  await probe.close();
  if (!ready || child.pid === undefined) {
    await close();
    throw new Error(`coturn did not come up on 127.0.0.1:${port}:\n${output.slice(-2000)}`);
  }
  return { address: '127.0.0.1', port, secret: BENCH_TURN_SECRET, pid: child.pid, version: coturnVersion(), close };
}
