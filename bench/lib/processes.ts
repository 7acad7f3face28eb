/**
 * Processes the benchmarks start and measure: CPU pinning with taskset, CPU seconds and RSS
 * from /proc, the machine's facts, and a registry of every child so none outlives a run.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';

let tasksetProbe: boolean | undefined;

/** Whether `taskset` (util-linux) can be run here. */
export function tasksetAvailable(): boolean {
  tasksetProbe ??= !spawnSync('taskset', ['-V'], { encoding: 'utf8', timeout: 5_000 }).error;
  return tasksetProbe;
}

export function cpuCount(): number {
  return os.cpus().length;
}

/** Server on core 0 and load generator on core 1 needs taskset and two cores. */
export function canPin(): boolean {
  return process.platform === 'linux' && tasksetAvailable() && cpuCount() >= 2;
}

/** CPU list the server side is pinned to (core 0), or null when not pinning. */
export const SERVER_CPUS = '0';
/** CPU list of the load generator (core 1). */
export const LOAD_CPUS = '1';
/** Every core: what unpinned processes may use. */
export function allCpus(): string {
  return `0-${cpuCount() - 1}`;
}

/** Sets the CPU affinity of every thread of `pid`. Returns false when it could not. */
export function setAffinity(pid: number, cpus: string): boolean {
  if (!tasksetAvailable()) return false;
  const result = spawnSync('taskset', ['-a', '-cp', cpus, String(pid)], { encoding: 'utf8', timeout: 5_000 });
  return result.status === 0;
}

/** The CPU list `pid` may run on (e.g. "0-1"), or null when unknown. */
export function getAffinity(pid: number): string | null {
  if (!tasksetAvailable()) return null;
  const result = spawnSync('taskset', ['-cp', String(pid)], { encoding: 'utf8', timeout: 5_000 });
  return /:\s*(\S+)\s*$/.exec(result.stdout ?? '')?.[1] ?? null;
}

/** Runs `fn` with this process (the load generator) pinned to `cpus`, then restores its affinity. */
export async function withAffinity<T>(cpus: string | null, fn: () => Promise<T>): Promise<T> {
  if (cpus === null || !canPin()) return fn();
  const previous = getAffinity(process.pid) ?? allCpus();
  setAffinity(process.pid, cpus);
  try {
    return await fn();
  } finally {
    setAffinity(process.pid, previous);
  }
}

const CLOCK_TICKS = (() => {
  const result = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number(result.stdout?.trim());
  return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
})();
const PAGE_SIZE = (() => {
  const result = spawnSync('getconf', ['PAGESIZE'], { encoding: 'utf8' });
  const size = Number(result.stdout?.trim());
  return Number.isFinite(size) && size > 0 ? size : 4096;
})();

/** Fields of /proc/<pid>/stat (or of one thread's) after the command name (field 3 onwards), or null when gone. */
function statFields(pid: number, tid?: number): string[] | null {
  try {
    const text = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** User + system CPU seconds of a process (all its threads), 0 when it is gone. */
export function procCpuSeconds(pid: number): number {
  const fields = statFields(pid);
  if (!fields) return 0;
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

const SCHEDSTAT = existsSync('/proc/self/schedstat');

/**
 * CPU seconds of a process from the scheduler's run time of each of its threads
 * (/proc/<pid>/task/<tid>/schedstat, in nanoseconds): /proc/<pid>/stat counts clock ticks
 * (10 ms), too coarse for a few percent of a core over a few seconds. Threads that exited are
 * not counted (fine for a process whose threads live as long as it does, such as a mediasoup
 * worker); without schedstat (a kernel without CONFIG_SCHED_INFO), procCpuSeconds.
 */
export function procRunSeconds(pid: number): number {
  if (!SCHEDSTAT) return procCpuSeconds(pid);
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  let ns = 0;
  for (const tid of tids) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) || 0;
    } catch {
      // the thread exited meanwhile
    }
  }
  return ns / 1e9;
}

/** Resident set size in bytes, 0 when the process is gone. */
export function procRssBytes(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE_SIZE;
  } catch {
    return 0;
  }
}

