import type { IceCandidate, SessionDescription, SignalRequest } from '../../protocol/events.js';
import { Limits } from '../../protocol/schemas.js';

/**
 * A hand-written check of the two everyday `signal` shapes, run ahead of zod on the relay's
 * hot path (zod's safeParse was the largest cost of Switchboard's own code per relayed message).
 *
 * It accepts a strict subset of what `signalPayload` accepts: `{to, description}` or
 * `{to, candidate}` as plain objects with no other keys, every value of the type and size the
 * schema allows. It never refuses anything itself: whatever it does not accept goes through zod
 * as before, so error messages and codes do not change. test/signaling/signalShape.test.ts runs a
 * table of payloads through both.
 */
export function isPlainSignal(value: unknown): value is SignalRequest {
  if (!isPlainObject(value)) return false;
  let keys = 0;
  for (const key in value) {
    keys++;
    if (key !== 'to' && key !== 'description' && key !== 'candidate') return false;
  }
  if (keys !== 2) return false;
  const to = value.to;
  if (typeof to !== 'string' || to.length === 0 || to.length > Limits.idLength) return false;
  // Exactly one of the two, by the key count above.
  if (value.candidate !== undefined) return isPlainCandidate(value.candidate);
  return isPlainDescription(value.description);
}

const DESCRIPTION_TYPES = new Set(['offer', 'answer', 'pranswer', 'rollback']);

function isPlainDescription(value: unknown): value is SessionDescription {
  if (!isPlainObject(value)) return false;
  for (const key in value) if (key !== 'type' && key !== 'sdp') return false;
  const { type, sdp } = value;
  if (typeof type !== 'string' || !DESCRIPTION_TYPES.has(type)) return false;
  if (sdp === undefined) return type === 'rollback' && !('sdp' in value);
  return typeof sdp === 'string' && sdp.length <= Limits.sdpBytes && (sdp.length > 0 || type === 'rollback');
}

function isPlainCandidate(value: unknown): value is IceCandidate {
  if (!isPlainObject(value)) return false;
  let candidate = false;
  for (const key in value) {
    const field = value[key];
    switch (key) {
      case 'candidate':
        if (typeof field !== 'string' || field.length > Limits.candidateLength) return false;
        candidate = true;
        break;
      case 'sdpMid':
        if (field !== null && (typeof field !== 'string' || field.length > 64)) return false;
        break;
      case 'sdpMLineIndex':
        if (field !== null && !(Number.isSafeInteger(field) && (field as number) >= 0 && (field as number) <= 1024)) return false;
        break;
      case 'usernameFragment':
        if (field !== null && (typeof field !== 'string' || field.length > 256)) return false;
        break;
      default:
        return false;
    }
  }
  return candidate;
}

/** What JSON.parse makes of an object (socket.io's parser): Object.prototype, no class instances. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}
