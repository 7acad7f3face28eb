// Bundles the browser SDK (ESM and IIFE) with esbuild into dist/sdk/. Later capabilities add entry points.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';

const entry = 'client-sdk/src/index.ts';
if (!existsSync(entry)) {
  console.log(`build-sdk: ${entry} does not exist yet; nothing to bundle`);
  process.exit(0);
}
const common = { entryPoints: [entry], bundle: true, minify: true, sourcemap: true, target: ['es2020'], platform: 'browser', logLevel: 'info' };
await build({ ...common, format: 'esm', outfile: 'dist/sdk/switchboard.esm.js' });
await build({ ...common, format: 'iife', globalName: 'Switchboard', outfile: 'dist/sdk/switchboard.js' });
