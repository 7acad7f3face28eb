#!/usr/bin/env node
/**
 * `switchboard`: the operator's CLI, the package's bin (node dist/cli/cli.js, npx switchboard).
 * Exit codes: 0 ok, 1 the server answered an error, 2 bad usage, 3 unreachable (CliError.ts).
 */
import { runCli } from './runCli.js';

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
