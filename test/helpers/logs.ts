import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../server/logger.js';

/** A real pino logger whose lines the test can read (startServer(env, { logger })). */
export function capturedLogger(level = 'info'): { logger: Logger; lines: string[]; errors: () => string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  // pino's level numbers: 50 is error, 60 fatal.
  const errors = () => lines.filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
  return { logger: createLogger(level, sink), lines, errors };
}
