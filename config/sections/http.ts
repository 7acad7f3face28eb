/** The HTTP server (REST API, demo page, Socket.IO's transport). */
import { z } from 'zod';
import { bool, int, listOf, port, setting } from '../setting.js';

const isOrigin = (entry: string): boolean => entry === '*' || /^https?:\/\/[^/\s]+$/.test(entry);
/** A CSP source naming a scheme and host: an optional `*.` subdomain wildcard, an optional port or `:*`, no path. */
const isConnectSource = (entry: string): boolean =>
  /^(https?|wss?):\/\/(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:(\d{1,5}|\*))?$/.test(entry);

export const httpSettings = {
  /** Listen address. */
  host: setting('HOST', z.string().min(1).default('0.0.0.0')),
  /** HTTP and Socket.IO port; 0 takes a free one. */
  port: setting('PORT', port.default(8080)),
  /** Public base URL (ws_url in token responses), without a trailing slash; resolved to http://localhost:PORT when unset. */
  publicUrl: setting(
    'PUBLIC_URL',
    z
      .url({ protocol: /^https?$/ })
      // It is every client's ws_url and, in a cluster, this node's registry entry: never a place for credentials.
      .refine((url) => new URL(url).username === '' && new URL(url).password === '', 'must not carry a user name or password')
      .transform((url) => url.replace(/\/+$/, ''))
      .optional(),
  ),
  /**
   * Allowed browser origins; ['*'] allows any. Requests without Origin (non-browser) pass.
   * Empty resolves to ['*'] in development, PUBLIC_URL's origin in production.
   */
  corsOrigins: setting(
    'CORS_ORIGINS',
    listOf(isOrigin, (entry) => `"${entry.slice(0, 100)}" must be an origin like https://app.example.com, or *`).default(() => []),
  ),
  /**
   * Extra connect-src sources of the pages this server serves (the demo), beside 'self' and,
   * in a cluster, the nodes live when the page was served: name the origins of nodes that may
   * join later (e.g. wss://*.rtc.example.com https://*.rtc.example.com), or a page loaded
   * before a node joined cannot follow its room there.
   */
  cspConnectSrc: setting(
    'CSP_CONNECT_SRC',
    listOf(
      isConnectSource,
      (entry) => `"${entry.slice(0, 100)}" must be a scheme and host like wss://*.rtc.example.com or ws://127.0.0.1:* (no path)`,
    ).default(() => []),
  ),
  /** JSON body limit. */
  bodyLimitBytes: setting('HTTP_BODY_LIMIT_BYTES', int(1024, 10 * 1024 * 1024).default(64 * 1024)),
  /** Trust X-Forwarded-* (behind a reverse proxy). */
  trustProxy: setting('TRUST_PROXY', bool.default(false)),
};
