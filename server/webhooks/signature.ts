/**
 * Webhook signatures. Each request carries
 *   X-Switchboard-Timestamp: <unix seconds when this attempt was sent>
 *   X-Switchboard-Signature: sha256=<hex HMAC-SHA256(webhook secret, "<timestamp>.<raw body>")>
 * The timestamp is inside the signed string, so a captured request cannot be replayed later
 * with a fresh timestamp; receivers refuse timestamps outside a tolerance (5 minutes) and
 * de-duplicate on the event id (X-Switchboard-Delivery, stable across retries).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-switchboard-signature';
export const TIMESTAMP_HEADER = 'x-switchboard-timestamp';
export const EVENT_HEADER = 'x-switchboard-event';
export const DELIVERY_HEADER = 'x-switchboard-delivery';

/** Receivers should refuse requests signed longer ago (or further ahead) than this. */
export const DEFAULT_TOLERANCE_S = 300;

/** The signature header value for a body sent at `timestampS`. */
export function signWebhook(secret: string, timestampS: number, rawBody: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestampS}.${rawBody}`).digest('hex')}`;
}

export type WebhookCheck = { ok: true } | { ok: false; reason: 'malformed' | 'stale' | 'mismatch' };

/**
 * What a receiver does: recompute the signature over the raw body (before any JSON parsing)
 * and compare in constant time; refuse stale timestamps.
 */
export function verifyWebhook(
  secret: string,
  rawBody: string,
  headers: { signature: string | undefined; timestamp: string | undefined },
  options: { nowMs?: number; toleranceS?: number } = {},
): WebhookCheck {
  const { signature, timestamp } = headers;
  if (!signature || !timestamp || !/^\d{1,12}$/.test(timestamp) || !/^sha256=[0-9a-f]{64}$/.test(signature))
    return { ok: false, reason: 'malformed' };
  const nowS = (options.nowMs ?? Date.now()) / 1000;
  if (Math.abs(nowS - Number(timestamp)) > (options.toleranceS ?? DEFAULT_TOLERANCE_S)) return { ok: false, reason: 'stale' };
  const expected = Buffer.from(signWebhook(secret, Number(timestamp), rawBody));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'mismatch' };
  return { ok: true };
}
