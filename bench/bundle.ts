/**
 * 6. SDK bundle size: minified (esbuild) and gzip -9 / brotli 11 (node:zlib), of
 * - the build the server serves (dist/sdk, scripts/build-sdk.mjs): the core ESM entry with the
 *   chunks it imports statically, the lazily imported chunk that holds mediasoup-client, the IIFE;
 * - the npm packages: @switchboard/client as shipped (client-sdk/dist: its ESM, which leaves its
 *   dependencies to the app, and its IIFE) and as an app gets it (the package's ESM bundled by
 *   esbuild the way an app's bundler would: minified, split, so the entry with its static chunks
 *   and the lazy mediasoup-client chunk), and @switchboard/react as shipped and bundled with its
 *   peers (react, @switchboard/client) left out.
 * Baselines, bundled in the same run the same way: socket.io-client alone, mediasoup-client alone,
 * both in one file, and React + ReactDOM (what a React app carries anyway); plus socket.io-client's
 * own minified ESM build. The module graph of dist/sdk is read from the built files' import
 * statements, so stale chunks left there by older builds are not counted. Rebuilds dist/sdk and
 * the packages' dist/ first when they are missing or older than their sources (client-sdk/src,
 * client-sdk/react/src, protocol/).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import type { BenchContext } from './lib/context.js';
import { machineFacts } from './lib/processes.js';
import { markdownTable, type HeadlineRow, type RenderMeta, type Section } from './lib/report.js';
import { fmt } from './lib/stats.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const ENTRY = join(ROOT, 'dist/sdk/esm/switchboard.js');
const IIFE = join(ROOT, 'dist/sdk/switchboard.js');
const SOCKET_IO_CLIENT = join(ROOT, 'node_modules/socket.io-client/dist/socket.io.esm.min.js');
const PACKAGE_ESM = join(ROOT, 'client-sdk/dist/switchboard.js');
const PACKAGE_IIFE = join(ROOT, 'client-sdk/dist/switchboard.iife.js');
const REACT_ESM = join(ROOT, 'client-sdk/react/dist/switchboard-react.js');

export interface FileSize {
  file: string;
  min: number;
  gzip: number;
  brotli: number;
}

export function sizeOf(file: string): FileSize {
  return sizeOfBytes(relative(ROOT, file), readFileSync(file));
}

/** Sizes of bytes that are not a file of the repository (an esbuild output in memory), under a label. */
export function sizeOfBytes(file: string, data: Uint8Array): FileSize {
  return {
    file,
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
  const core = Math.max(newestMtime(join(ROOT, 'client-sdk/src')), newestMtime(join(ROOT, 'protocol')));
  const react = Math.max(core, newestMtime(join(ROOT, 'client-sdk/react/src')));
  const builds: Array<{ files: string[]; sources: number; args: string[]; what: string }> = [
    { files: [ENTRY, IIFE], sources: core, args: [], what: 'dist/sdk' },
    { files: [PACKAGE_ESM, PACKAGE_IIFE], sources: core, args: ['--package'], what: 'client-sdk/dist' },
    { files: [REACT_ESM], sources: react, args: ['--react'], what: 'client-sdk/react/dist' },
  ];
  for (const { files, sources, args, what } of builds) {
    if (files.every((file) => existsSync(file) && statSync(file).mtimeMs >= sources)) continue;
    ctx.log(`bundle: ${what} is missing or older than its sources; running node scripts/build-sdk.mjs ${args.join(' ')}`);
    const result = spawnSync(process.execPath, ['scripts/build-sdk.mjs', ...args], { cwd: ROOT, encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`SDK build failed: ${result.stderr}`);
    // esbuild leaves a file whose content did not change untouched: mark the outputs as built now.
    const now = new Date();
    for (const file of files) utimesSync(file, now, now);
  }
}

/** What an esbuild bundle of `contents` (an entry module in the repository's root) emitted, minified, in memory. */
async function bundleOf(
  label: string,
  contents: string,
  options: { external?: string[]; splitting?: boolean } = {},
): Promise<{ entry: FileSize[]; lazy: FileSize[] }> {
  const result = await build({
    stdin: { contents, resolveDir: ROOT, sourcefile: `${label}.js`, loader: 'js' },
    bundle: true,
    minify: true,
    format: 'esm',
    splitting: options.splitting ?? false,
    outdir: join(ROOT, 'dist', 'bench-bundle', label),
    entryNames: label,
    chunkNames: `${label}-chunk-[hash]`,
    target: ['es2020'],
    platform: 'browser',
    define: { 'process.env.NODE_ENV': '"production"' },
    external: options.external ?? [],
    metafile: true,
    write: false,
    logLevel: 'silent',
  });
  const outputs = result.metafile.outputs;
  const bytes = new Map(result.outputFiles.map((file) => [relative(ROOT, file.path), file.contents]));
  const entryName = Object.keys(outputs).find((path) => outputs[path]?.entryPoint !== undefined && path.endsWith('.js'));
  if (!entryName) throw new Error(`bundle ${label}: no entry output`);
  const closure = (roots: string[], kind: 'import-statement' | 'dynamic-import'): string[] => {
    const seen = new Set<string>();
    const queue = [...roots];
    while (queue.length) {
      const path = queue.shift() as string;
      if (seen.has(path)) continue;
      seen.add(path);
      for (const imported of outputs[path]?.imports ?? []) if (imported.kind === kind && !imported.external) queue.push(imported.path);
    }
    return [...seen];
  };
  const entry = closure([entryName], 'import-statement');
  const lazyRoots = entry.flatMap((path) =>
    (outputs[path]?.imports ?? []).filter((i) => i.kind === 'dynamic-import' && !i.external).map((i) => i.path),
  );
  const lazy = closure(lazyRoots, 'import-statement').filter((path) => !entry.includes(path));
  const size = (path: string): FileSize => sizeOfBytes(`${label}: ${basename(path)}`, bytes.get(path) ?? new Uint8Array());
  return { entry: entry.map(size), lazy: lazy.map(size) };
}

export interface BundleResult {
  /** The served build (dist/sdk). */
  core: FileSize[];
  lazy: FileSize[];
  iife: FileSize;
  socketIoClient: FileSize | null;
  /** @switchboard/client (absent from results of runs before the packages existed). */
  package?: {
    /** client-sdk/dist/switchboard.js as shipped: not minified, dependencies left as imports. */
    esm: FileSize;
    /** client-sdk/dist/switchboard.iife.js: minified, dependencies included. */
    iife: FileSize;
    /** The package's ESM bundled as an app's bundler would (minified, split): the entry with its static chunks... */
    appCore: FileSize[];
    /** ...and the lazy chunk(s): mediasoup-client. */
    appLazy: FileSize[];
  };
  /** @switchboard/react. */
  react?: {
    /** client-sdk/react/dist/switchboard-react.js as shipped: not minified, peers left as imports. */
    esm: FileSize;
    /** Bundled and minified with its peers (react, @switchboard/client) left out: what it adds to an app. */
    app: FileSize;
  };
  /** Dependencies bundled alone the same way (esbuild, minified), in the same run. */
  baselines?: {
    socketIoClient: FileSize;
    mediasoupClient: FileSize;
    /** socket.io-client and mediasoup-client in one file: what the IIFE carries besides Switchboard's code. */
    dependencies: FileSize;
    /** React + ReactDOM (production): what a React app carries anyway. */
    react: FileSize;
  };
}

/** One file of a bundle that emits one. */
const single = (files: FileSize[]): FileSize => {
  if (files.length !== 1) throw new Error(`expected one output file, got ${files.map((f) => f.file).join(', ')}`);
  return files[0] as FileSize;
};

export async function measureBundle(): Promise<BundleResult> {
  const core = staticClosure([ENTRY]);
  const lazyRoots = core.flatMap((file) => importsOf(file).dynamicImports);
  const lazy = staticClosure(lazyRoots).filter((file) => !core.includes(file));
  const app = await bundleOf('client-app', `export * from ${JSON.stringify(PACKAGE_ESM)};`, { splitting: true });
  const react = await bundleOf('react-app', `export * from ${JSON.stringify(REACT_ESM)};`, {
    external: ['react', 'react/*', 'react-dom', 'react-dom/*', '@switchboard/client'],
  });
  const alone = async (label: string, contents: string): Promise<FileSize> => {
    const { entry, lazy: chunks } = await bundleOf(label, contents);
    return single([...entry, ...chunks]);
  };
  return {
    core: core.map(sizeOf),
    lazy: lazy.map(sizeOf),
    iife: sizeOf(IIFE),
    socketIoClient: existsSync(SOCKET_IO_CLIENT) ? sizeOf(SOCKET_IO_CLIENT) : null,
    package: { esm: sizeOf(PACKAGE_ESM), iife: sizeOf(PACKAGE_IIFE), appCore: app.entry, appLazy: app.lazy },
    react: { esm: sizeOf(REACT_ESM), app: single([...react.entry, ...react.lazy]) },
    baselines: {
      socketIoClient: await alone('socket.io-client', `export * from 'socket.io-client';`),
      mediasoupClient: await alone('mediasoup-client', `export * from 'mediasoup-client';`),
      dependencies: await alone(
        'dependencies',
        `import * as io from 'socket.io-client'; import * as mediasoup from 'mediasoup-client'; export { io, mediasoup };`,
      ),
      react: await alone(
        'react-and-react-dom',
        `import * as React from 'react'; import * as ReactDOM from 'react-dom/client'; export { React, ReactDOM };`,
      ),
    },
  };
}

const kb = (bytes: number): string => `${fmt(bytes / 1024)} KiB`;
const total = (files: FileSize[], key: 'min' | 'gzip' | 'brotli'): number => files.reduce((sum, f) => sum + f[key], 0);

export async function runBundle(ctx: BenchContext): Promise<Section> {
  const started = performance.now();
  const machine = machineFacts(false);
  ensureBuilt(ctx);
  return renderBundle(await measureBundle(), { machine, wallS: (performance.now() - started) / 1000, rounds: 1, pin: false });
}

/** A table row of files summed: raw (min) bytes, gzip, brotli. */
function sizeRow(part: string, files: FileSize[], filesCell?: string): string[] {
  return [
    part,
    filesCell ?? files.map((f) => `\`${f.file}\``).join(', '),
    kb(total(files, 'min')),
    kb(total(files, 'gzip')),
    kb(total(files, 'brotli')),
  ];
}

const ratio = (value: number, baseline: number): string => `${(value / baseline).toFixed(2)}x`;

/** A headline row: min+gzip KiB against a baseline's. */
function gzipHeadline(metric: string, value: number, baseline?: number): HeadlineRow {
  return {
    metric,
    baseline: baseline === undefined ? '' : fmt(baseline / 1024),
    switchboard: fmt(value / 1024),
    ratio: baseline === undefined ? '' : ratio(value, baseline),
    target: '',
    verdict: '',
  };
}

/** The section, from the figures (also used to rebuild RESULTS.md from results/bundle.json). */
export function renderBundle(result: BundleResult, meta: RenderMeta): Section {
  const withSfu = [...result.core, ...result.lazy];
  const rows: string[][] = [
    sizeRow('core ESM (entry + static chunks)', result.core),
    sizeRow('lazy SFU chunk (mediasoup-client)', result.lazy),
    sizeRow('core + SFU chunk', withSfu, ''),
    sizeRow('IIFE (one file, mediasoup-client included)', [result.iife]),
  ];
  if (result.socketIoClient) rows.push(sizeRow('reference: socket.io-client alone', [result.socketIoClient]));
  const headline: HeadlineRow[] = [
    gzipHeadline(
      "served core ESM min+gzip KiB (baseline: socket.io-client's own min build)",
      total(result.core, 'gzip'),
      result.socketIoClient?.gzip,
    ),
    gzipHeadline('served core + mediasoup-client chunk min+gzip KiB', total(withSfu, 'gzip')),
    gzipHeadline('served IIFE min+gzip KiB', result.iife.gzip),
  ];
  const lines = [
    '### The build the server serves (`dist/sdk`)',
    '',
    'Sizes of what `scripts/build-sdk.mjs` emits for `/sdk/` (esbuild, minified, ES2020): raw minified bytes, gzip -9 and brotli 11 (node:zlib). Each ESM file is a separate download, so its compressed sizes are summed per file. A mesh-only page downloads the core; the mediasoup-client chunk loads on the first move to the SFU.',
    '',
    markdownTable(['part', 'files', 'min', 'min+gzip', 'min+brotli'], rows),
  ];

  const pkg = result.package;
  const base = result.baselines;
  if (pkg && result.react && base) {
    const appAll = [...pkg.appCore, ...pkg.appLazy];
    const packageRows = [
      sizeRow('@switchboard/client ESM as shipped (not minified; dependencies are imports)', [pkg.esm]),
      sizeRow('... in an app: entry + static chunks (socket.io-client included)', pkg.appCore),
      sizeRow('... in an app: lazy chunk (mediasoup-client)', pkg.appLazy),
      sizeRow('... in an app: all', appAll, ''),
      sizeRow('@switchboard/client IIFE (`@switchboard/client/iife`, dependencies included)', [pkg.iife]),
      sizeRow('@switchboard/react ESM as shipped (not minified; peers are imports)', [result.react.esm]),
      sizeRow('... in an app: minified, react and @switchboard/client left out', [result.react.app]),
      sizeRow('baseline: socket.io-client alone', [base.socketIoClient]),
      sizeRow('baseline: mediasoup-client alone', [base.mediasoupClient]),
      sizeRow('baseline: socket.io-client + mediasoup-client in one file', [base.dependencies]),
      sizeRow('baseline: React + ReactDOM (production)', [base.react]),
    ];
    const appCoreGzip = total(pkg.appCore, 'gzip');
    const versusServed = ratio(appCoreGzip, total(result.core, 'gzip'));
    headline.push(
      gzipHeadline(
        '@switchboard/client in an app, entry + static chunks, min+gzip KiB (baseline: socket.io-client alone)',
        appCoreGzip,
        base.socketIoClient.gzip,
      ),
      gzipHeadline(
        '@switchboard/client in an app, lazy chunk, min+gzip KiB (baseline: mediasoup-client alone)',
        total(pkg.appLazy, 'gzip'),
        base.mediasoupClient.gzip,
      ),
      gzipHeadline(
        '@switchboard/client IIFE min+gzip KiB (baseline: its two dependencies in one file)',
        pkg.iife.gzip,
        base.dependencies.gzip,
      ),
      gzipHeadline('@switchboard/react min+gzip KiB, peers left out (baseline: React + ReactDOM)', result.react.app.gzip, base.react.gzip),
    );
    lines.push(
      '',
      '### The npm packages',
      '',
      `As shipped: the files in the tarballs (\`client-sdk/dist\`, \`client-sdk/react/dist\`, built by \`npm run build:sdk\` / \`build:react\`). In an app: the package's ESM bundled by esbuild the way an app's bundler would (minified, ES2020, code splitting, \`process.env.NODE_ENV\` production), so with its dependencies; the compressed sizes of the entry and its static chunks are summed per file. Bytes are minified bytes, except for the two ESM files as shipped, which are not minified (an app's bundler minifies them). The baselines are bundled the same way in the same run: the dependencies alone (the ratio says how much Switchboard's own code adds to what it carries anyway) and React with ReactDOM (what a React app pays before the bindings). The package in an app against the served core (same sources, same minifier): ${versusServed} at min+gzip.`,
      '',
      markdownTable(['part', 'files', 'bytes', 'gzip', 'brotli'], packageRows),
    );
  }
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
