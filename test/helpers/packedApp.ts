/**
 * Helpers of the package tests (test/sdk/package.test.ts, reactPackage.test.ts): `npm pack` a
 * package of this repository and install its tarball into a fresh app outside it, with the
 * tools' versions this repository installed (so `npm ci` left them in the npm cache).
 */
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The version of a package the repository installed (so `npm ci` left it in the npm cache). */
export function installedVersion(name: string): string {
  return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** The environment for npm and the app's tools: without the variables `npm test` sets for this repository's package. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !/^npm_(package|lifecycle)_|^npm_config_(local_prefix|prefix|global_prefix)$|^INIT_CWD$/.test(key),
    ),
  );
}

/** Runs a command; resolves with its stdout, rejects with its output. */
export function run(command: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env: cleanEnv(), maxBuffer: 64 * 1024 * 1024, timeout: 240_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed (${error.message}):\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Runs a step and prints how long it took. */
export async function timed<T>(what: string, step: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await step();
  } finally {
    console.log(`      ${what}: ${((performance.now() - start) / 1000).toFixed(1)} s`);
  }
}

/** A tarball `npm pack` wrote: its file name (in the destination) and the paths packed. */
export interface PackedTarball {
  filename: string;
  files: string[];
}

/** `npm pack` of the package in packageDir (its prepack builds it) into destination. */
export async function npmPack(packageDir: string, destination: string): Promise<PackedTarball> {
  const packed = await run('npm', ['pack', '--json', '--pack-destination', destination], packageDir);
  const [tarball] = JSON.parse(packed.slice(packed.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  if (!tarball) throw new Error(`npm pack printed no tarball: ${packed}`);
  console.log(`      tarball: ${tarball.filename}, ${statSync(join(destination, tarball.filename)).size} bytes`);
  return { filename: tarball.filename, files: tarball.files.map((f) => f.path) };
}

/** `npm install` in an app folder, from the npm cache where it can. */
export function npmInstall(appDir: string): Promise<string> {
  return run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], appDir);
}

/** A strict tsconfig as a Vite app has one, libraries' declarations checked too (no skipLibCheck). */
export const STRICT_APP_TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'ESNext',
    moduleResolution: 'bundler',
    lib: ['ES2022', 'DOM', 'DOM.Iterable'],
    types: [],
    strict: true,
    noUncheckedIndexedAccess: true,
    noUnusedLocals: true,
    noUnusedParameters: true,
    verbatimModuleSyntax: true,
    isolatedModules: true,
    moduleDetection: 'force',
    skipLibCheck: false,
    noEmit: true,
  },
  include: ['src'],
};
