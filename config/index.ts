/**
 * The only reader of process.env. Loads the environment (optionally over a JSON/YAML file
 * named by CONFIG_FILE), validates everything at once, and returns a frozen, typed Config.
 * Bad config throws ConfigError with one line per problem; main.ts prints them and exits.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Grants } from '../protocol/events.js';
import { partialGrants } from '../protocol/schemas.js';
import { DEFAULT_ROLES, NO_GRANTS } from './roles.js';

export { DEFAULT_ROLES, NO_GRANTS } from './roles.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface SigningKey {
  kid: string;
  secret: string;
}

/** A tenant declared in the config file (deployments without a database). */
export interface DeclaredTenant {
  tenant_id: string;
  name?: string;
  api_key: string;
  /** sha256 hex of the API secret; or give api_secret and it is hashed at load. */
  api_secret_sha256: string;
  limits?: Partial<TenantLimitsConfig>;
}

export interface TenantLimitsConfig {
  max_rooms: number;
  max_participants: number;
  mesh_threshold: number;
  max_token_lifetime_s: number;
  auto_create_rooms: boolean;
}

export interface Config {
  nodeEnv: 'development' | 'production' | 'test';
  http: {
    host: string;
    port: number;
    publicUrl: string;
    /** Allowed browser origins; ['*'] allows any. Requests without Origin (non-browser) pass. */
    corsOrigins: string[];
    bodyLimitBytes: number;
    trustProxy: boolean;
  };
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  auth: {
    signingKeys: SigningKey[];
    issuer: string;
    audience: string;
    clockToleranceS: number;
    maxTokenLifetimeS: number;
    adminApiKey: string | undefined;
    anonymousRooms: boolean;
    /** The tenant whose rooms and limits anonymous participants use. */
    anonymousTenant: string;
    devTokenRoute: boolean;
  };
  roles: Record<string, Grants>;
  tenants: DeclaredTenant[];
  defaultTenantLimits: TenantLimitsConfig;
  store: { mongodbUri: string | undefined };
  /** This server's name in session records (NODE_ID; a random id per boot when unset). */
  nodeId: string;
  sessions: {
    /** How often open sessions' last_seen_at is refreshed. */
    heartbeatMs: number;
    /** An open session not seen for this long is taken as lost (three heartbeats). */
    staleAfterMs: number;
  };
  rooms: {
    meshThreshold: number;
    demoteDelayMs: number;
    maxParticipants: number;
    emptyTimeoutMs: number;
  };
  socket: {
    pingIntervalMs: number;
    pingTimeoutMs: number;
    maxPayloadBytes: number;
    /** An Engine.IO session that has not completed the Socket.IO CONNECT (auth) within this is closed. */
    connectTimeoutMs: number;
    /** Engine.IO sessions one address may hold before their Socket.IO CONNECT; more are refused (403). */
    pendingSessionsPerIp: number;
  };
  rateLimits: {
    handshakesPerIpPerMinute: number;
    eventsPerSocketPerSecond: number;
    /** Refused events within one minute after which the socket is disconnected. */
    strikesBeforeDisconnect: number;
    httpPerIpPerMinute: number;
    /** POST /api/v1/tokens and /tokens/revoke per tenant. */
    tokensPerTenantPerMinute: number;
    /** Admin API calls per client IP (counted before the key check). */
    adminPerIpPerMinute: number;
  };
  webhooks: {
    /** Private/loopback ranges webhook receivers may live in (SSRF allow-list). */
    allowedCidrs: string[];
    allowPrivateNetworks: boolean;
  };
  turn: {
    enabled: boolean;
    port: number;
    listenIp: string;
    relayIp: string;
    externalIp: string | undefined;
    realm: string;
    secret: string;
    credentialTtlS: number;
    allowedPeerCidrs: string[];
    minPort: number;
    maxPort: number;
    maxAllocationsPerUser: number;
    maxAllocations: number;
    maxAllocationLifetimeS: number;
    /** Extra TURN URLs (e.g. an external coturn sharing TURN_SECRET) handed to clients. */
    externalUrls: string[];
    stunUrls: string[];
  };
  sfu: {
    enabled: boolean;
    workers: number;
    listenIp: string;
    announcedIp: string | undefined;
    minPort: number;
    maxPort: number;
    maxIncomingBitrate: number;
    sctpSendBufferBytes: number;
    maxProducersPerPeer: number;
    maxTransportsPerPeer: number;
    /** Consumers (media and data) one peer may hold. */
    maxConsumersPerPeer: number;
    /** A transport whose ICE/DTLS has not connected this long after the client's connect is reported (log, client error). */
    transportConnectTimeoutMs: number;
    /** SFU transports one tenant may hold on this node, so no tenant can take every port. */
    maxTransportsPerTenant: number;
    /** How long clients keep the old topology while migrating at most (the SDK's migrationTimeoutMs); a demoted room's router stays this long plus 5 s. */
    migrationTimeoutMs: number;
  };
  shutdownTimeoutMs: number;
  /** Time between /ready turning false and closing connections (lets load balancers drain). */
  shutdownDrainMs: number;
  /** Lines main.ts prints at boot (dev-mode generated credentials). Empty in production. */
  bootNotices: string[];
  /** Settings the server guessed or could not know, logged as warnings at boot (production too). */
  bootWarnings: string[];
}

