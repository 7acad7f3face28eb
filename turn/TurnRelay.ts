/**
 * The bundled TURN relay: node-turn 0.0.6 with what production needs around it. Runs inside
 * the TURN worker thread (see TurnServer.ts), never on the signaling thread.
 *
 * node-turn keeps the protocol's control plane: parsing and answering requests, the
 * long-term-credential flow (401/438/441), 5-tuple dispatch (437), Binding, and its
 * Allocation records. This class owns the UDP socket in front of it and:
 * - authenticates with TURN REST API credentials derived from TURN_SECRET (no static users,
 *   no "none" auth), checks MESSAGE-INTEGRITY in constant time before node-turn sees a
 *   request, and replaces node-turn's Math.random nonces with stateless crypto ones;
 * - replaces the Allocate, Refresh, CreatePermission, ChannelBind and Binding handlers (peer
 *   policy, quotas, lifetime cap, and fixes for node-turn's broken Refresh and unsigned replies),
 *   each first checking the request's attributes as coturn does (requestChecks.ts: 420 with
 *   UNKNOWN-ATTRIBUTES, 400, REQUESTED-ADDRESS-FAMILY), and serves EVEN-PORT's port
 *   reservations (RESERVATION-TOKEN); request methods it does not serve get 400 once
 *   authenticated, so every request gets an answer;
 * - relays data itself: ChannelData (which node-turn drops), Send indications, and peer
 *   datagrams back as ChannelData or Data indications, with O(1) lookups per packet;
 * - serves clients over TCP on the UDP port and over TLS on TURN_TLS_PORT (StreamListener):
 *   the same messages, framed by their length (RFC 5766 §11.5), answered on the connection
 *   they came on; an allocation made over a connection lives no longer than the connection.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import Address from 'node-turn/lib/address.js';
import Allocation from 'node-turn/lib/allocation.js';
import Attribute from 'node-turn/lib/attribute.js';
import CONSTANTS from 'node-turn/lib/constants.js';
import Message from 'node-turn/lib/message.js';
import NodeTurnServer from 'node-turn/lib/server.js';
import Transport from 'node-turn/lib/transport.js';
import { expectedTurnPassword, parseTurnUsername, type TurnSettings } from './credentials.js';
import { NonceIssuer } from './NonceIssuer.js';
import { canonicalIp, interfaceAddresses, parseIp, PeerPolicy } from './PeerPolicy.js';
import { RelayAllocation, type Permission } from './RelayAllocation.js';
import { RelayQuotas } from './RelayQuotas.js';
import { checkAllocate, checkRequest } from './requestChecks.js';
import type { StreamConnection, StreamProtocol } from './StreamConnection.js';
import { bindUdpEndpoint, chooseUdpIo, type UdpEndpoint, type UdpIo } from './udpEndpoint.js';
import { connectionCapKey, StreamListener, type StreamEnd } from './StreamListener.js';
import {
  channelDataHead,
  classOf,
  dataIndicationHead,
  dataIndicationHeadIpv6,
  integrityMatches,
  MAGIC_COOKIE,
  methodOf,
  PADDING,
  parseSendIndication,
  scanRequest,
  SEND_INDICATION,
  STUN_HEADER_BYTES,
  StunClass,
  StunMethod,
  xorIpv4,
} from './stunWire.js';
import type { RefusalReason, TurnCounters } from './TurnCounters.js';
import { WindowCounter } from './WindowCounter.js';

export type RelayLogLevel = 'debug' | 'info' | 'warn' | 'error';
/** Where the relay's log lines go (the worker forwards them to the server's pino logger). */
export type RelayLog = (level: RelayLogLevel, fields: Record<string, unknown>, msg: string) => void;

export interface TurnRelayOptions {
  settings: TurnSettings;
  counters: TurnCounters;
  log: RelayLog;
  /** The port to bind instead of settings.port (a restarted worker keeps its first port). */
  port?: number;
  /** The TLS port to bind instead of settings.tlsPort (likewise). */
  tlsPort?: number;
  /** How often TURN_TLS_CERT and TURN_TLS_KEY are checked for a renewed certificate (default CERTIFICATE_CHECK_MS). */
  certificateCheckMs?: number;
  /**
   * A certificate that does not load does not stop the start: UDP and TCP serve, and TLS opens
   * once the files hold a valid pair. For a restarted worker (its files may be half renewed
   * at that moment); at boot a bad certificate stays an error.
   */
  waitForCertificate?: boolean;
  /**
   * The quotas shared with the other relay workers (TURN_WORKERS); by default this relay's own
   * (one worker).
   */
  quotas?: RelayQuotas;
  /** Whether this relay serves TLS on the TLS port (only one relay worker does); default: TURN over TLS is configured. */
  tls?: boolean;
}

/** The ports a started relay listens on. */
export interface RelayListening {
  /** UDP, and TCP with TURN_TCP. */
  port: number;
  /** TLS; 0 when TURN over TLS is off. */
  tlsPort: number;
}

/**
 * An error naming the setting and the listener that could not start
 * ("TURN_PORT: cannot listen on tcp 127.0.0.1:3478: EADDRINUSE"), keeping the errno code.
 */
export class RelayListenError extends Error {
  constructor(
    readonly transport: 'udp' | 'tcp' | 'tls',
    address: string,
    port: number,
    readonly code: string | undefined,
    reason: string,
  ) {
    const setting = transport === 'tls' ? 'TURN_TLS_PORT' : 'TURN_PORT';
    const hint = code === 'EACCES' && port < 1024 ? ' (a port below 1024 needs root or CAP_NET_BIND_SERVICE)' : '';
    super(
      `${setting}: cannot listen on ${transport} ${address.includes(':') ? `[${address}]` : address}:${port}: ${code ?? reason}${hint}`,
    );
    this.name = 'RelayListenError';
  }
}

/** RFC 5766 §6.2 default allocation lifetime (capped by TURN_MAX_ALLOCATION_LIFETIME_S). */
const DEFAULT_LIFETIME_S = 600;
const NONCE_TTL_S = 3600;
const SOFTWARE = 'switchboard';
/** Random relay ports tried before answering 508 (ranges this small or smaller are scanned whole). */
const PORT_ATTEMPTS = 64;
/** How long the port after an EVEN-PORT (R bit) allocation stays reserved for its token (RFC 5766 §6.2: about 30 s). */
const RESERVATION_MS = 30_000;
/** Request methods with a handler; node-turn would leave the others unanswered. */
const SERVED_METHODS: ReadonlySet<number> = new Set([
  StunMethod.binding,
  StunMethod.allocate,
  StunMethod.refresh,
  StunMethod.createPermission,
  StunMethod.channelBind,
]);
/** Kernel buffers of the listening socket, which carries every client's traffic (the kernel caps it at net.core.rmem_max/wmem_max). */
const LISTEN_BUFFER_BYTES = 4 * 1024 * 1024;
/** Client IPs TURN_TLS_HANDSHAKES_PER_MIN keeps count of in a minute (see WindowCounter). */
const TLS_RATE_MAX_KEYS = 100_000;
const LOG_WINDOW_MS = 10_000;
const LOGS_PER_WINDOW = 10;

