/**
 * Debian's coturn started for tests and benchmarks: no configuration file, use-auth-secret
 * with a shared secret, the peer policy turn/README.md recommends (loopback peers allowed
 * for the given address), state in a temporary directory, on an ephemeral 127.0.0.1 port
 * (UDP, and TCP on the same number when asked).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Method, TurnClient } from './stun.js';

/** The denied-peer-ip lines of turn/README.md. */
export const README_DENIED_PEERS = [
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

/** Why coturn cannot run here, or null when it can. */
export function coturnUnavailableReason(): string | null {
  const probe = spawnSync('turnserver', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return probe.error
    ? `coturn's turnserver is not installed (${(probe.error as NodeJS.ErrnoException).code}); apt-get install -y coturn`
    : null;
}

export interface CoturnOptions {
  secret: string;
  realm: string;
  userQuota: number;
  /** The one peer address allowed on loopback. */
  allowedPeer: string;
  /** Listen for TURN over TCP on the UDP port too (coturn's default; off unless asked). */
  tcp?: boolean;
  /** Words put before `turnserver` (e.g. taskset -c 1). */
  prefix?: string[];
  /** Sees the child process as soon as it is spawned (e.g. to track it). */
  onSpawn?: (child: ChildProcess) => void;
}

export interface RunningCoturn {
  address: string;
  port: number;
  secret: string;
  realm: string;
  pid: number;
  close(): Promise<void>;
}

async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** Whether `port` on 127.0.0.1 is free for a TCP listener. */
function tcpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port free for UDP, and for TCP too when `tcp`. */
async function freePort(tcp: boolean): Promise<number> {
  for (;;) {
    const port = await freeUdpPort();
    if (!tcp || (await tcpPortFree(port))) return port;
  }
}

/** Starts turnserver; resolves once it answers a STUN Binding request. */
export async function startCoturn(options: CoturnOptions): Promise<RunningCoturn> {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-coturn-'));
  const port = await freePort(options.tcp ?? false);
  const args = [
    '-n', // no configuration file: everything is on this command line
    '--listening-ip=127.0.0.1',
    `--listening-port=${port}`,
    '--relay-ip=127.0.0.1',
    '--use-auth-secret',
    `--static-auth-secret=${options.secret}`,
    `--realm=${options.realm}`,
    '--no-tls',
    '--no-dtls',
    ...(options.tcp ? [] : ['--no-tcp']),
    '--no-tcp-relay',
    '--no-cli',
    `--user-quota=${options.userQuota}`,
    '--no-multicast-peers',
    ...README_DENIED_PEERS.map((range) => `--denied-peer-ip=${range}`),
    `--allowed-peer-ip=${options.allowedPeer}`,
    // coturn refuses loopback peers before it looks at allowed-peer-ip.
    '--allow-loopback-peers',
    `--log-file=${join(dir, 'turn.log')}`,
    '--simple-log',
    `--pidfile=${join(dir, 'turn.pid')}`,
    `--userdb=${join(dir, 'turndb')}`,
  ];
  const [command, ...rest] = [...(options.prefix ?? []), 'turnserver', ...args] as [string, ...string[]];
  const child = spawn(command, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  options.onSpawn?.(child);
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
  // Ready once it answers a STUN Binding request (the client retransmits for ~12 s).
  const probe = await TurnClient.open({ address: '127.0.0.1', port });
  const ready = await Promise.race([probe.request(Method.Binding, [], { sign: false }).then(() => true), exited.then(() => false)]).catch(
    () => false,
  );
  await probe.close();
  if (!ready || child.pid === undefined) {
    await close();
    throw new Error(`coturn did not come up on 127.0.0.1:${port}:\n${output.slice(-2000)}`);
  }
  return { address: '127.0.0.1', port, secret: options.secret, realm: options.realm, pid: child.pid, close };
}