type Env = Record<string, string | undefined>;

const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes' || v === 'on');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const port = int(0, 65535);
const list = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean));
const ipv4or6 = z.string().refine((v) => z.ipv4().safeParse(v).success || z.ipv6().safeParse(v).success, 'must be an IP address');
const cidr = z.string().refine((v) => z.cidrv4().safeParse(v).success || z.cidrv6().safeParse(v).success, 'must be a CIDR like 127.0.0.0/8');

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: port.default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  CORS_ORIGINS: list.optional(),
  HTTP_BODY_LIMIT_BYTES: int(1024, 10 * 1024 * 1024).default(64 * 1024),
  TRUST_PROXY: bool.default(false),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SIGNING_KEYS: z.string().optional(),
  TOKEN_ISSUER: z.string().min(1).default('switchboard'),
  TOKEN_AUDIENCE: z.string().min(1).default('switchboard'),
  TOKEN_CLOCK_TOLERANCE_S: int(0, 300).default(30),
  TOKEN_MAX_LIFETIME_S: int(60, 30 * 24 * 3600).default(24 * 3600),
  ADMIN_API_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  ANONYMOUS_ROOMS: bool.default(false),
  ANONYMOUS_TENANT: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a tenant id (letters, digits, _ and -)').default('dev'),
  DEV_TOKEN_ROUTE: bool.optional(),
  MONGODB_URI: z.string().regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://').optional(),
  NODE_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, _, . or -').optional(),
  SESSION_HEARTBEAT_MS: int(1000, 3_600_000).default(30_000),
  MESH_THRESHOLD: int(1, 1000).default(4),
  DEMOTE_DELAY_MS: int(0, 3_600_000).default(10_000),
  MAX_PARTICIPANTS: int(1, 10_000).default(100),
  ROOM_EMPTY_TIMEOUT_MS: int(0, 24 * 3_600_000).default(20_000),
  SOCKET_PING_INTERVAL_MS: int(100, 600_000).default(25_000),
  SOCKET_PING_TIMEOUT_MS: int(100, 600_000).default(20_000),
  SOCKET_MAX_PAYLOAD_BYTES: int(16 * 1024, 16 * 1024 * 1024).default(512 * 1024),
  SOCKET_CONNECT_TIMEOUT_MS: int(100, 60_000).default(5_000),
  SOCKET_PENDING_SESSIONS_PER_IP: int(1, 100_000).default(50),
  RATE_LIMIT_HANDSHAKES_PER_MIN: int(1, 1_000_000).default(120),
  RATE_LIMIT_EVENTS_PER_SEC: int(1, 1_000_000).default(200),
  RATE_LIMIT_STRIKES: int(1, 1_000_000).default(100),
  RATE_LIMIT_HTTP_PER_MIN: int(1, 1_000_000).default(600),
  RATE_LIMIT_TOKENS_PER_MIN: int(1, 1_000_000).default(300),
  RATE_LIMIT_ADMIN_PER_MIN: int(1, 1_000_000).default(30),
  WEBHOOK_ALLOWED_CIDRS: z.union([z.string(), z.array(z.string())]).optional(),
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: bool.default(false),
  TURN_ENABLED: bool.default(true),
  TURN_PORT: port.default(3478),
  TURN_LISTEN_IP: ipv4or6.default('0.0.0.0'),
  TURN_RELAY_IP: ipv4or6.optional(),
  TURN_EXTERNAL_IP: ipv4or6.optional(),
  TURN_REALM: z.string().min(1).default('switchboard'),
  TURN_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  TURN_CREDENTIAL_TTL_S: int(60, 7 * 24 * 3600).default(6 * 3600),
  TURN_ALLOWED_PEER_CIDRS: z.union([z.string(), z.array(z.string())]).optional(),
  TURN_MIN_PORT: port.default(49152),
  TURN_MAX_PORT: port.default(65535),
  TURN_MAX_ALLOCATIONS_PER_USER: int(1, 10_000).default(10),
  TURN_MAX_ALLOCATIONS: int(1, 1_000_000).default(1000),
  TURN_MAX_ALLOCATION_LIFETIME_S: int(60, 24 * 3600).default(3600),
  TURN_EXTERNAL_URLS: list.optional(),
  STUN_URLS: list.optional(),
  SFU_ENABLED: bool.default(true),
  SFU_WORKERS: int(1, 256).optional(),
  SFU_LISTEN_IP: ipv4or6.default('0.0.0.0'),
  SFU_ANNOUNCED_IP: z.string().min(1).optional(),
  SFU_MIN_PORT: port.default(40000),
  SFU_MAX_PORT: port.default(49999),
  SFU_MAX_INCOMING_BITRATE: int(100_000, 100_000_000).default(1_500_000),
  SFU_SCTP_SEND_BUFFER_BYTES: int(262_144, 268_435_456).default(8_388_608),
  SFU_MAX_PRODUCERS_PER_PEER: int(1, 64).default(6),
  SFU_MAX_TRANSPORTS_PER_PEER: int(2, 16).default(4),
  SFU_MAX_CONSUMERS_PER_PEER: int(1, 10_000).default(500),
  SFU_TRANSPORT_CONNECT_TIMEOUT_MS: int(1000, 120_000).default(15_000),
  SFU_MAX_TRANSPORTS_PER_TENANT: int(1, 1_000_000).optional(),
  SFU_MIGRATION_TIMEOUT_MS: int(1000, 300_000).default(30_000),
  SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
  SHUTDOWN_DRAIN_MS: int(0, 600_000).default(0),
});


