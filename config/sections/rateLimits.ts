/** Request and event rates, per client address, socket or tenant. */
import { int, setting } from '../setting.js';

const rate = int(1, 1_000_000);

export const rateLimitSettings = {
  /** Socket.IO handshakes per client IP per minute. */
  handshakesPerIpPerMinute: setting('RATE_LIMIT_HANDSHAKES_PER_MIN', rate.default(120)),
  /** Inbound events per socket per second. */
  eventsPerSocketPerSecond: setting('RATE_LIMIT_EVENTS_PER_SEC', rate.default(200)),
  /** Refused events within one minute after which the socket is disconnected. */
  strikesBeforeDisconnect: setting('RATE_LIMIT_STRIKES', rate.default(100)),
  /** /api requests per client IP per minute. */
  httpPerIpPerMinute: setting('RATE_LIMIT_HTTP_PER_MIN', rate.default(600)),
  /** POST /api/v1/tokens and /tokens/revoke per tenant. */
  tokensPerTenantPerMinute: setting('RATE_LIMIT_TOKENS_PER_MIN', rate.default(300)),
  /** Admin API calls per client IP (counted before the key check). */
  adminPerIpPerMinute: setting('RATE_LIMIT_ADMIN_PER_MIN', rate.default(30)),
};
