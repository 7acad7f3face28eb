/**
 * STUN long-term-credential nonces (RFC 5389 §10.2) from crypto, without state: a nonce is
 * its expiry, random bytes and an HMAC over both under a per-process key. node-turn 0.0.6
 * draws nonces from Math.random and keeps every one in a map with a one-hour timer, which an
 * unauthenticated flood of Allocate requests turns into unbounded memory.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const EXPIRY_HEX = 8;
const RANDOM_HEX = 16;
const MAC_BYTES = 16;
const NONCE_LENGTH = EXPIRY_HEX + RANDOM_HEX + MAC_BYTES * 2;

export class NonceIssuer {
  private readonly key = randomBytes(32);

  /** @param ttlS how long a nonce is accepted; afterwards the client gets 438 Stale Nonce and retries. */
  constructor(private readonly ttlS: number) {}

  /** A fresh nonce (56 hex characters, well under STUN's 128). */
  issue(nowMs: number = Date.now()): string {
    const body =
      Math.floor(nowMs / 1000 + this.ttlS)
        .toString(16)
        .padStart(EXPIRY_HEX, '0') + randomBytes(RANDOM_HEX / 2).toString('hex');
    return body + this.mac(body).toString('hex');
  }

  /** Whether `nonce` was issued by this issuer and has not expired. */
  check(nonce: string, nowMs: number = Date.now()): boolean {
    if (nonce.length !== NONCE_LENGTH || !/^[0-9a-f]+$/.test(nonce)) return false;
    const body = nonce.slice(0, EXPIRY_HEX + RANDOM_HEX);
    if (!timingSafeEqual(this.mac(body), Buffer.from(nonce.slice(EXPIRY_HEX + RANDOM_HEX), 'hex'))) return false;
    return parseInt(body.slice(0, EXPIRY_HEX), 16) * 1000 > nowMs;
  }

  private mac(body: string): Buffer {
    return createHmac('sha256', this.key).update(body).digest().subarray(0, MAC_BYTES);
  }
}