const REFUSAL_LOG_LEVEL: Record<RefusalReason, RelayLogLevel> = {
  credentials_invalid: 'warn',
  credentials_expired: 'debug',
  peer_forbidden: 'warn',
  no_permission: 'debug',
  peer_not_permitted: 'debug',
  quota_user: 'warn',
  quota_total: 'warn',
  capacity: 'warn',
  // Port scanners and stray clients cause these all day long on a public TCP port.
  stream_malformed: 'debug',
  stream_idle: 'debug',
  tls_handshake: 'debug',
  stream_limit: 'warn',
  stream_evicted: 'info',
  send_dropped: 'debug',
};

/** node-turn's transport protocol number for TCP (it names only UDP's). */
const PROTOCOL_TCP = 0x06;
/** Attempts at a port free for both UDP and TCP when TURN_PORT is 0. */
const EPHEMERAL_PORT_ATTEMPTS = 8;
/** How often the TLS files are looked at (two stat calls) for a renewed certificate. */
const CERTIFICATE_CHECK_MS = 10_000;

/** Where a client's message came from: a UDP datagram's source, or a TCP or TLS connection. */
interface ClientSource {
  address: string;
  port: number;
  /** The allocation map's key: "ip:port" over UDP, the connection's key over TCP and TLS. */
  key: string;
  stream: StreamConnection | undefined;
}

/** node-turn transport of a request, with where the client's message came from. */
interface ClientTransport extends NodeTurn.Transport {
  clientAddress: string;
  clientPort: number;
  clientKey: string;
  stream: StreamConnection | undefined;
}

/** A request as node-turn parsed it, with its datagram for the checks node-turn cannot do. */
interface ControlMessage extends NodeTurn.Message {
  datagram: Buffer;
}

/** The relay port after an EVEN-PORT allocation's, held for the RESERVATION-TOKEN handed out with it. */
interface Reservation {
  socket: UdpEndpoint;
  timer: ReturnType<typeof setTimeout>;
}

/** The relay socket(s) for a new allocation. */
interface RelaySockets {
  socket: UdpEndpoint;
  /** Bound to the next port for EVEN-PORT with the R bit. */
  reserved: UdpEndpoint | undefined;
}

/** node-turn's Address expands "a:b::c" wrongly; give it all eight IPv6 groups. */
function expandIp(address: string): string {
  if (!address.includes(':')) return address;
  const bytes = parseIp(address);
  if (!bytes) return address;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] as number) << 8) | (bytes[i + 1] as number)).toString(16));
  return groups.join(':');
}

let attributesPatched = false;
const ATTR_UNKNOWN_ATTRIBUTES = 0x000a;
const ATTR_RESERVATION_TOKEN = 0x0022;
/** Attributes written from a Buffer value as they are (node-turn writes a single type, or a string). */
const RAW_ATTRIBUTES = new Set([ATTR_UNKNOWN_ATTRIBUTES, ATTR_RESERVATION_TOKEN]);

/**
 * node-turn's attribute parser throws on every attribute it cannot read: unknown types
 * (REQUESTED-ADDRESS-FAMILY, any 0x7fff), RESERVATION-TOKEN (it reads 8 bytes as one integer),
 * EVEN-PORT (a bit reader its buffer slice lacks) and values of the wrong length, and the throw
 * would drop the whole request unanswered. So such an attribute is kept without a value: the
 * request goes on to authentication, and requestChecks.ts reads it from the datagram and answers
 * (420, 400, or serves it).
 */
function patchAttributes(): void {
  if (attributesPatched) return;
  attributesPatched = true;
  const read = Attribute.prototype.read;
  Attribute.prototype.read = function (this: NodeTurn.Attribute, data: Buffer): void {
    try {
      read.call(this, data);
    } catch {
      // read() set type and length before it threw (the caller guarantees the 4-byte header).
      this.value = undefined;
      this.name = 'unparsed';
    }
  };
  const toBuffer = Attribute.prototype.toBuffer;
  Attribute.prototype.toBuffer = function (this: NodeTurn.Attribute): Buffer {
    if (this.type === null || !RAW_ATTRIBUTES.has(this.type) || !Buffer.isBuffer(this.value)) return toBuffer.call(this);
    const head = Buffer.alloc(4);
    head.writeUInt16BE(this.type, 0);
    head.writeUInt16BE(this.value.length, 2);
    return Buffer.concat([head, this.value, PADDING[this.padding] as Buffer]);
  };
}

/** Adds an attribute whose value is written as given (see RAW_ATTRIBUTES). */
function addRawAttribute(msg: NodeTurn.Message, name: 'unknown-attributes' | 'reservation-token', value: Buffer): void {
  const attribute = new Attribute(msg, name, value);
  attribute.length = value.length;
  attribute.padding = (4 - (value.length & 3)) & 3;
  msg.attributes.push(attribute);
  msg.length += 4 + attribute.length + attribute.padding;
}

export class TurnRelay {
  private readonly settings: TurnSettings;
  private readonly counters: TurnCounters;
  private readonly log: RelayLog;
  private readonly requestedPort: number;
  private readonly requestedTlsPort: number;
  private readonly certificateCheckMs: number;
  private readonly waitForCertificate: boolean;
  /** The TLS listener being opened once a valid certificate appeared (waitForCertificate). */
  private openingTls: Promise<void> | undefined;
  private readonly server: NodeTurn.Server;
  private readonly nonces = new NonceIssuer(NONCE_TTL_S);
  private readonly relayFamily: 4 | 6;
  /** By client key: "ip:port" over UDP (one listening socket, so that is the 5-tuple), "tcp:ip:port" or "tls:ip:port" over a connection. */
  private readonly byClient = new Map<string, RelayAllocation>();
  /** By relay port, for relay-to-relay delivery without a trip through the kernel. */
  private readonly byRelayPort = new Map<number, RelayAllocation>();
  private readonly pendingClients = new Set<string>();
  /** By RESERVATION-TOKEN (hex). */
  private readonly reservations = new Map<string, Reservation>();
  /** Live plus being-created allocations, per user and in total, and connections per client IP, over every relay worker. */
  private readonly quotas: RelayQuotas;
  /** Whether this relay listens for TLS. */
  private readonly servesTls: boolean;
  /** The listening ports of every relay worker (peers may not be sent to them on our addresses). */
  private serverPorts: number[] = [];
  private readonly selfRelayAddresses: Set<string>;
  /** Where relay-to-relay datagrams for another worker's allocation go: TURN_RELAY_IP, or loopback when relays bind every interface. */
  private readonly crossWorkerAddress: string;
  /** crossWorkerAddress when TURN_EXTERNAL_IP is set (what relay-to-relay datagrams from another worker come from). */
  private readonly relayIpBehindNat: string | undefined;
  private readonly logWindows = new Map<string, { start: number; logged: number; suppressed: number }>();
  /** Where node-turn's answers to UDP clients go: the listening socket, counting those a full send buffer drops. */
  private readonly udpReplies: NodeTurn.ReplySocket = {
    send: (buf, port, address, callback) => {
      if (this.socket?.send(buf, port, address, callback) === false) this.refuse('send_dropped', { client: `${address}:${port}` });
    },
  };
  private socket: UdpEndpoint | undefined;
  /** The I/O of every UDP socket of this relay (TURN_UDP_IO). */
  readonly udpIo: UdpIo;
  private localAddress: NodeTurn.Address | undefined;
  private tlsLocalAddress: NodeTurn.Address | undefined;
  private tcpListener: StreamListener | undefined;
  private tlsListener: StreamListener | undefined;
  /** Open TCP and TLS connections of this relay (TURN_MAX_ALLOCATIONS caps them; per client IP, quotas counts over every worker). */
  private readonly connectionCounts: Record<StreamProtocol, number> = { tcp: 0, tls: 0 };
  private policy = new PeerPolicy();
  /** TLS connections per client IP in the current minute (TURN_TLS_HANDSHAKES_PER_MIN). */
  private readonly tlsHandshakes: WindowCounter;
  private boundPort = 0;
  private closed = false;

