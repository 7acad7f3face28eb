/** Entry point of `npm start`: load config (exit 1 listing every problem), serve, shut down on signals. */
import { ConfigError, loadConfig, type Config } from '../config/index.js';
import { createServer } from './index.js';

let config: Readonly<Config>;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`switchboard: ${error.problems.length} configuration problem(s):\n`);
    for (const problem of error.problems) process.stderr.write(`  - ${problem}\n`);
    process.exit(1);
  }
  throw error;
}

for (const notice of config.bootNotices) process.stdout.write(`${notice}\n`);
const server = await createServer(config).catch((error: unknown) => {
  // A boot failure (a port in use, a store or Redis that cannot be reached) in one line.
  process.stderr.write(`switchboard: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
process.stdout.write(`switchboard listening on ${config.http.host}:${server.port} (public URL ${config.http.publicUrl})\n`);
process.stdout.write(`switchboard metrics at ${server.metricsUrl}\n`);

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  server.logger.info({ signal }, 'signal received');
  server.close().then(
    () => process.exit(0),
    (error: unknown) => {
      server.logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