/** Whether a process exists (and is not a zombie). */
export function processAlive(pid: number): boolean {
  const fields = statFields(pid);
  return fields !== null && fields[0] !== 'Z' && fields[0] !== 'X';
}

/** Every live descendant of `pid` (children, grandchildren, ...). */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (!fields) continue;
    const parent = Number(fields[1]);
    const list = children.get(parent) ?? [];
    list.push(Number(entry));
    children.set(parent, list);
  }
  const out: number[] = [];
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length) {
    const next = queue.shift() as number;
    out.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return out;
}

/** Live descendants of `pid` whose command name matches `name` (comm is cut at 15 characters: "mediasoup-worke"). */
export function descendantsNamed(pid: number, name: RegExp): number[] {
  return descendants(pid).filter((child) => name.test(processName(child)));
}

/**
 * Datagrams the kernel dropped on the UDP sockets a process holds (receive buffer full),
 * summed from the `drops` column of /proc/net/udp and udp6; 0 when unknown.
 */
export function udpDrops(pid: number): number {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (target.startsWith('socket:[')) inodes.add(target.slice(8, -1));
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return 0;
  }
  let drops = 0;
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length >= 13 && inodes.has(cols[9] as string)) drops += Number(cols[12]) || 0;
    }
  }
  return drops;
}

/** The command name (comm) of a process, '' when gone. */
export function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * What a Chromium process does, from its command line: "renderer", "gpu-process",
 * "utility:AudioService", ... ("browser" for the main process, which has no --type).
 */
export function chromiumProcessType(pid: number): string {
  let args: string;
  try {
    // Chromium rewrites its child processes' argv into one space-separated string.
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return 'gone';
  }
  const value = (flag: string) => new RegExp(`(?:^| )--${flag}=(\\S+)`).exec(args)?.[1];
  const type = value('type');
  if (!type) return 'browser';
  const sub = value('utility-sub-type');
  return sub ? `${type}:${sub.split('.').pop()}` : type;
}

/** Every thread of a process: its name and scheduling policy (stat field 41; 0 is SCHED_OTHER). Empty when gone. */
export function processThreads(pid: number): { name: string; policy: number }[] {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tids.flatMap((tid) => {
    const fields = statFields(pid, Number(tid));
    if (!fields) return [];
    let name = '';
    try {
      name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
    } catch {
      return [];
    }
    return [{ name, policy: Number(fields[38]) }];
  });
}

/** Busy and total CPU seconds of the whole machine (every core), from /proc/stat. */
export function machineCpuSeconds(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  // user nice system idle iowait irq softirq steal (guest time is inside user already)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: busy / CLOCK_TICKS, total: (busy + idle + iowait) / CLOCK_TICKS };
}

/** CPU seconds of `pid` and every live descendant. */
export function treeCpuSeconds(pid: number): number {
  return [pid, ...descendants(pid)].reduce((sum, p) => sum + procCpuSeconds(p), 0);
}

const live = new Set<ChildProcess>();

/** Registers a child so it is killed if the run ends without closing it. */
export function trackChild(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** Children started by the benchmarks that have not exited yet. */
export function liveChildren(): ChildProcess[] {
  return [...live];
}

process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface MachineFacts {
  date: string;
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  freeMemoryGiB: number;
  node: string;
  os: string;
  loadAverage: [number, number, number];
  /** How server and load generator were placed. */
  pinning: string;
  /** What generated the load, where a benchmark has more than one way (the TURN benchmark). */
  loadGenerator?: string;
}

export function machineFacts(pinned: boolean): MachineFacts {
  const load = os.loadavg();
  return {
    date: new Date().toISOString(),
    cores: cpuCount(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    freeMemoryGiB: Math.round((os.freemem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverage: [load[0] ?? 0, load[1] ?? 0, load[2] ?? 0].map((v) => Math.round(v * 100) / 100) as [number, number, number],
    pinning: pinned
      ? `server on core ${SERVER_CPUS}, load generator on core ${LOAD_CPUS} (taskset)`
      : canPin()
        ? 'not pinned (disabled)'
        : 'not pinned (needs taskset and 2 cores)',
  };
}