  constructor(options: TurnRelayOptions) {
    patchAttributes();
    this.settings = options.settings;
    this.counters = options.counters;
    this.log = options.log;
    this.requestedPort = options.port ?? options.settings.port;
    this.requestedTlsPort = options.tlsPort ?? options.settings.tlsPort;
    this.certificateCheckMs = options.certificateCheckMs ?? CERTIFICATE_CHECK_MS;
    this.waitForCertificate = options.waitForCertificate ?? false;
    const s = this.settings;
    this.servesTls = options.tls ?? s.tlsEnabled;
    this.tlsHandshakes = new WindowCounter(s.tlsHandshakesPerIpPerMinute, 60_000, TLS_RATE_MAX_KEYS);
    this.quotas =
      options.quotas ??
      new RelayQuotas(RelayQuotas.create(1, s.maxAllocations), 0, 1, s.maxAllocations, {
        maxAllocations: s.maxAllocations,
        maxAllocationsPerUser: s.maxAllocationsPerUser,
        maxConnectionsPerIp: s.maxConnectionsPerIp,
      });
    this.relayFamily = isIP(s.relayIp) === 6 ? 6 : 4;
    this.udpIo = chooseUdpIo(s.udpIo).io;
    const relayIp = canonicalIp(s.relayIp) ?? s.relayIp;
    // A datagram sent to 0.0.0.0 (or ::) goes out on loopback, and arrives from loopback.
    this.crossWorkerAddress = relayIp === '0.0.0.0' ? '127.0.0.1' : relayIp === '::' ? '::1' : relayIp;
    this.relayIpBehindNat = s.externalIp && canonicalIp(s.externalIp) !== relayIp ? this.crossWorkerAddress : undefined;
    this.selfRelayAddresses = new Set([s.relayIp, s.externalIp].filter((a): a is string => Boolean(a)).map((a) => canonicalIp(a) ?? a));

    // No static users: every lookup derives the REST API password, or nothing when the
    // username is malformed or expired. Writes (node-turn's addUser) are ignored.
    const secret = s.secret;
    const credentials = new Proxy(Object.create(null) as Record<string, string | undefined>, {
      get: (_target, name) => {
        if (typeof name !== 'string') return undefined;
        const expected = expectedTurnPassword(secret, name);
        return expected.ok ? expected.password : undefined;
      },
      set: () => true,
    });
    const maxLifetime = s.maxAllocationLifetimeS;
    this.server = new NodeTurnServer({
      listeningIps: [s.listenIp],
      relayIps: [s.relayIp],
      // node-turn puts this in XOR-RELAYED-ADDRESS; always set it so IPv6 is fully expanded.
      externalIps: expandIp(s.externalIp ?? s.relayIp),
      minPort: s.minPort,
      maxPort: s.maxPort,
      maxAllocateLifetime: maxLifetime,
      defaultAllocatetLifetime: Math.min(DEFAULT_LIFETIME_S, maxLifetime),
      authMech: 'long-term',
      realm: s.realm,
      credentials,
      debugLevel: 'ERROR',
      log: (message) => this.log('error', { err: String(message) }, 'node-turn error'),
    });
    this.server.software = SOFTWARE;
    this.server.authentification.generateNonce = () => this.nonces.issue();
    this.server.authentification.checkNonce = (nonce) => this.nonces.check(nonce);
    this.server.allocate.allocate = (msg, reply) => this.guard(reply, () => this.onAllocate(msg, reply));
    this.server.refresh.refresh = (msg, reply) => this.guard(reply, () => this.onRefresh(msg, reply));
    this.server.createPermission.createPermission = (msg, reply) => this.guard(reply, () => this.onCreatePermission(msg, reply));
    this.server.channelBind.channelBind = (msg, reply) => this.guard(reply, () => this.onChannelBind(msg, reply));
    this.server.removeAllListeners('binding');
    this.server.on('binding', (msg, reply) => this.guard(reply, () => this.onBinding(msg, reply)));
    // Send indications never reach node-turn: onSendIndication relays them with the policy.
    this.server.send.send = () => undefined;
  }

  /** The bound UDP (and TCP) port (0 before start). */
  get port(): number {
    return this.boundPort;
  }

  /**
   * The listening ports of every relay worker, this one's included: on this server's own
   * addresses, peers are relayed to relay ports only, never to these (a relay port range that
   * contains them, as with TURN_PORT=0, would otherwise let a client loop the relay into itself).
   */
  setServerPorts(ports: readonly number[]): void {
    const s = this.settings;
    this.serverPorts = [...new Set([this.boundPort, ...ports].filter((port) => port > 0))];
    this.policy = new PeerPolicy({
      allowedCidrs: s.allowedPeerCidrs,
      serverAddresses: [s.listenIp, s.relayIp, ...(s.externalIp ? [s.externalIp] : []), ...interfaceAddresses()],
      relayAddresses: [...this.selfRelayAddresses],
      relayPorts: [s.minPort, s.maxPort],
      serverPorts: this.serverPorts,
    });
  }

  /**
   * Binds the UDP socket, the TCP listener on the same port (TURN_TCP) and the TLS listener
   * (TURN over TLS on); resolves with the ports. Rejects with a RelayListenError naming the
   * listener that could not start, or an error naming the TLS files (and closes the others).
   */
  async start(): Promise<RelayListening> {
    const s = this.settings;
    try {
      await this.listenUdpAndTcp();
      if (this.servesTls) await this.listenTls();
    } catch (error) {
      await this.close();
      throw error;
    }
    const socket = this.socket;
    if (this.closed || socket === undefined) throw new Error('[TurnRelay:start] closed while starting');
    socket.onMessage((buf, address, port) => this.onClientPacket(buf, address, port));
    const tlsPort = this.tlsListener?.port ?? 0;
    this.log(
      'info',
      {
        listenIp: s.listenIp,
        port: this.boundPort,
        tcp: s.tcp,
        tlsPort: tlsPort || undefined,
        relayIp: s.relayIp,
        externalIp: s.externalIp,
      },
      'turn relay listening',
    );
    return { port: this.boundPort, tlsPort };
  }

  /**
   * Binds UDP on the requested port and, with TURN_TCP, listens for TCP on the same number.
   * With port 0 the number UDP got may be taken for TCP: then both are tried again.
   */
  private async listenUdpAndTcp(): Promise<void> {
    const s = this.settings;
    const family = isIP(s.listenIp) === 6 ? 6 : 4;
    for (let attempt = 1; ; attempt++) {
      let socket: UdpEndpoint;
      try {
        socket = await bindUdpEndpoint(this.udpIo, family, s.listenIp, this.requestedPort, LISTEN_BUFFER_BYTES);
      } catch (error) {
        const { code, message } = error as NodeJS.ErrnoException;
        throw new RelayListenError('udp', s.listenIp, this.requestedPort, code, message);
      }
      this.socket = socket;
      this.boundPort = socket.port;
      this.localAddress = new Address(expandIp(s.listenIp), this.boundPort);
      this.setServerPorts([this.boundPort]);
      // Send errors (unreachable clients, ICMP) are per packet: rate-limited like refusals.
      socket.onError((error) => this.logLimited('socket', 'debug', { err: error.message }, 'turn socket error'));
      if (!s.tcp) return;
      const listener = this.streamListener('tcp', undefined);
      try {
        await listener.listen(this.boundPort);
        this.tcpListener = listener;
        return;
      } catch (error) {
        const { code, message } = error as NodeJS.ErrnoException;
        this.socket = undefined;
        await socket.close();
        if (this.requestedPort !== 0 || code !== 'EADDRINUSE' || attempt >= EPHEMERAL_PORT_ATTEMPTS)
          throw new RelayListenError('tcp', s.listenIp, this.boundPort, code, message);
      }
    }
  }

