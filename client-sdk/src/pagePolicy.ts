/**
 * Connections the page's Content-Security-Policy blocked. A browser reports a WebSocket that
 * connect-src refused like any other failed one (an error event, no reason), so the SDK would
 * only see an unreachable node; the page's `securitypolicyviolation` events say which origins
 * the policy refused, and the SDK names the policy in its error instead.
 */

/** When each origin (ws:, wss:, http:, https:) was last refused by the page's policy, and by which directive. */
const refused = new Map<string, { at: number; directive: string }>();
let listening = false;

/** Starts recording the page's CSP violations (once; nothing outside a browser page). */
export function watchPagePolicy(): void {
  if (listening || typeof document === 'undefined' || typeof document.addEventListener !== 'function') return;
  listening = true;
  document.addEventListener('securitypolicyviolation', (event) => {
    const origin = originOf(event.blockedURI);
    if (origin) refused.set(origin, { at: Date.now(), directive: event.effectiveDirective || event.violatedDirective });
  });
}

/**
 * The directive of the page's policy that refused a connection to `url` (an http(s) or ws(s)
 * URL, either form) since `since`, or null. The violation event may come a task after the
 * socket's error, so this waits briefly for it.
 */
export async function refusedByPagePolicy(url: string, since: number): Promise<string | null> {
  if (!listening) return null;
  const origins = [originOf(url), originOf(pairedForm(url))].filter((origin): origin is string => origin !== null);
  for (let attempt = 0; attempt < 2; attempt++) {
    for (const origin of origins) {
      const seen = refused.get(origin);
      if (seen && seen.at >= since) return seen.directive;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return null;
}

function originOf(url: string): string | null {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return null;
  }
}

const PAIRED: Record<string, string> = { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'http:', 'wss:': 'https:' };

/** The same address in its other scheme (http <-> ws, https <-> wss). */
function pairedForm(url: string): string {
  const scheme = /^[a-z]+:/.exec(url)?.[0] ?? '';
  return PAIRED[scheme] ? `${PAIRED[scheme]}${url.slice(scheme.length)}` : url;
}

/** Errors of connections the page's policy refused (policyRefusal). */
const policyRefusals = new WeakSet<object>();

/** Marks `error` as a refusal by the page's policy and returns it. */
export function policyRefusal<E extends object>(error: E): E {
  policyRefusals.add(error);
  return error;
}

/** Whether the page's Content-Security-Policy refused the connection this error is about. */
export function isPolicyRefusal(error: unknown): boolean {
  return typeof error === 'object' && error !== null && policyRefusals.has(error);
}
