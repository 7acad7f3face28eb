// Builds the TURN relay's batched UDP I/O (turn/native/udp_batch.c, Node-API) with gcc against
// the running Node's own headers, into dist/native/udp_batch.node. No node-gyp: one C file, no
// dependencies. Where it cannot be built (no gcc, no headers, not Linux) it says why and exits 0:
// the relay then uses dgram (TURN_UDP_IO=auto), or refuses to start with TURN_UDP_IO=native.
//
//   node scripts/build-native.mjs            build when the source or the Node version changed
//   node scripts/build-native.mjs --strict   exit 1 when it cannot be built (CI, the Docker build)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = join(root, 'turn/native/udp_batch.c');
const outDir = join(root, 'dist/native');
const output = join(outDir, 'udp_batch.node');
const stamp = `${output}.stamp`;
const strict = process.argv.includes('--strict');

// After this script, dist/native holds a build of the current source or nothing: an older build
// is removed whenever this one cannot be made.
function skip(reason) {
  rmSync(output, { force: true });
  rmSync(stamp, { force: true });
  console.error(`[build-native] not built: ${reason}; the TURN relay will use dgram`);
  process.exit(strict ? 1 : 0);
}

if (process.platform !== 'linux') skip(`needs Linux (recvmmsg), this is ${process.platform}`);
const include = join(dirname(process.execPath), '..', 'include', 'node');
if (!existsSync(join(include, 'node_api.h'))) skip(`Node's headers are not at ${include}`);
const flags = ['-O2', '-std=c11', '-Wall', '-Wextra', '-fPIC', '-shared', `-I${include}`];
const key = createHash('sha256')
  .update(JSON.stringify({ node: process.version, flags }))
  .update(readFileSync(source))
  .digest('hex');
if (existsSync(output) && existsSync(stamp) && readFileSync(stamp, 'utf8') === key) process.exit(0);

mkdirSync(outDir, { recursive: true });
const partial = `${output}.${process.pid}.tmp`;
const gcc = spawnSync('gcc', [...flags, '-o', partial, source], { encoding: 'utf8' });
if (gcc.error) skip(gcc.error.code === 'ENOENT' ? 'gcc is not installed' : `gcc could not run (${gcc.error.message})`);
if (gcc.status !== 0) {
  rmSync(partial, { force: true });
  process.stderr.write(gcc.stderr);
  skip(`gcc failed on turn/native/udp_batch.c (exit ${gcc.status})`);
}
renameSync(partial, output);
writeFileSync(stamp, key);
console.error(`[build-native] built ${output}`);