  /** Reads TURN_TLS_CERT and TURN_TLS_KEY and listens for TLS on the TLS port (see waitForCertificate). */
  private async listenTls(): Promise<void> {
    const s = this.settings;
    let context: SecureContext;
    try {
      context = this.readCertificate();
    } catch (error) {
      // config/ checked the files at boot; they changed since (or a restarted worker met a broken renewal).
      const message = `TURN_TLS_CERT/TURN_TLS_KEY: cannot load the certificate and key: ${(error as Error).message}`;
      if (!this.waitForCertificate) throw new Error(message);
      this.log('error', { cert: s.tlsCert, err: message }, 'turn TLS waits for a certificate that loads; UDP and TCP serve');
      this.watchCertificate();
      return;
    }
    await this.openTlsListener(context);
    this.watchCertificate();
  }

  /** Checks the TLS files every certificateCheckMs (reloadCertificate): a renewed certificate (certbot, cert-manager) is taken up by new connections without a restart. */
  private watchCertificate(): void {
    const s = this.settings;
    const options = { interval: this.certificateCheckMs, persistent: false };
    watchFile(s.tlsCert as string, options, this.reloadCertificate);
    watchFile(s.tlsKey as string, options, this.reloadCertificate);
  }

  private async openTlsListener(context: SecureContext): Promise<void> {
    const s = this.settings;
    const listener = this.streamListener('tls', context);
    try {
      await listener.listen(this.requestedTlsPort);
    } catch (error) {
      const { code, message } = error as NodeJS.ErrnoException;
      throw new RelayListenError('tls', s.listenIp, this.requestedTlsPort, code, message);
    }
    if (this.closed) {
      await listener.close();
      return;
    }
    this.tlsListener = listener;
    this.tlsLocalAddress = new Address(expandIp(s.listenIp), listener.port);
  }

  private readCertificate(): SecureContext {
    return createSecureContext({ cert: readFileSync(this.settings.tlsCert as string), key: readFileSync(this.settings.tlsKey as string) });
  }

  /**
   * One of the TLS files changed: new connections get the new certificate. A pair that does
   * not load (a key renewed before its certificate, a half-written file) keeps the old one
   * until the next change.
   */
  private readonly reloadCertificate = (): void => {
    if (this.closed || this.openingTls) return;
    if (!this.tlsListener) {
      // Waiting for a certificate (waitForCertificate): TLS opens with the first pair that loads.
      let context: SecureContext;
      try {
        context = this.readCertificate();
      } catch {
        return;
      }
      this.openingTls = this.openTlsListener(context).then(
        () => this.log('info', { tlsPort: this.tlsListener?.port }, 'turn TLS listening: the certificate loads now'),
        (error: Error) => this.log('error', { err: error.message }, 'turn TLS cannot listen'),
      );
      void this.openingTls.finally(() => (this.openingTls = undefined));
      return;
    }
    try {
      this.tlsListener.setSecureContext(this.readCertificate());
      this.log('info', { cert: this.settings.tlsCert }, 'turn TLS certificate reloaded');
    } catch (error) {
      this.log(
        'warn',
        { cert: this.settings.tlsCert, err: (error as Error).message },
        'turn TLS certificate not reloaded; the previous one stays',
      );
    }
  };

  private streamListener(protocol: StreamProtocol, secureContext: SecureContext | undefined): StreamListener {
    return new StreamListener({
      protocol,
      host: this.settings.listenIp,
      secureContext,
      idleTimeoutMs: this.settings.tcpIdleTimeoutMs,
      admit: (address) => this.admitConnection(protocol, address),
      onFrame: (connection, frame) => this.onStreamFrame(connection, frame),
      onEnd: (address, end, connection) => this.onConnectionEnd(protocol, address, end, connection),
      onListenerError: (error) =>
        this.logLimited('listener', 'warn', { transport: protocol, err: error.message }, 'turn listener error; still listening'),
    });
  }

  /** Closes every allocation, connection and listener. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const allocation of [...this.byClient.values()]) this.release(allocation, 'shutdown');
    for (const token of [...this.reservations.keys()]) this.dropReservation(token);
    if (this.settings.tlsCert && this.settings.tlsKey) {
      unwatchFile(this.settings.tlsCert, this.reloadCertificate);
      unwatchFile(this.settings.tlsKey, this.reloadCertificate);
    }
    await Promise.all([this.tcpListener?.close(), this.tlsListener?.close()]);
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await socket.close();
  }

  // --- client side: the listening socket ------------------------------------------------

  private onClientPacket(buf: Buffer, address: string, port: number): void {
    // Nothing a client sends may take the worker down: a throw here drops the datagram.
    try {
      if (buf.length < 4) return;
      const first = buf[0] as number;
      // RFC 5766 §11: the first two bits tell STUN (00) from ChannelData (01).
      if (first >= 0x40) {
        if (first >= 0x80) return;
        const allocation = this.byClient.get(`${address}:${port}`);
        if (allocation !== undefined) this.onChannelData(buf, allocation);
        return;
      }
      // RFC 5389 §7.3: not a STUN message (or a truncated one); nothing to answer.
      if (buf.length < STUN_HEADER_BYTES || buf.readUInt32BE(4) !== MAGIC_COOKIE || STUN_HEADER_BYTES + buf.readUInt16BE(2) > buf.length)
        return;
      const type = buf.readUInt16BE(0);
      if (type === SEND_INDICATION) {
        const allocation = this.byClient.get(`${address}:${port}`);
        if (allocation !== undefined) this.onSendIndication(buf, allocation);
      }
      // A request may be answered later (Allocate binds a port first): it keeps a copy, not
      // the socket's buffer (with native I/O the next batch overwrites it).
      else this.onControl(Buffer.from(buf), { address, port, key: `${address}:${port}`, stream: undefined }, type);
    } catch (error) {
      this.logLimited('dropped', 'debug', { client: `${address}:${port}`, err: (error as Error).message }, 'turn datagram dropped');
    }
  }

  /**
   * A message from a TCP or TLS client: StreamFramer cut it out of the stream (a STUN message
   * with the magic cookie and its full length, or ChannelData with its padding).
   */
  private onStreamFrame(connection: StreamConnection, frame: Buffer): void {
    try {
      if ((frame[0] as number) >= 0x40) {
        const allocation = this.byClient.get(connection.key);
        if (allocation !== undefined) this.onChannelData(frame, allocation);
        return;
      }
      const type = frame.readUInt16BE(0);
      if (type === SEND_INDICATION) {
        const allocation = this.byClient.get(connection.key);
        if (allocation !== undefined) this.onSendIndication(frame, allocation);
      } else
        this.onControl(
          frame,
          { address: connection.remoteAddress, port: connection.remotePort, key: connection.key, stream: connection },
          type,
        );
    } catch (error) {
      this.logLimited('dropped', 'debug', { client: connection.key, err: (error as Error).message }, 'turn message dropped');
    }
  }

