// Bundles the browser SDK with esbuild into dist/sdk/ (ESM and IIFE, minified, with source
// maps) and emits its .d.ts types into dist/sdk/types/ with tsc.
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';
import { existsSync } from 'node:fs';

const entry = 'client-sdk/src/index.ts';
if (!existsSync(entry)) {
  console.log(`build-sdk: ${entry} does not exist yet; nothing to bundle`);
  process.exit(0);
}
const common = {
  entryPoints: [entry],
  bundle: true,
  minify: true,
  sourcemap: true,
  target: ['es2020'],
  platform: 'browser',
  logLevel: 'info',
};
// ESM with code splitting: mediasoup-client becomes a chunk loaded only when a room enters SFU mode.
await build({
  ...common,
  format: 'esm',
  splitting: true,
  outdir: 'dist/sdk/esm',
  entryNames: 'switchboard',
  chunkNames: 'chunks/[name]-[hash]',
});
// IIFE for <script> tags (window.Switchboard): one file, mediasoup-client included.
await build({ ...common, format: 'iife', globalName: 'Switchboard', outfile: 'dist/sdk/switchboard.js' });
if (process.argv.includes('--types')) {
  const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'client-sdk/tsconfig.json'], { stdio: 'inherit' });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
}
