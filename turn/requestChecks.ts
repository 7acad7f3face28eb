/**
 * The attribute checks every request passes after authentication and before its handler runs:
 * which comprehension-required attributes each method understands (RFC 5389 §7.3.1: any
 * other one gets 420 with UNKNOWN-ATTRIBUTES), the value formats, and the Allocate options
 * node-turn cannot read (EVEN-PORT, RESERVATION-TOKEN: RFC 5766 §6.2; REQUESTED-ADDRESS-FAMILY:
 * RFC 6156 §4.2). The order and the codes follow coturn 4.6.1 (checked against it): attributes
 * are read in order and the first bad value stops the walk; unknown attributes met before it
 * answer 420, else that value's error, else (Allocate) a missing REQUESTED-TRANSPORT 400. As
 * in coturn, an attribute of another method (LIFETIME in CreatePermission) counts as unknown.
 */
import { Attr, COMPREHENSION_OPTIONAL, listAttributes, StunMethod, type AttributeRef } from './stunWire.js';

/** An error response to send instead of running the handler. */
export interface RequestRefusal {
  code: number;
  reason: string;
  /** The attribute types for UNKNOWN-ATTRIBUTES (code 420). */
  unknown?: number[];
}

/** What an Allocate asks for beyond node-turn's LIFETIME. */
export interface AllocateRequest {
  /** EVEN-PORT: the relay port must be even. */
  evenPort: boolean;
  /** EVEN-PORT with the R bit: also reserve the next port and hand out a RESERVATION-TOKEN. */
  reservePair: boolean;
  /** RESERVATION-TOKEN: take the port reserved under this token. */
  reservationToken: Buffer | undefined;
}

/** RFC 6156 REQUESTED-ADDRESS-FAMILY values. */
const FAMILY_VALUES: Record<number, 4 | 6> = { 0x01: 4, 0x02: 6 };
const UDP = 17;
const TCP = 6;
/** The most types one UNKNOWN-ATTRIBUTES lists. */
const MAX_UNKNOWN = 32;

/** Understood by every method: the long-term credential attributes, and ICE's PRIORITY (as coturn). */
const CREDENTIAL_ATTRIBUTES: number[] = [Attr.username, Attr.messageIntegrity, Attr.realm, Attr.nonce, Attr.priority];

const UNDERSTOOD: ReadonlyMap<number, ReadonlySet<number>> = new Map<number, ReadonlySet<number>>([
  [StunMethod.binding, new Set(CREDENTIAL_ATTRIBUTES)],
  [
    StunMethod.allocate,
    new Set([
      ...CREDENTIAL_ATTRIBUTES,
      Attr.requestedTransport,
      Attr.lifetime,
      Attr.evenPort,
      Attr.reservationToken,
      Attr.requestedAddressFamily,
      Attr.dontFragment,
    ]),
  ],
  [StunMethod.refresh, new Set([...CREDENTIAL_ATTRIBUTES, Attr.lifetime, Attr.requestedAddressFamily])],
  [StunMethod.createPermission, new Set([...CREDENTIAL_ATTRIBUTES, Attr.xorPeerAddress])],
  [StunMethod.channelBind, new Set([...CREDENTIAL_ATTRIBUTES, Attr.channelNumber, Attr.xorPeerAddress])],
]);

const badRequest = (reason: string): RequestRefusal => ({ code: 400, reason });

function understands(method: number, buf: Buffer, attr: AttributeRef): boolean {
  // RFC 5780 is not supported, but an empty CHANGE-REQUEST (STUNTMAN's probe) asks for nothing.
  if (attr.type === Attr.changeRequest) return method === StunMethod.binding && attr.length === 4 && buf.readUInt32BE(attr.offset) === 0;
  return UNDERSTOOD.get(method)?.has(attr.type) ?? false;
}

/**
 * Walks the attributes in order: understood ones go to `check` (which returns an error to stop
 * the walk), the other comprehension-required ones are collected.
 */
function walk(
  buf: Buffer,
  method: number,
  check: (attr: AttributeRef) => RequestRefusal | null,
): { unknown: number[]; error: RequestRefusal | null } {
  const unknown: number[] = [];
  for (const attr of listAttributes(buf)) {
    if (understands(method, buf, attr)) {
      const error = check(attr);
      if (error) return { unknown, error };
    } else if (attr.type < COMPREHENSION_OPTIONAL && !unknown.includes(attr.type)) {
      unknown.push(attr.type);
      if (unknown.length === MAX_UNKNOWN) break;
    }
  }
  return { unknown, error: null };
}