  private onChannelData(buf: Buffer, allocation: RelayAllocation): void {
    const length = buf.readUInt16BE(2);
    if (length > buf.length - 4) return;
    const channel = allocation.channels.get(buf.readUInt16BE(0));
    const now = Date.now();
    if (channel === undefined || channel.expiresAt < now || channel.permission.expiresAt < now) {
      this.refuse('no_permission', { client: allocation.clientKey, user: allocation.userId });
      return;
    }
    this.relayToPeer(allocation, buf, 4, length, channel.address, channel.port, channel.permission);
  }

  private onSendIndication(buf: Buffer, allocation: RelayAllocation): void {
    const send = parseSendIndication(buf);
    if (send === null) return;
    const permission = allocation.permissions.get(send.address);
    if (permission === undefined || permission.expiresAt < Date.now()) {
      // Permissions only exist for peers the policy allowed; classify the miss for the counters.
      const verdict = this.policy.check(send.address, send.port);
      this.refuse(verdict.allowed ? 'no_permission' : 'peer_forbidden', {
        client: allocation.clientKey,
        user: allocation.userId,
        peer: send.address,
      });
      return;
    }
    if (permission.relayPortsOnly && !this.policy.isRelayPort(send.port)) {
      this.refuse('peer_forbidden', {
        client: allocation.clientKey,
        user: allocation.userId,
        peer: `${send.address}:${send.port}`,
        class: 'server',
      });
      return;
    }
    this.relayToPeer(allocation, buf, send.dataOffset, send.dataLength, send.address, send.port, permission);
  }

  private relayToPeer(
    allocation: RelayAllocation,
    buf: Buffer,
    offset: number,
    length: number,
    address: string,
    port: number,
    permission: Permission,
  ): void {
    if (permission.selfRelay) {
      // Relay to relay on this server: hand the datagram to the other allocation directly,
      // as if it came from our relayed address (no kernel round trip, no NAT hairpin).
      const target = this.byRelayPort.get(port);
      if (target !== undefined) {
        this.counters.relayed(length);
        this.deliverToClient(target, buf.subarray(offset, offset + length), allocation.advertisedAddress, allocation.relayPort);
        return;
      }
      // Another relay worker's allocation: through the kernel to the relay address itself (not
      // TURN_EXTERNAL_IP, which a 1:1 NAT may not hairpin); that worker sees it come from there.
      address = this.crossWorkerAddress;
    }
    if (allocation.relaySocket.sendRange(buf, offset, length, port, address)) this.counters.relayed(length);
    else this.refuse('send_dropped', { client: allocation.clientKey, user: allocation.userId, peer: address });
  }

  // --- peer side: the relay sockets -----------------------------------------------------

  private onPeerPacket(allocation: RelayAllocation, data: Buffer, address: string, port: number): void {
    try {
      // From another relay worker's allocation (relayToPeer): its clients know it by TURN_EXTERNAL_IP.
      if (address === this.relayIpBehindNat && port >= this.settings.minPort && port <= this.settings.maxPort)
        address = allocation.advertisedAddress;
      this.deliverToClient(allocation, data, address, port);
    } catch (error) {
      this.logLimited('dropped', 'debug', { client: allocation.clientKey, err: (error as Error).message }, 'turn datagram dropped');
    }
  }

  private deliverToClient(allocation: RelayAllocation, data: Buffer, address: string, port: number): void {
    const socket = this.socket;
    const permission = allocation.permissions.get(address);
    const now = Date.now();
    if (socket === undefined || permission === undefined || permission.expiresAt < now) {
      this.refuse('peer_not_permitted', { client: allocation.clientKey, user: allocation.userId, peer: address });
      return;
    }
    const channel = permission.channelsByPort.get(port);
    const stream = allocation.stream;
    // A connection may queue the write: it gets a copy, not a native batch's slot (see udpEndpoint.ts).
    if (stream !== undefined && this.udpIo === 'native') data = Buffer.from(data);
    if (channel !== undefined && channel.expiresAt >= now) {
      const head = channelDataHead(channel.number, data.length);
      if (stream === undefined) {
        if (!socket.send([head, data], allocation.clientPort, allocation.clientAddress)) return this.sendDropped(allocation, address);
      }
      // RFC 5766 §11.5: over a stream, ChannelData is padded to a multiple of 4 bytes.
      else if (!stream.writeData([head, data, PADDING[(4 - (data.length & 3)) & 3] as Buffer])) return this.dropForSlowClient(allocation);
      this.counters.relayed(data.length);
      return;
    }
    const head =
      allocation.family === 4
        ? dataIndicationHead(permission.addressBytes, port, data.length)
        : dataIndicationHeadIpv6(permission.addressBytes, port, data.length);
    const message = [head, data, PADDING[(4 - (data.length & 3)) & 3] as Buffer];
    if (stream === undefined) {
      if (!socket.send(message, allocation.clientPort, allocation.clientAddress)) return this.sendDropped(allocation, address);
    } else if (!stream.writeData(message)) return this.dropForSlowClient(allocation);
    this.counters.relayed(data.length);
  }

  /** The listening socket's send buffer was full (native I/O): the datagram is lost, as on a full link. */
  private sendDropped(allocation: RelayAllocation, peer: string): void {
    this.refuse('send_dropped', { client: allocation.clientKey, user: allocation.userId, peer });
  }

  /** Relayed data towards a TCP or TLS client that does not read fast enough is dropped, as a full UDP path would. */
  private dropForSlowClient(allocation: RelayAllocation): void {
    this.logLimited(
      'slow_client',
      'debug',
      { client: allocation.clientKey, user: allocation.userId },
      'turn data dropped: client reads too slowly',
    );
  }

  // --- TCP and TLS connections -------------------------------------------------------------

  /** The connection caps: TURN_MAX_CONNECTIONS_PER_IP per client IP, TURN_MAX_ALLOCATIONS in all (no connection holds more than one allocation). */
  private admitConnection(protocol: StreamProtocol, address: string): boolean {
    if (this.closed) return false;
    const s = this.settings;
    const total = this.connectionCounts.tcp + this.connectionCounts.tls;
    const ipKey = connectionCapKey(address);
    if (protocol === 'tls' && !this.tlsHandshakes.take(ipKey)) {
      this.refuse('stream_limit', { client: address, transport: protocol, limit: 'tls_handshakes_per_ip' });
      return false;
    }
    if (!this.quotas.admitConnection(ipKey)) {
      this.refuse('stream_limit', { client: address, transport: protocol, limit: 'per_ip' });
      return false;
    }
    if (total >= s.maxAllocations) {
      // Every slot taken: the oldest connection holding no allocation makes room (it is counted
      // out once its socket closed, a moment later), so connections that only keep themselves
      // alive cannot lock out clients that come to allocate.
      const idle = [this.tcpListener?.oldestIdle(), this.tlsListener?.oldestIdle()]
        .filter((candidate) => candidate !== undefined)
        .sort((a, b) => a.admittedAt - b.admittedAt)[0];
      if (!idle) {
        this.quotas.releaseConnection(ipKey);
        this.refuse('stream_limit', { client: address, transport: protocol, limit: 'total' });
        return false;
      }
      idle.evict();
    }
    this.connectionCounts[protocol] += 1;
    this.counters.setConnections(protocol, this.connectionCounts[protocol]);
    return true;
  }

