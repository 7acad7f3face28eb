/**
 * The security headers (helmet) and, in a cluster, the Content-Security-Policy the demo page
 * needs there: its SDK follows a `wrong_node` redirect to the node serving its room, another
 * origin, so connect-src names every live node's origins (HTTP and WebSocket forms) beside
 * 'self', and nothing else.
 */
import type { RequestHandler } from 'express';
import helmet from 'helmet';
import type { NodeInfo } from '../cluster/NodeRegistry.js';

/** The other form of each scheme a node is reached by: its API over HTTP(S), its signaling over WS(S). */
const PAIRED_SCHEME: Record<string, string> = { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'http:', 'wss:': 'https:' };

/** The origins of the nodes' url and ws_url, each in its HTTP and WebSocket form, sorted, without duplicates. */
export function nodeOrigins(nodes: readonly NodeInfo[]): string[] {
  const origins = new Set<string>();
  for (const node of nodes) {
    for (const address of [node.url, node.ws_url]) {
      // The registry parsed these already (http(s) or ws(s) URLs); anything else is skipped.
      if (!URL.canParse(address)) continue;
      const url = new URL(address);
      const paired = PAIRED_SCHEME[url.protocol];
      if (!paired) continue;
      origins.add(`${url.protocol}//${url.host}`);
      origins.add(`${paired}//${url.host}`);
    }
  }
  return [...origins].sort();
}

/**
 * helmet's headers. With `liveNodes` (a cluster) its CSP's connect-src is 'self', every live
 * node's origins, read from that list at each response (no Redis round trip; the origins are
 * worked out again only when the list is replaced), and `extraConnectSources` (CSP_CONNECT_SRC:
 * the nodes that may join after a page was served). Without either, helmet's defaults.
 */
export function securityHeaders(liveNodes?: () => readonly NodeInfo[], extraConnectSources: readonly string[] = []): RequestHandler {
  if (!liveNodes && extraConnectSources.length === 0) return helmet();
  let nodes: readonly NodeInfo[] | null = null;
  let sources = ["'self'", ...extraConnectSources].join(' ');
  const connectSources = (): string => {
    const current = liveNodes?.() ?? null;
    if (current !== null && current !== nodes) {
      nodes = current;
      sources = [...new Set(["'self'", ...nodeOrigins(current), ...extraConnectSources])].join(' ');
    }
    return sources;
  };
  return helmet({ contentSecurityPolicy: { directives: { connectSrc: [connectSources] } } });
}
