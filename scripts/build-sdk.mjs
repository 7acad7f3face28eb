// Builds the browser SDK with esbuild.
//
//   node scripts/build-sdk.mjs             dist/sdk/: what the server serves under /sdk/ (the demo's
//                                          SDK): the package's ESM (client-sdk/dist/switchboard.js)
//                                          bundled with its dependencies as an app's bundler would
//                                          (mediasoup-client in a lazy chunk), and an IIFE
//                                          (window.Switchboard), minified (a page loads it by URL)
//   node scripts/build-sdk.mjs --types     also the .d.ts files of the sources into dist/sdk/types/ (tsc)
//   node scripts/build-sdk.mjs --package   only client-sdk/dist/: the npm package @switchboard/client
//                                          (`npm run build` in client-sdk/, and its prepack)
//   node scripts/build-sdk.mjs --react     only client-sdk/react/dist/: the npm package @switchboard/react
//                                          (its types import @switchboard/client's: built first if missing)
//   node scripts/build-sdk.mjs --all       all three (the root `npm run build`)
//
// The package's ESM leaves its dependencies (socket.io-client, mediasoup-client) to the app's
// bundler: mediasoup-client stays a dynamic import, so the app's bundler makes it a lazy chunk.
// Its types are one self-contained .d.ts (the protocol/ types it uses inlined) and its source
// maps name no path outside the package: nothing in it refers to this repository.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
process.chdir(root);

const entry = 'client-sdk/src/index.ts';
if (!existsSync(entry)) {
  console.log(`build-sdk: ${entry} does not exist yet; nothing to bundle`);
  process.exit(0);
}
const args = process.argv.slice(2);
const all = args.includes('--all');
const served = !(args.includes('--package') || args.includes('--react')) || all;
const packaged = args.includes('--package') || all;
const reactPackaged = args.includes('--react') || all;
const servedTypes = args.includes('--types') || args.includes('--all');

const common = {
  entryPoints: [entry],
  bundle: true,
  sourcemap: true,
  target: ['es2020'],
  platform: 'browser',
  logLevel: 'info',
  absWorkingDir: root,
};

/** The package's ESM: for bundlers, not minified (the app's bundler minifies); dependencies stay imports. */
const packageEsm = 'client-sdk/dist/switchboard.js';

if (packaged) await buildPackage();
if (served) {
  // What the server serves is the package's own ESM, bundled with its dependencies: the demo runs the packaged SDK.
  if (!packaged) await buildPackageEsm();
  const minified = { ...common, entryPoints: [packageEsm], minify: true };
  // ESM with code splitting: mediasoup-client becomes a chunk loaded only when a room enters SFU mode.
  await build({
    ...minified,
    format: 'esm',
    splitting: true,
    outdir: 'dist/sdk/esm',
    entryNames: 'switchboard',
    chunkNames: 'chunks/[name]-[hash]',
  });
  // IIFE for <script> tags (window.Switchboard): one file, mediasoup-client included.
  await build({ ...minified, format: 'iife', globalName: 'Switchboard', outfile: 'dist/sdk/switchboard.js' });
  if (servedTypes) tsc(['-p', 'client-sdk/tsconfig.json']);
}

if (reactPackaged) await buildReactPackage();

async function buildPackage() {
  const pkgDir = 'client-sdk';
  const outDir = join(pkgDir, 'dist');
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const dependencies = Object.keys(pkg.dependencies ?? {});
  rmSync(outDir, { recursive: true, force: true });

  await buildPackageEsm();
  // IIFE for <script> tags: one minified file, dependencies included.
  const iife = join(outDir, 'switchboard.iife.js');
  await build({ ...common, minify: true, format: 'iife', globalName: 'Switchboard', outfile: iife });
  packageSourceMap(`${iife}.map`);

  writeFileSync(join(outDir, 'switchboard.d.ts'), await bundledDeclarations(dependencies));
  console.log(`build-sdk: ${pkg.name}@${pkg.version} built into ${outDir}/`);
}

/** Only the package's ESM (packageEsm), dependencies left as imports. */
async function buildPackageEsm() {
  const pkg = JSON.parse(readFileSync('client-sdk/package.json', 'utf8'));
  await build({ ...common, format: 'esm', external: Object.keys(pkg.dependencies ?? {}), outfile: packageEsm });
  packageSourceMap(`${packageEsm}.map`);
}

/**
 * @switchboard/react: ESM with React and @switchboard/client left as imports (peer
 * dependencies), and one .d.ts that imports only them. Its types are bundled against the
 * core's built .d.ts, installed as a package in a temporary node_modules, so they refer to
 * '@switchboard/client' instead of inlining the core's types.
 */