const tenantLimitsSchema = z.strictObject({
  max_rooms: int(1, 1_000_000).optional(),
  max_participants: int(1, 10_000).optional(),
  mesh_threshold: int(1, 1000).optional(),
  max_token_lifetime_s: int(60, 30 * 24 * 3600).optional(),
  auto_create_rooms: z.boolean().optional(),
});

const fileTenantSchema = z
  .strictObject({
    tenant_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    name: z.string().max(256).optional(),
    api_key: z.string().min(8).max(128),
    api_secret: z.string().min(32).optional(),
    api_secret_sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
    limits: tenantLimitsSchema.optional(),
  })
  .refine((t) => Boolean(t.api_secret) !== Boolean(t.api_secret_sha256), 'give exactly one of api_secret or api_secret_sha256');

/** Keys the config file may hold besides the environment names. */
/** Every setting name the environment (or CONFIG_FILE) may carry. */
export const SETTING_NAMES: readonly string[] = Object.keys(envSchema.shape);

const fileExtrasSchema = z.strictObject({
  roles: z.record(z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/), partialGrants).optional(),
  tenants: z.array(fileTenantSchema).max(10_000).optional(),
});

function parseSigningKeys(raw: string, problems: string[]): SigningKey[] {
  const keys: SigningKey[] = [];
  const seen = new Set<string>();
  for (const entry of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    const colon = entry.indexOf(':');
    if (colon <= 0) {
      problems.push('SIGNING_KEYS: each entry must be "kid:secret"');
      continue;
    }
    const kid = entry.slice(0, colon);
    const secret = entry.slice(colon + 1);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(kid)) problems.push(`SIGNING_KEYS: kid "${kid.slice(0, 64)}" must be 1-64 of A-Z a-z 0-9 _ . -`);
    else if (seen.has(kid)) problems.push(`SIGNING_KEYS: kid "${kid}" appears twice`);
    // Never echo the secret itself.
    if (Buffer.byteLength(secret) < 32) problems.push(`SIGNING_KEYS: the secret of kid "${kid.slice(0, 64)}" must be at least 32 bytes`);
    seen.add(kid);
    keys.push({ kid, secret });
  }
  if (keys.length === 0 && problems.length === 0) problems.push('SIGNING_KEYS: no keys given');
  return keys;
}

