import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths that may hold secrets anywhere in a log object. pino replaces their values, so a
 * token, API secret or TURN password never reaches a log line even if bound by mistake.
 */
export const REDACTED_PATHS = [
  'token',
  '*.token',
  'auth.token',
  'handshake.auth',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  '*.headers.cookie',
  'req.headers["x-api-key"]',
  '*.headers["x-api-key"]',
  'cookie',
  '*.cookie',
  'password',
  '*.password',
  'credential',
  '*.credential',
  'secret',
  '*.secret',
  'api_secret',
  '*.api_secret',
  'signingKeys',
  '*.signingKeys',
  'adminApiKey',
  '*.adminApiKey',
  'admin_key',
  '*.admin_key',
];

/** The root logger; modules take `logger.child({ module })` and add {room, peer} context. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'switchboard' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
