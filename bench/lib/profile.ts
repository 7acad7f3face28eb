/**
 * Summarises a V8 CPU profile (.cpuprofile, as written by --cpu-prof or the inspector's
 * Profiler.stop): self time per function and per package or source file, idle excluded.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileEntry {
  name: string;
  selfMs: number;
  /** Share of the busy (non-idle) time, in percent. */
  pct: number;
}

export interface ProfileSummary {
  busyMs: number;
  idleMs: number;
  functions: ProfileEntry[];
  /** By npm package, Node internals, or repository source file (the top ones). */
  modules: ProfileEntry[];
  /** Every module's share, in percent of busy time (absent in results stored before it existed). */
  allModules?: Record<string, number>;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Where a frame's code lives: an npm package, node core, a repo file, or a V8 pseudo-frame. */
export function moduleOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node core';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? path);
  }
  if (path.startsWith(ROOT)) return relative(ROOT, path);
  return path;
}

export function summarizeProfile(file: string, top = 12): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // timeDeltas[i] is the time before sample i; attribute it to the sample (V8's convention).
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, deltas[i] ?? 0));
  }
  const functions = new Map<string, number>();
  const modules = new Map<string, number>();
  let idleUs = 0;
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const frame = (byId.get(id) as ProfileNode).callFrame;
    if (frame.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    busyUs += us;
    const module = moduleOf(frame.url, frame.functionName);
    const name = `${frame.functionName || '(anonymous)'} ${frame.url ? `${module}:${frame.lineNumber + 1}` : ''}`.trim();
    functions.set(name, (functions.get(name) ?? 0) + us);
    modules.set(module, (modules.get(module) ?? 0) + us);
  }
  const entries = (map: Map<string, number>, count = top): ProfileEntry[] =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([name, us]) => ({ name, selfMs: us / 1000, pct: busyUs ? (us / busyUs) * 100 : 0 }));
  const allModules = Object.fromEntries([...modules].map(([name, us]) => [name, busyUs ? (us / busyUs) * 100 : 0]));
  return { busyMs: busyUs / 1000, idleMs: idleUs / 1000, functions: entries(functions), modules: entries(modules, 16), allModules };
}

/** Markdown: self time by module for both servers side by side, and Switchboard's top functions. */
export function profileMarkdown(baseline: ProfileSummary, switchboard: ProfileSummary, functions = 12): string {
  const rows = Array.from({ length: Math.max(baseline.modules.length, switchboard.modules.length) }, (_, i) => {
    const b = baseline.modules[i];
    const s = switchboard.modules[i];
    return `| ${b ? `${b.name} ${b.pct.toFixed(1)}%` : ''} | ${s ? `${s.name} ${s.pct.toFixed(1)}%` : ''} |`;
  });
  // What only Switchboard runs: its own sources and the packages the baseline never touches.
  const shares = (p: ProfileSummary): Record<string, number> => p.allModules ?? Object.fromEntries(p.modules.map((m) => [m.name, m.pct]));
  const baselineShares = shares(baseline);
  const own = Object.entries(shares(switchboard))
    .filter(([name]) => !(name in baselineShares) && !name.startsWith('('))
    .sort((a, b) => b[1] - a[1]);
  const ownPct = own.reduce((sum, [, pct]) => sum + pct, 0);
  const top = switchboard.functions
    .slice(0, functions)
    .map((f) => `| \`${f.name.replace(/\|/g, '\\|')}\` | ${f.selfMs.toFixed(1)} | ${f.pct.toFixed(1)} |`);
  return [
    `Self time by package or source file, in percent of busy (non-idle) time (busy: baseline ${baseline.busyMs.toFixed(0)} ms, Switchboard ${switchboard.busyMs.toFixed(0)} ms of CPU in the profiled window; "(native)" is V8/C++ code without a JavaScript frame: socket writes, crypto, JSON):`,
    '',
    '| bare Socket.IO | Switchboard |',
    '| --- | --- |',
    ...rows,
    '',
    `Code only Switchboard runs (its own sources and packages absent from the baseline's profile) takes ${ownPct.toFixed(1)}% of its busy time: ${own
      .slice(0, 10)
      .map(([name, pct]) => `${name} ${pct.toFixed(1)}%`)
      .join(', ')}${own.length > 10 ? ', ...' : ''}. The rest is Socket.IO, ws, Node and V8 work that both servers do per message.`,
    '',
    'Top functions of Switchboard by self time:',
    '',
    '| function | self ms | % busy |',
    '| --- | --- | --- |',
    ...top,
  ].join('\n');
}