/** A comma-separated (or file-array) list of CIDRs; each bad entry is a problem. */
function cidrList(name: string, raw: string | string[] | undefined, problems: string[]): string[] {
  if (raw === undefined) return [];
  const list = (Array.isArray(raw) ? raw : raw.split(',')).map((s) => s.trim()).filter(Boolean);
  for (const c of list) if (!cidr.safeParse(c).success) problems.push(`${name}: "${c.slice(0, 64)}" must be a CIDR like 127.0.0.0/8`);
  return list;
}

function readConfigFile(path: string, problems: string[]): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    problems.push(`CONFIG_FILE: cannot read ${path}: ${(error as Error).message}`);
    return {};
  }
  try {
    const parsed: unknown = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      problems.push('CONFIG_FILE: must hold an object');
      return {};
    }
    return parsed as Record<string, unknown>;
  } catch (error) {
    problems.push(`CONFIG_FILE: cannot parse ${path}: ${(error as Error).message.split('\n')[0]}`);
    return {};
  }
}

function issuePath(path: PropertyKey[]): string {
  return path.map(String).join('.');
}

/** Hex sha256, how API secrets are stored. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

const randomSecret = (): string => randomBytes(32).toString('base64url');

/**
 * Builds the Config from an environment (process.env by default). Throws ConfigError listing
 * every problem found.
 */