  /** A connection admitted by admitConnection is gone: its allocation goes with it. */
  private onConnectionEnd(protocol: StreamProtocol, address: string, end: StreamEnd, connection: StreamConnection | undefined): void {
    this.quotas.releaseConnection(connectionCapKey(address));
    this.connectionCounts[protocol] -= 1;
    this.counters.setConnections(protocol, this.connectionCounts[protocol]);
    const client = connection?.key ?? `${protocol}:${address}`;
    if (end === 'not_turn' || end === 'oversized') this.refuse('stream_malformed', { client, why: end });
    else if (end === 'idle') this.refuse('stream_idle', { client });
    else if (end === 'evicted') this.refuse('stream_evicted', { client });
    else if (end === 'tls_handshake') this.refuse('tls_handshake', { client });
    const allocation = connection ? this.byClient.get(connection.key) : undefined;
    if (allocation !== undefined) this.release(allocation, 'connection closed');
  }

  // --- control plane: node-turn with our handlers ---------------------------------------

  private onControl(buf: Buffer, source: ClientSource, type: number): void {
    // Only requests reach node-turn: it would answer stray responses with 437.
    if (classOf(type) !== StunClass.request) return;
    const method = methodOf(type);
    if (method !== StunMethod.binding && !this.authenticate(buf, source, method)) return;
    const msg = new Message(this.server, this.clientTransport(source)) as ControlMessage;
    if (!msg.read(buf)) return;
    msg.datagram = buf;
    if (SERVED_METHODS.has(method)) this.server.emit('message', msg);
    else this.onUnservedMethod(msg);
  }

  /**
   * A request method without a handler here (Send or Data as a request, RFC 6062's TCP methods,
   * anything unknown): node-turn would never answer it. As coturn: authenticate, then 400.
   */
  private onUnservedMethod(msg: ControlMessage): void {
    if (msg.getAttribute('fingerprint') === false) return;
    this.server.authentification.auth(msg, (error, reply) => {
      if (!error) rejectSigned(reply, 400, 'Bad Request');
    });
  }

  /**
   * A node-turn transport for a client message: its answers go back through `socket.send`,
   * the UDP socket or the client's connection (StreamConnection has the same send()).
   */
  private clientTransport(source: ClientSource): ClientTransport {
    const stream = source.stream;
    const transport = new Transport(
      stream ? PROTOCOL_TCP : CONSTANTS.TRANSPORT.PROTOCOL.UDP,
      new Address(expandIp(source.address), source.port),
      (stream?.protocol === 'tls' ? this.tlsLocalAddress : this.localAddress) as NodeTurn.Address,
      stream ?? this.udpReplies,
    ) as ClientTransport;
    transport.clientAddress = source.address;
    transport.clientPort = source.port;
    transport.clientKey = source.key;
    transport.stream = stream;
    // node-turn files allocations under the 5-tuple; a connection's key tells TCP and TLS from UDP.
    if (stream) transport.get5Tuple = () => stream.key;
    return transport;
  }

  /**
   * The checks node-turn cannot do: classify credential failures, and verify
   * MESSAGE-INTEGRITY in constant time (node-turn compares hex strings with !==). Returns
   * false when the request was answered here. Requests without credentials, and those with
   * malformed or expired ones, go on to node-turn, which answers 401 with REALM and NONCE
   * (the credentials proxy has no password for them).
   */
  private authenticate(buf: Buffer, source: ClientSource, method: number): boolean {
    const scan = scanRequest(buf);
    if (scan.integrityOffset < 0 || scan.usernameOffset < 0) return true;
    const username = buf.toString('utf8', scan.usernameOffset, scan.usernameOffset + scan.usernameLength);
    const expected = expectedTurnPassword(this.settings.secret, username);
    if (!expected.ok) {
      this.refuse(expected.reason === 'expired' ? 'credentials_expired' : 'credentials_invalid', { client: source.key });
      return true;
    }
    const key = createHash('md5').update(`${username}:${this.settings.realm}:${expected.password}`).digest();
    if (integrityMatches(buf, scan.integrityOffset, key)) return true;
    this.refuse('credentials_invalid', { client: source.key, user: expected.userId });
    const request = new Message(this.server, this.clientTransport(source));
    request.class = CONSTANTS.CLASS.REQUEST;
    request.method = method;
    request.transactionID = buf.toString('hex', 8, 20);
    request.useFingerprint = scan.fingerprint;
    const reply = request.reply();
    reply.addAttribute('realm', this.settings.realm);
    reply.addAttribute('nonce', this.nonces.issue());
    reply.reject(401, 'Unauthorized');
    return false;
  }

  /** Runs a handler; a throw becomes 500 instead of a silently dropped request. */
  private guard(reply: NodeTurn.Message, handler: () => void): void {
    try {
      handler();
    } catch (error) {
      this.log('error', { err: (error as Error).message }, 'turn handler failed');
      reply.reject(500, 'Server Error');
    }
  }

  private allocationOf(msg: NodeTurn.Message): RelayAllocation | undefined {
    return this.byClient.get((msg.transport as ClientTransport).clientKey);
  }

  private onAllocate(msg: NodeTurn.Message, reply: NodeTurn.Message): void {
    const transport = msg.transport as ClientTransport;
    const clientKey = transport.clientKey;
    const existing = this.byClient.get(clientKey);
    if (existing) {
      // node-turn never detects retransmissions (it checks msg.allocation, unset for Allocate).
      if (existing.transactionId === msg.transactionID) return this.replyAllocated(reply, existing);
      return rejectSigned(reply, 437, 'Allocation Mismatch');
    }
    if (this.pendingClients.has(clientKey)) return reply.discard();
    const request = checkAllocate((msg as ControlMessage).datagram, this.relayFamily);
    if ('code' in request) return rejectSigned(reply, request.code, request.reason, request.unknown);
    const user = msg.user as NodeTurn.User;
    const userId = parseTurnUsername(user.username)?.userId as string;
    const verdict = this.quotas.reserveAllocation(userId);
    if (verdict !== 'ok') {
      this.refuse(verdict, { client: clientKey, user: userId });
      return rejectSigned(reply, 486, 'Allocation Quota Reached');
    }
    let sockets: Promise<RelaySockets>;
    if (request.reservationToken) {
      // A token names a port this relay worker holds (another worker's tokens are unknown here).
      const reserved = this.takeReservation(request.reservationToken.toString('hex'));
      if (!reserved) {
        this.quotas.releaseAllocation(userId);
        // RFC 5766 §6.2 says 508; coturn answers 404, and the contract holds both servers to it.
        return rejectSigned(reply, 404, 'Reservation Token not found');
      }
      sockets = Promise.resolve({ socket: reserved, reserved: undefined });
    } else sockets = this.bindRelaySockets(request.evenPort, request.reservePair);
    const lifetime = this.lifetimeFor(msg.getAttribute('lifetime') as number | undefined);

    this.pendingClients.add(clientKey);
    const unreserve = (): void => {
      this.pendingClients.delete(clientKey);
      this.quotas.releaseAllocation(userId);
    };
    sockets.then(
      ({ socket, reserved }) => {
        // Shut down, or the client's connection closed while its relay port was being bound.
        if (this.closed || transport.stream?.isClosed) {
          socket.close();
          reserved?.close();
          unreserve();
          return;
        }
        this.pendingClients.delete(clientKey);
        try {
          const token = reserved ? this.reserve(reserved) : undefined;
          const allocation = this.createAllocation(msg, socket, userId, lifetime, token);
          this.replyAllocated(reply, allocation);
        } catch (error) {
          this.log('error', { err: (error as Error).message }, 'turn allocation failed');
          socket.close();
          reserved?.close();
          this.quotas.releaseAllocation(userId);
          reply.reject(500, 'Server Error');
        }
      },
      () => {
        unreserve();
        this.refuse('capacity', { client: clientKey, user: userId });
        rejectSigned(reply, 508, 'Insufficient Capacity');
      },
    );
  }

