/**
 * 6. SDK bundle size: minified (esbuild, as scripts/build-sdk.mjs builds it) and gzip -9
 * (node:zlib), for the core ESM entry with the chunks it imports statically, the lazily
 * imported chunk that holds mediasoup-client, and the IIFE. The module graph is read from
 * the built files' import statements, so stale chunks left in dist/ from older builds are
 * not counted. Reference point: socket.io-client's own minified ESM build, which the core
 * carries. Rebuilds dist/sdk first when it is missing or older than client-sdk/.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import type { BenchContext } from './lib/context.js';
import { machineFacts } from './lib/processes.js';
import { markdownTable, type HeadlineRow, type RenderMeta, type Section } from './lib/report.js';
import { fmt } from './lib/stats.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const ENTRY = join(ROOT, 'dist/sdk/esm/switchboard.js');
const IIFE = join(ROOT, 'dist/sdk/switchboard.js');
const SOCKET_IO_CLIENT = join(ROOT, 'node_modules/socket.io-client/dist/socket.io.esm.min.js');

export interface FileSize {
  file: string;
  min: number;
  gzip: number;
  brotli: number;
}

export function sizeOf(file: string): FileSize {
  const data = readFileSync(file);
  return {
    file: relative(ROOT, file),
    min: data.length,
    gzip: gzipSync(data, { level: 9 }).length,
    brotli: brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
}

/** Relative imports of an ES module: static (from/bare import) and dynamic (import("...")). */
export function importsOf(file: string): { staticImports: string[]; dynamicImports: string[] } {
  const code = readFileSync(file, 'utf8');
  const dir = dirname(file);
  const dynamicImports = [...code.matchAll(/\bimport\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g)].map((m) => resolve(dir, m[1] as string));
  const staticImports = [
    ...[...code.matchAll(/\bfrom\s*["'](\.{1,2}\/[^"']+)["']/g)].map((m) => m[1] as string),
    ...[...code.matchAll(/\bimport\s*["'](\.{1,2}\/[^"']+)["']/g)].map((m) => m[1] as string),
  ].map((spec) => resolve(dir, spec));
  return { staticImports: [...new Set(staticImports)], dynamicImports: [...new Set(dynamicImports)] };
}

/** `roots` and everything they import statically. */
function staticClosure(roots: string[]): string[] {
  const seen = new Set<string>();
  const queue = [...roots];
  while (queue.length) {
    const file = queue.shift() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    queue.push(...importsOf(file).staticImports);
  }
  return [...seen];
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function ensureBuilt(ctx: BenchContext): void {
  const sources = join(ROOT, 'client-sdk');
  const stale = !existsSync(ENTRY) || !existsSync(IIFE) || statSync(ENTRY).mtimeMs < newestMtime(sources);
  if (!stale) return;
  ctx.log('bundle: dist/sdk is missing or older than client-sdk/; running node scripts/build-sdk.mjs');
  const result = spawnSync(process.execPath, ['scripts/build-sdk.mjs'], { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`SDK build failed: ${result.stderr}`);
}

export interface BundleResult {
  core: FileSize[];
  lazy: FileSize[];
  iife: FileSize;
  socketIoClient: FileSize | null;
}

export function measureBundle(): BundleResult {
  const core = staticClosure([ENTRY]);
  const lazyRoots = core.flatMap((file) => importsOf(file).dynamicImports);
  const lazy = staticClosure(lazyRoots).filter((file) => !core.includes(file));
  return {
    core: core.map(sizeOf),
    lazy: lazy.map(sizeOf),
    iife: sizeOf(IIFE),
    socketIoClient: existsSync(SOCKET_IO_CLIENT) ? sizeOf(SOCKET_IO_CLIENT) : null,
  };
}

const kb = (bytes: number): string => `${fmt(bytes / 1024)} KiB`;
const total = (files: FileSize[], key: 'min' | 'gzip' | 'brotli'): number => files.reduce((sum, f) => sum + f[key], 0);

export async function runBundle(ctx: BenchContext): Promise<Section> {
  const started = performance.now();
  const machine = machineFacts(false);
  ensureBuilt(ctx);
  return renderBundle(measureBundle(), { machine, wallS: (performance.now() - started) / 1000, rounds: 1, pin: false });
}

/** The section, from the figures (also used to rebuild RESULTS.md from results/bundle.json). */
export function renderBundle(result: BundleResult, meta: RenderMeta): Section {
  const withSfu = [...result.core, ...result.lazy];
  const rows: string[][] = [
    [
      'core ESM (entry + static chunks)',
      result.core.map((f) => `\`${f.file}\``).join(', '),
      kb(total(result.core, 'min')),
      kb(total(result.core, 'gzip')),
      kb(total(result.core, 'brotli')),
    ],
    [
      'lazy SFU chunk (mediasoup-client)',
      result.lazy.map((f) => `\`${f.file}\``).join(', '),
      kb(total(result.lazy, 'min')),
      kb(total(result.lazy, 'gzip')),
      kb(total(result.lazy, 'brotli')),
    ],
    ['core + SFU chunk', '', kb(total(withSfu, 'min')), kb(total(withSfu, 'gzip')), kb(total(withSfu, 'brotli'))],
    [
      'IIFE (one file, mediasoup-client included)',
      `\`${result.iife.file}\``,
      kb(result.iife.min),
      kb(result.iife.gzip),
      kb(result.iife.brotli),
    ],
  ];
  if (result.socketIoClient)
    rows.push([
      'reference: socket.io-client alone',
      `\`${result.socketIoClient.file}\``,
      kb(result.socketIoClient.min),
      kb(result.socketIoClient.gzip),
      kb(result.socketIoClient.brotli),
    ]);
  const headline: HeadlineRow[] = [
    {
      metric: 'SDK core ESM min+gzip KiB (baseline: socket.io-client alone)',
      baseline: result.socketIoClient ? fmt(result.socketIoClient.gzip / 1024) : 'n/a',
      switchboard: fmt(total(result.core, 'gzip') / 1024),
      ratio: result.socketIoClient ? `${(total(result.core, 'gzip') / result.socketIoClient.gzip).toFixed(2)}x` : '',
      target: '',
      verdict: '',
    },
    {
      metric: 'SDK core + mediasoup-client chunk min+gzip KiB',
      baseline: '',
      switchboard: fmt(total(withSfu, 'gzip') / 1024),
      ratio: '',
      target: '',
      verdict: '',
    },
    { metric: 'SDK IIFE min+gzip KiB', baseline: '', switchboard: fmt(result.iife.gzip / 1024), ratio: '', target: '', verdict: '' },
  ];
  const lines = [
    'Sizes of what `scripts/build-sdk.mjs` emits (esbuild, minified, ES2020): raw minified bytes, gzip -9 and brotli 11 (node:zlib). Each ESM file is a separate download, so its compressed sizes are summed per file. A mesh-only page downloads the core; the mediasoup-client chunk loads on the first move to the SFU.',
    '',
    markdownTable(['part', 'files', 'min', 'min+gzip', 'min+brotli'], rows),
  ];
  return {
    name: 'bundle',
    title: '6. SDK bundle size',
    machine: { ...meta.machine, pinning: 'no server involved (file sizes)' },
    wallS: meta.wallS,
    headline,
    markdown: lines.join('\n'),
    plots: [],
    data: result,
  };
}