export function loadConfig(env: Env = process.env): Readonly<Config> {
  const problems: string[] = [];
  const fileValues = env.CONFIG_FILE ? readConfigFile(env.CONFIG_FILE, problems) : {};
  const { roles: fileRoles, tenants: fileTenants, ...fileEnv } = fileValues;

  // Environment wins over the file; the file may use the same UPPER_CASE names.
  const merged: Record<string, unknown> = { ...fileEnv };
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && value !== '' && key in envSchema.shape) merged[key] = value;
  }
  for (const key of Object.keys(fileEnv)) {
    if (!(key in envSchema.shape)) problems.push(`CONFIG_FILE: unknown setting "${key.slice(0, 64)}"`);
  }

  const parsed = envSchema.safeParse(merged);
  const extras = fileExtrasSchema.safeParse({ roles: fileRoles, tenants: fileTenants });
  if (!parsed.success) for (const issue of parsed.error.issues) problems.push(`${issuePath(issue.path)}: ${issue.message}`);
  if (!extras.success) for (const issue of extras.error.issues) problems.push(`CONFIG_FILE ${issuePath(issue.path)}: ${issue.message}`);
  if (!parsed.success || !extras.success) throw new ConfigError(problems);

  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  const bootNotices: string[] = [];

  let signingKeys: SigningKey[];
  if (e.SIGNING_KEYS) {
    signingKeys = parseSigningKeys(e.SIGNING_KEYS, problems);
  } else if (production) {
    problems.push('SIGNING_KEYS: required when NODE_ENV=production ("kid:secret,kid:secret", secrets >= 32 bytes)');
    signingKeys = [];
  } else {
    signingKeys = [{ kid: 'dev', secret: randomSecret() }];
    bootNotices.push(`dev mode: generated an ephemeral signing key; export SIGNING_KEYS=dev:${signingKeys[0]?.secret} to mint tokens for this run with npm run token`);
  }

  let turnSecret = e.TURN_SECRET;
  if (!turnSecret) {
    if (production && e.TURN_ENABLED) problems.push('TURN_SECRET: required when NODE_ENV=production and TURN_ENABLED=true');
    turnSecret = randomSecret();
  }

  let adminApiKey = e.ADMIN_API_KEY;
  const tenants: DeclaredTenant[] = (extras.data.tenants ?? []).map((t) => ({
    tenant_id: t.tenant_id,
    ...(t.name ? { name: t.name } : {}),
    api_key: t.api_key,
    api_secret_sha256: t.api_secret_sha256 ?? sha256Hex(t.api_secret as string),
    ...(t.limits ? { limits: t.limits } : {}),
  }));
  if (!production) {
    if (!adminApiKey) {
      adminApiKey = randomSecret();
      bootNotices.push(`dev mode: ADMIN_API_KEY=${adminApiKey}`);
    }
    if (tenants.length === 0 && !e.MONGODB_URI) {
      const devSecret = randomSecret();
      tenants.push({ tenant_id: 'dev', name: 'Development tenant', api_key: 'dev', api_secret_sha256: sha256Hex(devSecret) });
      bootNotices.push(`dev mode: tenant "dev" with api_key=dev api_secret=${devSecret}`);
    }
  }

  const tenantIds = new Set<string>();
  const apiKeys = new Set<string>();
  for (const t of tenants) {
    if (tenantIds.has(t.tenant_id)) problems.push(`CONFIG_FILE tenants: tenant_id "${t.tenant_id}" appears twice`);
    if (apiKeys.has(t.api_key)) problems.push(`CONFIG_FILE tenants: an api_key appears twice`);
    tenantIds.add(t.tenant_id);
    apiKeys.add(t.api_key);
  }

  if (e.TURN_MIN_PORT > e.TURN_MAX_PORT) problems.push('TURN_MIN_PORT: must not exceed TURN_MAX_PORT');
  if (e.SFU_MIN_PORT > e.SFU_MAX_PORT) problems.push('SFU_MIN_PORT: must not exceed SFU_MAX_PORT');

  const allowedPeerCidrs = cidrList('TURN_ALLOWED_PEER_CIDRS', e.TURN_ALLOWED_PEER_CIDRS, problems);
  const webhookCidrs = cidrList('WEBHOOK_ALLOWED_CIDRS', e.WEBHOOK_ALLOWED_CIDRS, problems);

  const publicUrl = (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, '');
  const bootWarnings: string[] = [];
  const reachable = reachableAddresses(publicUrl, os.networkInterfaces());
  const guessing = (e.SFU_ENABLED && !e.SFU_ANNOUNCED_IP && UNSPECIFIED.has(e.SFU_LISTEN_IP)) || (e.TURN_ENABLED && !e.TURN_RELAY_IP && UNSPECIFIED.has(e.TURN_LISTEN_IP));
  if (guessing && reachable.warning) bootWarnings.push(reachable.warning);
  let corsOrigins = e.CORS_ORIGINS ?? [];
  if (corsOrigins.length === 0) corsOrigins = production ? [new URL(publicUrl).origin] : ['*'];
  for (const origin of corsOrigins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) problems.push(`CORS_ORIGINS: "${origin.slice(0, 100)}" must be an origin like https://app.example.com, or *`);
  }
  if (production && corsOrigins.includes('*')) problems.push('CORS_ORIGINS: "*" is not allowed when NODE_ENV=production');

  const roles: Record<string, Grants> = { ...DEFAULT_ROLES };
  for (const [name, grants] of Object.entries(extras.data.roles ?? {})) roles[name] = { ...NO_GRANTS, ...grants };

  if (problems.length > 0) throw new ConfigError(problems);

  const config: Config = {
    nodeEnv: e.NODE_ENV,
    http: { host: e.HOST, port: e.PORT, publicUrl, corsOrigins, bodyLimitBytes: e.HTTP_BODY_LIMIT_BYTES, trustProxy: e.TRUST_PROXY },
    logLevel: e.LOG_LEVEL,
    auth: {
      signingKeys,
      issuer: e.TOKEN_ISSUER,
      audience: e.TOKEN_AUDIENCE,
      clockToleranceS: e.TOKEN_CLOCK_TOLERANCE_S,
      maxTokenLifetimeS: e.TOKEN_MAX_LIFETIME_S,
      adminApiKey,
      anonymousRooms: e.ANONYMOUS_ROOMS,
      anonymousTenant: e.ANONYMOUS_TENANT,
      devTokenRoute: production ? false : (e.DEV_TOKEN_ROUTE ?? true),
    },
    roles,
    tenants,
    defaultTenantLimits: {
      max_rooms: 10_000,
      max_participants: e.MAX_PARTICIPANTS,
      mesh_threshold: e.MESH_THRESHOLD,
      max_token_lifetime_s: e.TOKEN_MAX_LIFETIME_S,
      auto_create_rooms: true,
    },
    store: { mongodbUri: e.MONGODB_URI },
    nodeId: e.NODE_ID ?? `node-${randomBytes(6).toString('hex')}`,
    sessions: { heartbeatMs: e.SESSION_HEARTBEAT_MS, staleAfterMs: 3 * e.SESSION_HEARTBEAT_MS },
    rooms: {
      meshThreshold: e.MESH_THRESHOLD,
      demoteDelayMs: e.DEMOTE_DELAY_MS,
      maxParticipants: e.MAX_PARTICIPANTS,
      emptyTimeoutMs: e.ROOM_EMPTY_TIMEOUT_MS,
    },
    socket: {
      pingIntervalMs: e.SOCKET_PING_INTERVAL_MS,
      pingTimeoutMs: e.SOCKET_PING_TIMEOUT_MS,
      maxPayloadBytes: e.SOCKET_MAX_PAYLOAD_BYTES,
      connectTimeoutMs: e.SOCKET_CONNECT_TIMEOUT_MS,
      pendingSessionsPerIp: e.SOCKET_PENDING_SESSIONS_PER_IP,
    },
    rateLimits: {
      handshakesPerIpPerMinute: e.RATE_LIMIT_HANDSHAKES_PER_MIN,
      eventsPerSocketPerSecond: e.RATE_LIMIT_EVENTS_PER_SEC,
      strikesBeforeDisconnect: e.RATE_LIMIT_STRIKES,
      httpPerIpPerMinute: e.RATE_LIMIT_HTTP_PER_MIN,
      tokensPerTenantPerMinute: e.RATE_LIMIT_TOKENS_PER_MIN,
      adminPerIpPerMinute: e.RATE_LIMIT_ADMIN_PER_MIN,
    },
    webhooks: { allowedCidrs: webhookCidrs, allowPrivateNetworks: e.WEBHOOK_ALLOW_PRIVATE_NETWORKS },
    turn: {
      enabled: e.TURN_ENABLED,
      port: e.TURN_PORT,
      listenIp: e.TURN_LISTEN_IP,
      relayIp: e.TURN_RELAY_IP ?? (UNSPECIFIED.has(e.TURN_LISTEN_IP) ? reachable.local : e.TURN_LISTEN_IP),
      externalIp: e.TURN_EXTERNAL_IP,
      realm: e.TURN_REALM,
      secret: turnSecret,
      credentialTtlS: e.TURN_CREDENTIAL_TTL_S,
      allowedPeerCidrs,
      minPort: e.TURN_MIN_PORT,
      maxPort: e.TURN_MAX_PORT,
      maxAllocationsPerUser: e.TURN_MAX_ALLOCATIONS_PER_USER,
      maxAllocations: e.TURN_MAX_ALLOCATIONS,
      maxAllocationLifetimeS: e.TURN_MAX_ALLOCATION_LIFETIME_S,
      externalUrls: e.TURN_EXTERNAL_URLS ?? [],
      stunUrls: e.STUN_URLS ?? [],
    },
    sfu: {
      enabled: e.SFU_ENABLED,
      workers: e.SFU_WORKERS ?? Math.max(1, os.availableParallelism()),
      listenIp: e.SFU_LISTEN_IP,
      announcedIp: e.SFU_ANNOUNCED_IP ?? (UNSPECIFIED.has(e.SFU_LISTEN_IP) ? reachable.announced : undefined),
      minPort: e.SFU_MIN_PORT,
      maxPort: e.SFU_MAX_PORT,
      maxIncomingBitrate: e.SFU_MAX_INCOMING_BITRATE,
      sctpSendBufferBytes: e.SFU_SCTP_SEND_BUFFER_BYTES,
      maxProducersPerPeer: e.SFU_MAX_PRODUCERS_PER_PEER,
      maxTransportsPerPeer: e.SFU_MAX_TRANSPORTS_PER_PEER,
      maxConsumersPerPeer: e.SFU_MAX_CONSUMERS_PER_PEER,
      transportConnectTimeoutMs: e.SFU_TRANSPORT_CONNECT_TIMEOUT_MS,
      // Half the port range by default: one tenant alone can never exhaust it.
      maxTransportsPerTenant: e.SFU_MAX_TRANSPORTS_PER_TENANT ?? Math.max(1, Math.floor((e.SFU_MAX_PORT - e.SFU_MIN_PORT + 1) / 2)),
      migrationTimeoutMs: e.SFU_MIGRATION_TIMEOUT_MS,
    },
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    shutdownDrainMs: e.SHUTDOWN_DRAIN_MS,
    bootNotices,
    bootWarnings,
  };
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** A config for tests and embedding: the given env over quiet, loopback-only defaults. */
const UNSPECIFIED = new Set(['0.0.0.0', '::']);

/**
 * The addresses media goes to when SFU_ANNOUNCED_IP / TURN_RELAY_IP are not set and the
 * services listen on every interface: 127.0.0.1 when PUBLIC_URL is this machine (a dev run),
 * else the host's first non-internal IPv4 (announced: PUBLIC_URL's own IP when it is one).
 * `warning` says when that is a guess the operator should confirm.
 */
export function reachableAddresses(publicUrl: string, interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>): { announced: string; local: string; warning: string | null } {
  const host = new URL(publicUrl).hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host.endsWith('.localhost') || /^127\./.test(host) || host === '::1') return { announced: '127.0.0.1', local: '127.0.0.1', warning: null };
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
  return { announced, local: hostAddress, warning: `SFU_ANNOUNCED_IP / TURN_RELAY_IP not set: media is announced on ${announced} (relays bind ${hostAddress}); set them to the address browsers reach` };
}

export function testConfig(overrides: Env = {}): Readonly<Config> {
  return loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    TURN_ENABLED: 'false',
    SFU_ENABLED: 'false',
    ...overrides,
  });
}

