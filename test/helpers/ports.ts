/** Free ports for servers the tests start: single-port SFU media needs consecutive ones, free for both UDP and TCP. */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';

/** Whether `port` can be bound for UDP and for TCP on `ip` now (both closed again before it resolves). */
async function freeForBoth(port: number, ip: string): Promise<boolean> {
  const udp = createSocket(ip.includes(':') ? 'udp6' : 'udp4');
  const tcp = createServer();
  const bound = await Promise.all([
    new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, ip, () => resolve(true));
    }),
    new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, ip, () => resolve(true));
    }),
  ]);
  await Promise.all([
    new Promise<void>((resolve) => {
      try {
        udp.close(() => resolve());
      } catch {
        resolve(); // never bound
      }
    }),
    new Promise<void>((resolve) => tcp.close(() => resolve())),
  ]);
  return bound.every(Boolean);
}

/**
 * The first of `count` consecutive ports free for UDP and TCP on `ip` (an SFU_PORT for
 * `count` workers), below the TURN relay range: starts where the kernel's ephemeral UDP port
 * choice lands, so parallel test runs start far apart.
 */
export async function freeSfuPort(count = 1, ip = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const probe = createSocket(ip.includes(':') ? 'udp6' : 'udp4');
    const first = await new Promise<number>((resolve, reject) => {
      probe.once('error', reject);
      probe.bind(0, ip, () => resolve(probe.address().port));
    });
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    // Below TURN_MIN_PORT's default (49152): a server with TURN on refuses an SFU_PORT in the relay range.
    if (first + count - 1 >= 49152) continue;
    let free = true;
    for (let i = 0; i < count && free; i++) free = await freeForBoth(first + i, ip);
    if (free) return first;
  }
  throw new Error(`no ${count} consecutive free UDP+TCP ports on ${ip}`);
}

/**
 * `env` with a free SFU_PORT for its workers when it turns the SFU on without naming a port, so
 * test servers running side by side never meet on the default (7882).
 */
export async function withFreeSfuPort(env: Record<string, string>): Promise<Record<string, string>> {
  const on = ['true', '1', 'yes', 'on'].includes(String(env.SFU_ENABLED));
  if (!on || env.SFU_PORT !== undefined) return env;
  const workers = Number(env.SFU_WORKERS ?? availableParallelism());
  return { ...env, SFU_PORT: String(await freeSfuPort(workers, env.SFU_LISTEN_IP ?? '0.0.0.0')) };
}