async function buildReactPackage() {
  const pkgDir = 'client-sdk/react';
  const outDir = join(pkgDir, 'dist');
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const peers = Object.keys(pkg.peerDependencies ?? {});
  const coreTypes = 'client-sdk/dist/switchboard.d.ts';
  if (!existsSync(coreTypes)) await buildPackage();
  rmSync(outDir, { recursive: true, force: true });

  const esm = join(outDir, 'switchboard-react.js');
  await build({
    ...common,
    entryPoints: [join(pkgDir, 'src', 'index.ts')],
    format: 'esm',
    jsx: 'automatic',
    external: [...peers, ...peers.map((name) => `${name}/*`), 'react-dom', 'react-dom/*'],
    outfile: esm,
  });
  packageSourceMap(`${esm}.map`);

  const { generateDtsBundle } = await import('dts-bundle-generator');
  const { default: ts } = await import('typescript');
  const temp = mkdtempSync(join(tmpdir(), 'switchboard-react-types-'));
  try {
    const declDir = join(temp, 'decl');
    tsc(['-p', join(pkgDir, 'tsconfig.json'), '--outDir', declDir]);
    const index = join(declDir, 'client-sdk', 'react', 'src', 'index.d.ts');
    // The peers as an app has them: the core's published types, React's from this repository.
    const core = join(temp, 'node_modules', '@switchboard', 'client');
    mkdirSync(core, { recursive: true });
    copyFileSync(coreTypes, join(core, 'index.d.ts'));
    writeFileSync(join(core, 'package.json'), JSON.stringify({ name: '@switchboard/client', types: 'index.d.ts' }));
    mkdirSync(join(temp, 'node_modules', '@types'));
    symlinkSync(join(root, 'node_modules', '@types', 'react'), join(temp, 'node_modules', '@types', 'react'), 'dir');
    const text = bundleDts({ ts, generateDtsBundle, index, temp, allowed: peers });
    writeFileSync(join(outDir, 'switchboard-react.d.ts'), `/** Types of @switchboard/react. */\n${text}`);
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
  console.log(`build-sdk: ${pkg.name}@${pkg.version} built into ${outDir}/`);
}

/**
 * Inlines every local type reachable from the declarations at `index` into one .d.ts text,
 * compiled against the DOM and ES libraries only (the repository's @types, node and mocha, are
 * not a package's). Fails when the result imports anything but the `allowed` packages.
 */
function bundleDts({ ts, generateDtsBundle, index, temp, allowed }) {
  const project = join(temp, 'tsconfig.json');
  const compilerOptions = {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2022', 'DOM', 'DOM.Iterable'],
    strict: true,
    skipLibCheck: true,
    types: [],
  };
  writeFileSync(project, JSON.stringify({ compilerOptions, files: [index] }));
  const [text] = generateDtsBundle([{ filePath: index, output: { exportReferencedTypes: false, noBanner: true } }], {
    preferredConfigPath: project,
  });
  const foreign = moduleReferences(ts, text).filter(
    (specifier) => !allowed.some((dep) => specifier === dep || specifier.startsWith(`${dep}/`)),
  );
  if (foreign.length > 0)
    throw new Error(`build-sdk: the bundled .d.ts imports ${foreign.join(', ')}, which the package does not depend on`);
  return text;
}

/**
 * One .d.ts for the package: tsc emits the declarations of the sources (with the protocol/ files
 * they import), then dts-bundle-generator inlines every local type into one file. Fails when the
 * result imports anything but the package's own dependencies.
 */
async function bundledDeclarations(dependencies) {
  const { generateDtsBundle } = await import('dts-bundle-generator');
  const { default: ts } = await import('typescript');
  const temp = mkdtempSync(join(tmpdir(), 'switchboard-sdk-types-'));
  try {
    const declDir = join(temp, 'decl');
    tsc(['-p', 'client-sdk/tsconfig.json', '--outDir', declDir]);
    const index = join(declDir, 'client-sdk', 'src', 'index.d.ts');
    return `/** Types of @switchboard/client. */\n${bundleDts({ ts, generateDtsBundle, index, temp, allowed: dependencies })}`;
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

/** Every module a declaration file refers to: imports, re-exports, import("...") types, /// <reference types>. */
function moduleReferences(ts, text) {
  const source = ts.createSourceFile('bundle.d.ts', text, ts.ScriptTarget.Latest, true);
  const found = source.typeReferenceDirectives.map((directive) => directive.fileName);
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier))
      found.push(node.moduleSpecifier.text);
    if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal))
      found.push(node.argument.literal.text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/**
 * esbuild names each source by its path from the map (../../protocol/errors.ts,
 * ../../node_modules/...): outside the package once published. The sources become their paths in
 * this repository under a switchboard:/// root; their text stays in sourcesContent.
 */
function packageSourceMap(mapFile) {
  const map = JSON.parse(readFileSync(mapFile, 'utf8'));
  const mapDir = resolve(mapFile, '..');
  map.sources = map.sources.map((source) => relative(root, resolve(mapDir, source)).split('\\').join('/'));
  map.sourceRoot = 'switchboard:///';
  writeFileSync(mapFile, JSON.stringify(map));
}

function tsc(tscArgs) {
  const result = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), ...tscArgs], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
