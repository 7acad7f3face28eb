#!/usr/bin/env node
// `npm test`: runs the suite in two mocha processes, one after the other, and prints one
// combined closing line, "N passed, N failed".
//
// - the test files that load @roamhq/wrtc (native WebRTC in Node) run in their own process, so
//   a native crash in it cannot end the run of the other tests;
// - every other test file runs in the first process.
//
// A mocha process that dies of a signal fails the run, whatever the other process did: this
// script names the signal and the test in progress, prints the core's backtrace when a core
// file was written (`ulimit -c`) and gdb is installed, and never runs anything again.
// Exit status: 0 when every test passed, 1 when any test failed, 128 + the signal number
// when a mocha process died of a signal. mocha runs with --posix-exit-codes (it exits 1 on
// failures, not with their count), so no number of failing tests can read as a signal.
//
// `npm test -- FILE...` runs the given test files only (split the same way).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
// Its real path: cli.js runs only when it is the script node was given, symlinks resolved.
const mochaCli = fs.realpathSync(path.join(root, 'node_modules/mocha/lib/cli/cli.js'));
const reporter = path.join(root, 'scripts/mocha-reporter.mjs');

/** Test files: the arguments, or every test/**\/*.test.ts. */
function testFiles() {
  const given = process.argv.slice(2);
  if (given.length > 0) return given;
  const found = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const rel = path.posix.join(dir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.test.ts')) found.push(rel);
    }
  };
  walk('test');
  return found;
}

/** True when a test file loads @roamhq/wrtc (itself or through test/helpers/wrtc.ts). */
const usesWrtc = (file) => /@roamhq\/wrtc|helpers\/wrtc(\.js)?['"]/.test(fs.readFileSync(path.resolve(root, file), 'utf8'));

/**
 * Node flags from .mocharc.json's node-option: mocha's own bin would fork a child with them.
 * This script starts mocha's CLI itself with those flags, so the process that runs the tests
 * is our direct child (its signal is ours to see, and mocha's bin does not re-raise it on
 * itself and write a second core file over the first).
 */
function nodeFlags() {
  const rc = path.join(root, '.mocharc.json');
  if (!fs.existsSync(rc)) return [];
  const config = JSON.parse(fs.readFileSync(rc, 'utf8'));
  // mocha adds a config's spec to the files it is given: both processes would run every file.
  if (config.spec)
    throw new Error('.mocharc.json has a "spec": scripts/test.mjs chooses the files of each mocha process, so the config must not');
  const options = config['node-option'] ?? [];
  return (Array.isArray(options) ? options : [options]).map((option) => `--${option}`);
}

/** A core file the process `pid` wrote (core_pattern `core` or `core.%p`) since `since`. */
function findCore(pid, since) {
  for (const name of [`core.${pid}`, 'core']) {
    const file = path.join(root, name);
    try {
      if (fs.statSync(file).mtimeMs >= since) return file;
    } catch {
      // None by that name.
    }
  }
  return null;
}

function printBacktrace(core) {
  const gdb = spawnSync('gdb', ['-batch', '-ex', 'bt 40', process.execPath, core], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (gdb.error) {
    console.log(`(gdb is not installed: no backtrace from ${core})`);
    return;
  }
  // gdb shows frame #0 once as it loads the core, then the backtrace.
  const lines = gdb.stdout.split('\n');
  const frames = lines.slice(lines.findLastIndex((line) => line.startsWith('#0 '))).filter((line) => line.startsWith('#'));
  console.log(`Backtrace of the crashing thread (${core}):`);
  for (const line of frames.slice(0, 40)) console.log(`  ${line}`);
}

function runGroup(group) {
  const stats = path.join(os.tmpdir(), `switchboard-mocha-${process.pid}-${group.name}.json`);
  fs.rmSync(stats, { force: true });
  const args = [...nodeFlags(), mochaCli, '--posix-exit-codes', '--reporter', reporter, ...group.files];
  console.log(`\n[npm test] ${group.name}: ${group.files.length} files in one mocha process (${group.why})`);
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...process.env, SWITCHBOARD_TEST_STATS: stats } });
    child.on('exit', (code, signal) => {
      let counts = null;
      try {
        counts = JSON.parse(fs.readFileSync(stats, 'utf8'));
      } catch {
        // The process died before its reporter started.
      }
      fs.rmSync(stats, { force: true });
      resolve({ ...group, code, signal, counts, pid: child.pid, started });
    });
  });
}

const files = testFiles();
const wrtcFiles = files.filter(usesWrtc);
const groups = [
  { name: 'main', files: files.filter((file) => !wrtcFiles.includes(file)), why: 'every test file that does not load @roamhq/wrtc' },
  {
    name: 'wrtc',
    files: wrtcFiles,
    why: 'the files that load @roamhq/wrtc, on their own: a native crash there cannot end the other tests',
  },
].filter((group) => group.files.length > 0);

// Ctrl-C reaches the mocha processes too (same process group); this script then stops.
let interrupted = false;
process.on('SIGINT', () => (interrupted = true));

const results = [];
for (const group of groups) {
  results.push(await runGroup(group));
  if (interrupted) break;
}

let passed = 0;
let failed = 0;
let signalNumber = 0;
console.log('');
for (const r of results) {
  const c = r.counts ?? { passes: 0, failures: 0, pending: 0 };
  passed += c.passes;
  failed += c.failures;
  const pending = c.pending ? `, ${c.pending} pending` : '';
  if (r.signal) {
    const number = os.constants.signals[r.signal] ?? 0;
    signalNumber ||= number;
    failed += 1; // the process's death counts as one failure: the tests after it never ran
    const during = !r.counts
      ? 'while loading the test files'
      : c.current
        ? `during "${c.current}"`
        : c.ended
          ? 'after its last test'
          : 'between two tests';
    console.log(
      `[npm test] ${r.name}: the mocha process (pid ${r.pid}) DIED OF SIGNAL ${r.signal} (${number}) ${during}; the tests after it did not run. This run fails (counted as 1 failed); nothing is retried.`,
    );
    console.log(`[npm test] ${r.name}: before that, ${c.passes} passed, ${c.failures} failed${pending}`);
    let core = findCore(r.pid, r.started);
    if (core && path.basename(core) === 'core') {
      // Named after its process, so that a later crash does not write over it.
      fs.renameSync(core, `${core}.${r.pid}`);
      core = `${core}.${r.pid}`;
    }
    if (core) printBacktrace(core);
  } else if (!r.counts?.ended || (r.code !== 0 && c.failures === 0)) {
    failed += 1; // mocha stopped on an error of its own (a file that does not load, a bad option), or never ran
    console.log(
      `[npm test] ${r.name}: mocha exited with status ${r.code} before the end of its run (it could not run the files); counted as 1 failed`,
    );
  } else {
    console.log(`[npm test] ${r.name}: ${c.passes} passed, ${c.failures} failed${pending}`);
  }
}
for (const group of groups.slice(results.length)) console.log(`[npm test] ${group.name}: not run (interrupted)`);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = signalNumber ? 128 + signalNumber : failed > 0 || interrupted ? 1 : 0;