function unknownAttributes(unknown: number[]): RequestRefusal {
  return { code: 420, reason: 'Unknown Attribute', unknown };
}

/** XOR-PEER-ADDRESS: family 0x01 with 8 bytes or 0x02 with 20. */
function peerAddressValid(buf: Buffer, attr: AttributeRef): boolean {
  const family = attr.length >= 2 ? buf[attr.offset + 1] : undefined;
  return (family === 0x01 && attr.length === 8) || (family === 0x02 && attr.length === 20);
}

function familyOf(buf: Buffer, attr: AttributeRef): 4 | 6 | undefined {
  return attr.length === 4 ? FAMILY_VALUES[buf[attr.offset] as number] : undefined;
}

/**
 * Checks an Allocate for a relay of `relayFamily`. A family other than the relay's is 440
 * (Address Family not Supported), as is a value RFC 6156 does not define.
 */
export function checkAllocate(buf: Buffer, relayFamily: 4 | 6): AllocateRequest | RequestRefusal {
  let transport = false;
  let transportValue = 0;
  let evenPort = false;
  let reservePair = false;
  let family = false;
  let reservationToken: Buffer | undefined;
  const { unknown, error } = walk(buf, StunMethod.allocate, (attr) => {
    switch (attr.type) {
      case Attr.requestedTransport:
        if (attr.length !== 4) return badRequest('Wrong Transport Field');
        if (transport) return badRequest('Duplicate Transport Fields');
        transport = true;
        transportValue = buf[attr.offset] as number;
        // TCP (RFC 6062) is a transport this relay does not offer; any other value is none (400, as coturn).
        if (transportValue === TCP) return { code: 442, reason: 'Unsupported Transport Protocol' };
        return transportValue === UDP ? null : badRequest('Transport field missed or wrong');
      case Attr.lifetime:
        return attr.length === 4 ? null : badRequest('Wrong Lifetime Field');
      case Attr.evenPort:
        if (reservationToken) return badRequest('Even Port and Reservation Token cannot be used together');
        evenPort = true;
        reservePair = attr.length >= 1 && ((buf[attr.offset] as number) & 0x80) !== 0;
        return null;
      case Attr.reservationToken:
        if (attr.length !== 8) return badRequest('Wrong Format of Reservation Token');
        if (family) return badRequest('Address family attribute can not be used with reservation token request');
        if (evenPort) return badRequest('Reservation Token cannot be used in this request with even port');
        if (reservationToken) return badRequest('Reservation Token cannot be used in this request');
        reservationToken = Buffer.from(buf.subarray(attr.offset, attr.offset + 8));
        return null;
      case Attr.requestedAddressFamily: {
        if (reservationToken) return badRequest('Address family attribute can not be used with reservation token request');
        if (family) return badRequest('Extra address family attribute can not be used in the request');
        family = true;
        return familyOf(buf, attr) === relayFamily ? null : { code: 440, reason: 'Address Family not Supported' };
      }
      default:
        return null;
    }
  });
  if (unknown.length > 0) return unknownAttributes(unknown);
  if (error) return error;
  if (transportValue !== UDP) return badRequest('Transport field missed or wrong');
  return { evenPort, reservePair, reservationToken };
}

/**
 * Checks a Binding, Refresh, CreatePermission or ChannelBind request on a relay of
 * `relayFamily`; null when the handler may run. A Refresh naming another family than the
 * allocation's gets 443, as in coturn.
 */
export function checkRequest(buf: Buffer, method: number, relayFamily: 4 | 6): RequestRefusal | null {
  let channel = false;
  const { unknown, error } = walk(buf, method, (attr) => {
    switch (attr.type) {
      case Attr.lifetime:
        return attr.length === 4 ? null : badRequest('Wrong Lifetime Field');
      case Attr.requestedAddressFamily:
        return familyOf(buf, attr) === relayFamily ? null : { code: 443, reason: 'Peer Address Family Mismatch' };
      case Attr.xorPeerAddress:
        return peerAddressValid(buf, attr) ? null : badRequest('Bad Peer Address');
      case Attr.channelNumber:
        if (attr.length !== 4) return badRequest('Wrong Channel Number Field');
        if (channel) return badRequest('Channel number cannot be duplicated in this request');
        channel = true;
        return null;
      default:
        return null;
    }
  });
  if (unknown.length > 0) return unknownAttributes(unknown);
  return error;
}
