/**
 * The addresses SFU and TURN media use when SFU_ANNOUNCED_IP / TURN_RELAY_IP are unset, and
 * the boot warning when they are a guess.
 */
import type { NetworkInterfaceInfo } from 'node:os';
import { z } from 'zod';
import type { ParsedSettings } from './sections/index.js';

/** Listen addresses meaning "every interface": no address a browser could be given. */
const UNSPECIFIED = new Set(['0.0.0.0', '::']);

/**
 * The addresses media goes to when SFU_ANNOUNCED_IP / TURN_RELAY_IP are not set and the
 * services listen on every interface: 127.0.0.1 when PUBLIC_URL is this machine (a dev run),
 * else the host's first non-internal IPv4 (announced: PUBLIC_URL's own IP when it is one).
 * `warning` says when that is a guess the operator should confirm.
 */
export function reachableAddresses(
  publicUrl: string,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>,
): { announced: string; local: string; warning: string | null } {
  const host = new URL(publicUrl).hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host.endsWith('.localhost') || /^127\./.test(host) || host === '::1')
    return { announced: '127.0.0.1', local: '127.0.0.1', warning: null };
  const hostAddress = Object.values(interfaces)
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
  const literal = z.ipv4().safeParse(host).success && !UNSPECIFIED.has(host) ? host : undefined;
  if (!hostAddress) {
    return {
      announced: literal ?? '127.0.0.1',
      local: '127.0.0.1',
      warning: `PUBLIC_URL is ${publicUrl} but this host has no non-internal IPv4 address: SFU and TURN media use 127.0.0.1 and reach no other machine; set SFU_ANNOUNCED_IP and TURN_RELAY_IP`,
    };
  }
  const announced = literal ?? hostAddress;
  return {
    announced,
    local: hostAddress,
    warning: `SFU_ANNOUNCED_IP / TURN_RELAY_IP not set: media is announced on ${announced} (relays bind ${hostAddress}); set them to the address browsers reach`,
  };
}

export interface MediaAddresses {
  /** TURN_RELAY_IP, else the listen address, else (listening on every interface) the reachable local address. */
  turnRelayIp: string;
  /** SFU_ANNOUNCED_IP, else (listening on every interface) the reachable address; unset for a specific listen address. */
  sfuAnnouncedIp: string | undefined;
  /** reachableAddresses()'s warning when an enabled SFU or TURN server relies on the guess. */
  bootWarnings: string[];
}

export function mediaAddresses(
  { turn, sfu }: Pick<ParsedSettings, 'turn' | 'sfu'>,
  publicUrl: string,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>,
): MediaAddresses {
  const reachable = reachableAddresses(publicUrl, interfaces);
  const guessing =
    (sfu.enabled && !sfu.announcedIp && UNSPECIFIED.has(sfu.listenIp)) || (turn.enabled && !turn.relayIp && UNSPECIFIED.has(turn.listenIp));
  return {
    turnRelayIp: turn.relayIp ?? (UNSPECIFIED.has(turn.listenIp) ? reachable.local : turn.listenIp),
    sfuAnnouncedIp: sfu.announcedIp ?? (UNSPECIFIED.has(sfu.listenIp) ? reachable.announced : undefined),
    bootWarnings: guessing && reachable.warning ? [reachable.warning] : [],
  };
}
