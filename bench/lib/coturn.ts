/**
 * Debian's coturn for the TURN benchmark, started by the same helper as the interop test
 * (test/helpers/coturn.ts: no config file, use-auth-secret, the README's peer policy,
 * loopback peers allowed), optionally pinned to a core with taskset.
 */
import { spawnSync } from 'node:child_process';
import { startCoturn as startTestCoturn, type RunningCoturn } from '../../test/helpers/coturn.js';
import { BENCH_TURN_REALM, BENCH_TURN_SECRET } from './benchConfig.js';
import { tasksetAvailable, trackChild } from './processes.js';

export { coturnUnavailableReason } from '../../test/helpers/coturn.js';

export interface Coturn extends RunningCoturn {
  version: string;
}

function coturnVersion(): string {
  const probe = spawnSync('turnserver', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return `${probe.stdout ?? ''}${probe.stderr ?? ''}`.trim().split('\n').pop() ?? 'unknown';
}

export async function startCoturn(cpus: string | null): Promise<Coturn> {
  const running = await startTestCoturn({
    secret: BENCH_TURN_SECRET,
    realm: BENCH_TURN_REALM,
    userQuota: 2,
    allowedPeer: '127.0.0.1',
    prefix: cpus && tasksetAvailable() ? ['taskset', '-c', cpus] : [],
    onSpawn: trackChild,
  });
  return { ...running, version: coturnVersion() };
}
