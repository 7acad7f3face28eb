/** Webhook delivery: where receivers may live (the SSRF guard). */
import { bool, cidrList, setting } from '../setting.js';

export const webhookSettings = {
  /** Private/loopback ranges webhook receivers may live in (SSRF allow-list). */
  allowedCidrs: setting('WEBHOOK_ALLOWED_CIDRS', cidrList),
  /** Turns the SSRF guard off for private ranges. */
  allowPrivateNetworks: setting('WEBHOOK_ALLOW_PRIVATE_NETWORKS', bool.default(false)),
};