  private createAllocation(
    msg: NodeTurn.Message,
    socket: UdpEndpoint,
    userId: string,
    lifetime: number,
    reservationToken: Buffer | undefined,
  ): RelayAllocation {
    const transport = msg.transport as ClientTransport;
    // node-turn's Allocation registers the 5-tuple (for its dispatch and 441 checks) and
    // computes XOR-RELAYED-ADDRESS. Its relay listener and expiry timer are replaced: the
    // listener re-parses every peer datagram and the timer never closes the socket.
    const nodeAllocation = new Allocation(msg, [nodeTurnSocket(socket)], lifetime);
    clearTimeout(nodeAllocation.timer);
    const relayPort = socket.port;
    const allocation = new RelayAllocation({
      clientKey: transport.clientKey,
      clientAddress: transport.clientAddress,
      clientPort: transport.clientPort,
      stream: transport.stream,
      userId,
      username: (msg.user as NodeTurn.User).username,
      transactionId: msg.transactionID,
      relaySocket: socket,
      relayPort,
      advertisedAddress: canonicalIp(this.settings.externalIp ?? this.settings.relayIp) as string,
      family: this.relayFamily,
      nodeAllocation,
      reservationToken,
    });
    allocation.setLifetime(lifetime, () => this.release(allocation, 'expired'));
    socket.onMessage((data, address, port) => this.onPeerPacket(allocation, data, address, port));
    socket.onError((error) =>
      this.logLimited('socket', 'debug', { client: allocation.clientKey, err: error.message }, 'turn relay socket error'),
    );
    this.byClient.set(allocation.clientKey, allocation);
    this.byRelayPort.set(relayPort, allocation);
    allocation.stream?.setHoldsAllocation(true);
    this.counters.setActiveAllocations(this.byClient.size);
    this.log('debug', { client: allocation.clientKey, user: userId, relayPort, lifetime }, 'turn allocation created');
    return allocation;
  }

  private replyAllocated(reply: NodeTurn.Message, allocation: RelayAllocation): void {
    reply.addAttribute('xor-relayed-address', allocation.nodeAllocation.relayedTransportAddress);
    reply.addAttribute('lifetime', allocation.lifetimeS);
    reply.addAttribute('xor-mapped-address', allocation.nodeAllocation.mappedAddress);
    if (allocation.reservationToken) addRawAttribute(reply, 'reservation-token', allocation.reservationToken);
    reply.addAttribute('software', SOFTWARE);
    reply.addAttribute('message-integrity');
    reply.resolve();
  }

  /** Holds `socket` (the port after an EVEN-PORT allocation's) for RESERVATION_MS; returns its token. */
  private reserve(socket: UdpEndpoint): Buffer {
    const token = randomBytes(8);
    const key = token.toString('hex');
    socket.onError((error) => this.logLimited('socket', 'debug', { err: error.message }, 'turn reserved socket error'));
    this.reservations.set(key, { socket, timer: setTimeout(() => this.dropReservation(key), RESERVATION_MS) });
    return token;
  }

  /** The reserved socket for a token, now the caller's; undefined when unknown, expired or spent. */
  private takeReservation(key: string): UdpEndpoint | undefined {
    const reservation = this.reservations.get(key);
    if (!reservation) return undefined;
    this.reservations.delete(key);
    clearTimeout(reservation.timer);
    return reservation.socket;
  }

  private dropReservation(key: string): void {
    this.takeReservation(key)?.close();
  }

  private onBinding(msg: NodeTurn.Message, reply: NodeTurn.Message): void {
    const refusal = checkRequest((msg as ControlMessage).datagram, StunMethod.binding, this.relayFamily);
    if (refusal) return rejectSigned(reply, refusal.code, refusal.reason, refusal.unknown);
    reply.addAttribute('xor-mapped-address', msg.transport.src);
    reply.resolve();
  }

  /** node-turn's Refresh reads settings that do not exist and deletes the allocation 1 ms later. */
  private onRefresh(msg: NodeTurn.Message, reply: NodeTurn.Message): void {
    const allocation = this.allocationOf(msg);
    if (!allocation) return rejectSigned(reply, 437, 'Allocation Mismatch');
    const refusal = checkRequest((msg as ControlMessage).datagram, StunMethod.refresh, allocation.family);
    if (refusal) return rejectSigned(reply, refusal.code, refusal.reason, refusal.unknown);
    const requested = msg.getAttribute('lifetime') as number | undefined;
    let lifetime = 0;
    if (requested === 0) this.release(allocation, 'deallocated');
    else {
      lifetime = this.lifetimeFor(requested);
      allocation.setLifetime(lifetime, () => this.release(allocation, 'expired'));
    }
    reply.addAttribute('lifetime', lifetime);
    reply.addAttribute('software', SOFTWARE);
    reply.addAttribute('message-integrity');
    reply.resolve();
  }

  private onCreatePermission(msg: NodeTurn.Message, reply: NodeTurn.Message): void {
    const allocation = this.allocationOf(msg);
    if (!allocation) return rejectSigned(reply, 437, 'Allocation Mismatch');
    const refusal = checkRequest((msg as ControlMessage).datagram, StunMethod.createPermission, allocation.family);
    if (refusal) return rejectSigned(reply, refusal.code, refusal.reason, refusal.unknown);
    const peers = msg.getAttributes('xor-peer-address') as NodeTurn.Address[];
    if (peers.length === 0) return rejectSigned(reply, 400, 'Bad Request');
    const granted: Array<{ address: string; relayPortsOnly: boolean }> = [];
    // RFC 5766 §9.2: all or nothing.
    for (const peer of peers) {
      const address = canonicalIp(peer.address);
      if (address === null) return rejectSigned(reply, 400, 'Bad Request');
      const verdict = this.policy.check(address);
      if (!verdict.allowed) {
        this.refuse('peer_forbidden', { client: allocation.clientKey, user: allocation.userId, peer: address, class: verdict.reason });
        return rejectSigned(reply, 403, 'Forbidden');
      }
      if ((isIP(address) === 6 ? 6 : 4) !== allocation.family) return rejectSigned(reply, 443, 'Peer Address Family Mismatch');
      granted.push({ address, relayPortsOnly: verdict.relayPortsOnly });
    }
    const now = Date.now();
    for (const { address, relayPortsOnly } of granted) {
      if (!this.permit(allocation, address, relayPortsOnly, now)) return rejectSigned(reply, 508, 'Insufficient Capacity');
    }
    reply.addAttribute('software', SOFTWARE);
    reply.addAttribute('message-integrity');
    reply.resolve();
  }

  private onChannelBind(msg: NodeTurn.Message, reply: NodeTurn.Message): void {
    const allocation = this.allocationOf(msg);
    if (!allocation) return rejectSigned(reply, 437, 'Allocation Mismatch');
    const refusal = checkRequest((msg as ControlMessage).datagram, StunMethod.channelBind, allocation.family);
    if (refusal) return rejectSigned(reply, refusal.code, refusal.reason, refusal.unknown);
    const number = msg.getAttribute('channel-number') as number | undefined;
    const peer = msg.getAttribute('xor-peer-address') as NodeTurn.Address | undefined;
    if (number === undefined || !peer || number < 0x4000 || number > 0x7ffe) return rejectSigned(reply, 400, 'Bad Request');
    const address = canonicalIp(peer.address);
    if (address === null) return rejectSigned(reply, 400, 'Bad Request');
    const verdict = this.policy.check(address, peer.port);
    if (!verdict.allowed) {
      this.refuse('peer_forbidden', {
        client: allocation.clientKey,
        user: allocation.userId,
        peer: `${address}:${peer.port}`,
        class: verdict.reason,
      });
      return rejectSigned(reply, 403, 'Forbidden');
    }
    if ((isIP(address) === 6 ? 6 : 4) !== allocation.family) return rejectSigned(reply, 443, 'Peer Address Family Mismatch');
    const now = Date.now();
    const permission = this.permit(allocation, address, verdict.relayPortsOnly, now);
    if (!permission) return rejectSigned(reply, 508, 'Insufficient Capacity');
    if (!allocation.bindChannel(number, address, peer.port, permission, now)) return rejectSigned(reply, 400, 'Bad Request');
    reply.addAttribute('software', SOFTWARE);
    reply.addAttribute('message-integrity');
    reply.resolve();
  }

  private permit(allocation: RelayAllocation, address: string, relayPortsOnly: boolean, now: number): Permission | null {
    const bytes = allocation.family === 4 ? xorIpv4(address) : Buffer.from(parseIp(address) as Uint8Array);
    return allocation.permit(address, bytes, relayPortsOnly, this.selfRelayAddresses.has(address), now);
  }

  /** RFC 5766 §6.2/§7.2: min(requested, max), but never below the default. */
  private lifetimeFor(requested: number | undefined): number {
    const max = this.settings.maxAllocationLifetimeS;
    const fallback = Math.min(DEFAULT_LIFETIME_S, max);
    if (requested === undefined) return fallback;
    return Math.max(fallback, Math.min(requested, max));
  }

  /**
   * Binds a free relay port: any, an even one (EVEN-PORT), or an even one whose successor is
   * free too (the R bit: `reserved` holds that one).
   */
  private async bindRelaySockets(evenPort: boolean, reservePair: boolean): Promise<RelaySockets> {
    const { minPort, maxPort } = this.settings;
    const first = evenPort ? minPort + (minPort & 1) : minPort;
    const last = reservePair ? maxPort - 1 : maxPort;
    const step = evenPort ? 2 : 1;
    const count = Math.floor((last - first) / step) + 1;
    if (count <= 0) throw new Error('no relay port in range');
    const scanAll = count <= PORT_ATTEMPTS * 4;
    const offset = randomInt(count);
    const attempts = scanAll ? count : PORT_ATTEMPTS;
    for (let i = 0; i < attempts; i++) {
      const port = first + step * (scanAll ? (offset + i) % count : randomInt(count));
      if (!this.relayPortFree(port) || (reservePair && !this.relayPortFree(port + 1))) continue;
      const socket = await this.bindRelayPort(port);
      if (!socket) continue;
      if (!reservePair) return { socket, reserved: undefined };
      const reserved = await this.bindRelayPort(port + 1);
      if (reserved) return { socket, reserved };
      socket.close();
    }
    throw new Error('no free relay port');
  }

  private relayPortFree(port: number): boolean {
    return !this.serverPorts.includes(port) && !this.byRelayPort.has(port);
  }

  /** The bound socket, or undefined when the port is taken. */
  private async bindRelayPort(port: number): Promise<UdpEndpoint | undefined> {
    try {
      return await bindUdpEndpoint(this.udpIo, this.relayFamily, this.settings.relayIp, port);
    } catch {
      return undefined;
    }
  }

  private release(allocation: RelayAllocation, why: string): void {
    if (this.byClient.get(allocation.clientKey) !== allocation) return;
    this.byClient.delete(allocation.clientKey);
    this.byRelayPort.delete(allocation.relayPort);
    delete this.server.allocations[allocation.nodeAllocation.fiveTuple];
    allocation.close();
    allocation.stream?.setHoldsAllocation(false);
    // A reservation lives no longer than the allocation it was made with: every client's
    // reserved ports stay within its allocation quota.
    if (allocation.reservationToken) this.dropReservation(allocation.reservationToken.toString('hex'));
    this.quotas.releaseAllocation(allocation.userId);
    this.counters.setActiveAllocations(this.byClient.size);
    this.log('debug', { client: allocation.clientKey, user: allocation.userId, why }, 'turn allocation closed');
  }

  /** Counts a refusal and logs it (rate-limited per reason). Never logs credentials: user id and addresses only. */
  private refuse(reason: RefusalReason, fields: Record<string, unknown>): void {
    this.counters.refused(reason);
    this.logLimited(reason, REFUSAL_LOG_LEVEL[reason], { reason, ...fields }, 'turn refusal');
  }

  /**
   * Logs at most LOGS_PER_WINDOW lines per key per window, then one line with the count of
   * those skipped: a flood of bad packets must not become a flood of log lines (each one is
   * a message to the signaling thread).
   */
  private logLimited(key: string, level: RelayLogLevel, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    let window = this.logWindows.get(key);
    if (!window || now - window.start >= LOG_WINDOW_MS) {
      if (window && window.suppressed > 0)
        this.log(level, { key, suppressed: window.suppressed }, 'turn log lines suppressed in the last window');
      window = { start: now, logged: 0, suppressed: 0 };
      this.logWindows.set(key, window);
    }
    if (window.logged < LOGS_PER_WINDOW) {
      window.logged += 1;
      this.log(level, fields, msg);
    } else window.suppressed += 1;
  }
}

/**
 * What node-turn's Allocation uses of its relay sockets: address() for XOR-RELAYED-ADDRESS and
 * on('message') for its own relaying, which this class does instead (onPeerPacket).
 */
function nodeTurnSocket(socket: UdpEndpoint): NodeTurn.RelaySocket {
  const facade: NodeTurn.RelaySocket = { address: () => socket.address(), on: () => facade };
  return facade;
}

/**
 * An error response, carrying MESSAGE-INTEGRITY when the request was authenticated (node-turn's
 * reject() never signs) and UNKNOWN-ATTRIBUTES for a 420.
 */
function rejectSigned(reply: NodeTurn.Message, code: number, reason: string, unknown?: number[]): void {
  reply.class = CONSTANTS.CLASS.ERROR;
  reply.addAttribute('error-code', { code, reason });
  if (unknown && unknown.length > 0) {
    const types = Buffer.alloc(unknown.length * 2);
    unknown.forEach((type, i) => types.writeUInt16BE(type, i * 2));
    addRawAttribute(reply, 'unknown-attributes', types);
  }
  // node-turn leaves MESSAGE-INTEGRITY out when the reply has no user (Binding, failed auth).
  reply.addAttribute('message-integrity');
  const buf = reply.toBuffer();
  reply.transport.socket.send(buf, reply.transport.dst.port, reply.transport.dst.address);
}
