/**
 * The commands of `switchboard`: each declares its flags (node:util parseArgs, strict), its
 * positionals and its help, and validates its input with the HTTP API's own zod schemas
 * before anything is sent. All but `token create` and `migrate` call a running server.
 */
import { randomBytes } from 'node:crypto';
import type { ParseArgsConfig } from 'node:util';
import { z } from 'zod';
import type { Grants, Metadata } from '../../protocol/events.js';
import { ConfigError, loadMigrationConfig, loadSigningConfig, resolveGrants, type CliEnvironment } from '../../config/index.js';
import { createTenantBody, createTokenBody, participantParams, participantsQuery, roomListQuery, roomParams } from '../http/api/schemas.js';
import { TokenService } from '../auth/TokenService.js';
import { ApiClient } from './ApiClient.js';
import { CliError, ExitCode, UsageError } from './CliError.js';

type OptionSpecs = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** Where a command writes; the process's streams, or a test's buffers. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** The environment to read settings from; unset: config/ reads the process's (the only reader of process.env). */
  env?: Record<string, string | undefined>;
}

export interface CommandContext {
  values: Values;
  positionals: string[];
  io: CliIo;
  env: CliEnvironment;
  /** The command's name, e.g. "rooms get", for messages. */
  name: string;
}

export interface Command {
  /** e.g. ['rooms', 'list'] */
  path: string[];
  /** One line for the command list. */
  brief: string;
  summary: string;
  /** Positional arguments, in order, all required. */
  positionals: { name: string; help: string }[];
  /** This command's flags (the connection flags of `api` commands are added). */
  options: OptionSpecs;
  /** One line per flag: [flag as written in help, description]. */
  optionHelp: [string, string][];
  /** Which credential the command calls the server with; null: it does not call the server. */
  api: 'tenant' | 'admin' | null;
  /** Extra help text after the flags. */
  notes?: string;
  run(ctx: CommandContext): Promise<void>;
}

const DEFAULT_URL = 'http://localhost:8080';

/** Flags every command accepts. */
export const HELP_OPTION: OptionSpecs = { help: { type: 'boolean', short: 'h' } };

const CONNECTION_OPTIONS: Record<'tenant' | 'admin', OptionSpecs> = {
  tenant: { url: { type: 'string' }, 'api-secret': { type: 'string' } },
  admin: { url: { type: 'string' }, 'admin-key': { type: 'string' } },
};

function connectionHelp(api: 'tenant' | 'admin'): [string, string][] {
  return [
    ['--url URL', `the server (env SWITCHBOARD_URL, default ${DEFAULT_URL})`],
    api === 'tenant'
      ? ['--api-secret SECRET', "the tenant's API secret (env SWITCHBOARD_API_SECRET; prefer the env: flags show in ps)"]
      : ['--admin-key KEY', "the server's ADMIN_API_KEY (env SWITCHBOARD_ADMIN_KEY, else ADMIN_API_KEY)"],
  ];
}

/** Every flag a command parses. */
export function optionsOf(command: Command): OptionSpecs {
  return { ...HELP_OPTION, ...command.options, ...(command.api ? CONNECTION_OPTIONS[command.api] : {}) };
}

/** The command's help text. */
export function helpOf(command: Command): string {
  const name = `switchboard ${command.path.join(' ')}`;
  const args = command.positionals.map((p) => ` <${p.name}>`).join('');
  const flags = [
    ...command.optionHelp,
    ...(command.api ? connectionHelp(command.api) : []),
    ['-h, --help', 'this help'] as [string, string],
  ];
  const width = Math.max(...flags.map(([flag]) => flag.length), ...command.positionals.map((p) => p.name.length + 2));
  const lines = [`Usage: ${name}${args}${flags.length > 1 ? ' [flags]' : ''}`, '', command.summary, ''];
  if (command.positionals.length > 0) {
    lines.push('Arguments:');
    for (const p of command.positionals) lines.push(`  ${`<${p.name}>`.padEnd(width)}  ${p.help}`);
    lines.push('');
  }
  lines.push('Flags:');
  for (const [flag, text] of flags) lines.push(`  ${flag.padEnd(width)}  ${text}`);
  if (command.notes) lines.push('', command.notes);
  lines.push('', 'Exit codes: 0 ok, 1 the server answered an error (its code is printed), 2 bad usage, 3 server unreachable.');
  return `${lines.join('\n')}\n`;
}

// ---- argument helpers ----

/** A usage error naming the command's help. */
function usage(ctx: CommandContext, message: string): UsageError {
  return new UsageError(`${ctx.name}: ${message}`, `switchboard ${ctx.name} --help`);
}

function str(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** A flag holding JSON (an object). */
function jsonFlag(ctx: CommandContext, name: string, example: string): unknown {
  const raw = str(ctx.values, name);
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw usage(ctx, `--${name} must be JSON, e.g. ${example}`);
  }
}

/** A flag holding a whole number (the schema checks its range). */
function intFlag(ctx: CommandContext, name: string): number | undefined {
  const raw = str(ctx.values, name);
  if (raw === undefined) return undefined;
  if (!/^\d{1,12}$/.test(raw)) throw usage(ctx, `--${name} must be a whole number, not "${raw.slice(0, 32)}"`);
  return Number(raw);
}

/**
 * Parses with an API schema; every issue becomes one line naming the flag or argument it
 * came from (`fields` maps the schema's field names to them).
 */
function validate<S extends z.ZodType>(ctx: CommandContext, schema: S, input: unknown, fields: Record<string, string>): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const [first, ...rest] = issue.path.map(String);
    const where = first === undefined ? 'arguments' : `${fields[first] ?? first}${rest.length > 0 ? ` (${rest.join('.')})` : ''}`;
    const keys = issue.code === 'unrecognized_keys' ? `: ${issue.keys.join(', ')}` : '';
    return `${where}: ${issue.message}${keys}`;
  });
  throw usage(ctx, lines.join('; '));
}

function apiClient(ctx: CommandContext, api: 'tenant' | 'admin'): ApiClient {
  const url = str(ctx.values, 'url') ?? ctx.env.url ?? DEFAULT_URL;
  if (!z.url({ protocol: /^https?$/ }).safeParse(url).success) throw usage(ctx, `--url must be an http(s) URL, not "${url.slice(0, 64)}"`);
  const credential =
    api === 'tenant' ? (str(ctx.values, 'api-secret') ?? ctx.env.apiSecret) : (str(ctx.values, 'admin-key') ?? ctx.env.adminKey);
  if (!credential) {
    throw usage(
      ctx,
      api === 'tenant'
        ? "needs the tenant's API secret: --api-secret or SWITCHBOARD_API_SECRET"
        : 'needs the admin key: --admin-key, SWITCHBOARD_ADMIN_KEY or ADMIN_API_KEY',
    );
  }
  return new ApiClient({ url, credential });
}

function printJson(ctx: CommandContext, value: unknown): void {
  ctx.io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

/** Settings problems of a local command (token create, migrate) are usage errors: nothing was done. */
function settingsOrUsage<T>(ctx: CommandContext, load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (error instanceof ConfigError) throw usage(ctx, error.problems.join('; '));
    throw error;
  }
}

const tenantIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a tenant id (1-64 letters, digits, _ and -)');

// ---- commands ----

const tokenCreate: Command = {
  path: ['token', 'create'],
  brief: 'mint a join token locally (signing keys only)',
  summary:
    'Mints a join token locally with the signing keys (SIGNING_KEYS, TOKEN_ISSUER, TOKEN_AUDIENCE, CONFIG_FILE roles); no server is called and no other setting is needed. Prints the token alone (or JSON with --json).',
  positionals: [],
  options: {
    tenant: { type: 'string' },
    room: { type: 'string' },
    user: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string' },
    grants: { type: 'string' },
    metadata: { type: 'string' },
    ttl: { type: 'string' },
    json: { type: 'boolean' },
  },
  optionHelp: [
    ['--tenant ID', 'tenant the token is for (required; env SWITCHBOARD_TENANT)'],
    ['--room ID', 'room id (required)'],
    ['--user ID', 'user id (generated when absent)'],
    ['--name NAME', 'display name (default: the user id)'],
    ['--role ROLE', 'grant preset (host, presenter, guest, listener, recorder, or CONFIG_FILE roles); guest unless --grants is given'],
    ['--grants JSON', 'grants over the role, e.g. {"canPublish":false}; without --role, unnamed grants are false'],
    ['--metadata JSON', 'participant metadata object'],
    ['--ttl SECONDS', 'lifetime (default 3600), capped by TOKEN_MAX_LIFETIME_S'],
    ['--json', 'print {token, jti, expires_at, tenant_id, room_id, user_id, user_name, grants}'],
  ],
  notes:
    'The token is not recorded in the store (the API records what it mints); it can still be revoked by jti (POST /api/v1/tokens/revoke). The tenant limit max_token_lifetime_s is not known here: only TOKEN_MAX_LIFETIME_S caps --ttl.',
  api: null,
  async run(ctx) {
    const tenant = str(ctx.values, 'tenant') ?? ctx.env.tenant;
    if (tenant === undefined) throw usage(ctx, '--tenant is required (or SWITCHBOARD_TENANT): the tenant the token is for');
    const tenantId = tenantIdSchema.safeParse(tenant);
    if (!tenantId.success) throw usage(ctx, `--tenant ${tenantId.error.issues[0]?.message ?? 'is not valid'}`);
    if (str(ctx.values, 'room') === undefined) throw usage(ctx, '--room is required');
    const userId = str(ctx.values, 'user');
    const body = validate(
      ctx,
      createTokenBody,
      {
        room_id: str(ctx.values, 'room'),
        user_id: userId,
        user_name: str(ctx.values, 'name') ?? userId ?? 'user',
        duration: intFlag(ctx, 'ttl'),
        role: str(ctx.values, 'role'),
        grants: jsonFlag(ctx, 'grants', '{"canPublish":false}'),
        metadata: jsonFlag(ctx, 'metadata', '{"color":"blue"}'),
      },
      {
        room_id: '--room',
        user_id: '--user',
        user_name: '--name',
        duration: '--ttl',
        role: '--role',
        grants: '--grants',
        metadata: '--metadata',
      },
    );
    const signing = settingsOrUsage(ctx, () => loadSigningConfig(ctx.io.env));
    const grants = resolveGrants(signing.roles, body.role, body.grants as Partial<Grants> | undefined);
    if (!grants) throw usage(ctx, `--role: unknown role "${body.role}"; known: ${Object.keys(signing.roles).join(', ')}`);
    const user = body.user_id ?? `u_${randomBytes(9).toString('base64url')}`;
    const userName = str(ctx.values, 'name') ?? user;
    const ttlS = Math.min(body.duration ?? 3600, signing.auth.maxTokenLifetimeS);
    const { signingKeys, issuer, audience, clockToleranceS, maxTokenLifetimeS } = signing.auth;
    const tokens = new TokenService({ keys: signingKeys, issuer, audience, clockToleranceS, maxLifetimeS: maxTokenLifetimeS });
    const minted = tokens.mint({
      tenantId: tenantId.data,
      roomId: body.room_id,
      userId: user,
      name: userName,
      grants,
      metadata: body.metadata as Metadata | undefined,
      ttlS,
    });
    if (!ctx.values.json) {
      ctx.io.stdout(`${minted.token}\n`);
      return;
    }
    printJson(ctx, {
      token: minted.token,
      jti: minted.jti,
      expires_at: minted.expiresAt.toISOString(),
      tenant_id: tenantId.data,
      room_id: body.room_id,
      user_id: user,
      user_name: userName,
      grants,
    });
  },
};

const tenantCreate: Command = {
  path: ['tenant', 'create'],
  brief: 'create a tenant (admin key); prints its API secret once',
  summary: 'Creates a tenant (POST /api/v1/tenants, admin key) and prints it with its API secret, which is shown only this once.',
  positionals: [],
  options: {
    name: { type: 'string' },
    limits: { type: 'string' },
    'webhook-url': { type: 'string' },
    'webhook-secret': { type: 'string' },
  },
  optionHelp: [
    ['--name NAME', 'tenant name (required)'],
    [
      '--limits JSON',
      'overrides, e.g. {"max_rooms":100,"max_participants":50,"mesh_threshold":4,"max_token_lifetime_s":3600,"auto_create_rooms":false}',
    ],
    ['--webhook-url URL', 'receives signed event POSTs'],
    ['--webhook-secret S', 'its HMAC key (16-256 characters; generated when absent)'],
  ],
  api: 'admin',
  async run(ctx) {
    if (str(ctx.values, 'name') === undefined) throw usage(ctx, '--name is required');
    const webhookUrl = str(ctx.values, 'webhook-url');
    const webhookSecret = str(ctx.values, 'webhook-secret');
    if (webhookSecret !== undefined && webhookUrl === undefined) throw usage(ctx, '--webhook-secret needs --webhook-url');
    const body = validate(
      ctx,
      createTenantBody,
      {
        name: str(ctx.values, 'name'),
        limits: jsonFlag(ctx, 'limits', '{"max_rooms":100}'),
        webhook: webhookUrl === undefined ? undefined : { url: webhookUrl, secret: webhookSecret },
      },
      { name: '--name', limits: '--limits', webhook: '--webhook-url/--webhook-secret' },
    );
    printJson(ctx, await apiClient(ctx, 'admin').request('POST', '/api/v1/tenants', body));
  },
};

const roomsList: Command = {
  path: ['rooms', 'list'],
  brief: 'list stored rooms, or live ones with --live',
  summary: "Lists the tenant's stored rooms (GET /api/v1/rooms), or its live ones with --live, as JSON {rooms, next_cursor}.",
  positionals: [],
  options: { live: { type: 'boolean' }, limit: { type: 'string' }, cursor: { type: 'string' } },
  optionHelp: [
    ['--live', 'the live rooms instead (stored or created by a join)'],
    ['--limit N', 'page size (1-100, default 50)'],
    ['--cursor C', 'next_cursor of the previous page'],
  ],
  api: 'tenant',
  async run(ctx) {
    const query = { live: ctx.values.live ? 'true' : undefined, limit: str(ctx.values, 'limit'), cursor: str(ctx.values, 'cursor') };
    validate(ctx, roomListQuery, query, { live: '--live', limit: '--limit', cursor: '--cursor' });
    const search = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined));
    const suffix = search.size > 0 ? `?${search.toString()}` : '';
    printJson(ctx, await apiClient(ctx, 'tenant').request('GET', `/api/v1/rooms${suffix}`));
  },
};

const roomArg = { name: 'room_id', help: 'the room id' };

const roomsGet: Command = {
  path: ['rooms', 'get'],
  brief: 'show a room with its live participants',
  summary: 'Prints one room (GET /api/v1/rooms/:roomId): its settings, whether it is live, its current mode and live participants.',
  positionals: [roomArg],
  options: {},
  optionHelp: [],
  api: 'tenant',
  async run(ctx) {
    const { roomId } = validate(ctx, roomParams, { roomId: ctx.positionals[0] }, { roomId: '<room_id>' });
    printJson(ctx, await apiClient(ctx, 'tenant').request('GET', `/api/v1/rooms/${encodeURIComponent(roomId)}`));
  },
};

const roomsClose: Command = {
  path: ['rooms', 'close'],
  brief: 'close a live room and remove it',
  summary: 'Closes the live room (its peers get room_closed) and removes it (DELETE /api/v1/rooms/:roomId).',
  positionals: [roomArg],
  options: {},
  optionHelp: [],
  api: 'tenant',
  async run(ctx) {
    const { roomId } = validate(ctx, roomParams, { roomId: ctx.positionals[0] }, { roomId: '<room_id>' });
    await apiClient(ctx, 'tenant').request('DELETE', `/api/v1/rooms/${encodeURIComponent(roomId)}`);
    ctx.io.stdout(`room ${roomId} closed\n`);
  },
};

const participantsList: Command = {
  path: ['participants', 'list'],
  brief: "list a live room's participants",
  summary: "Lists a live room's participants (GET /api/v1/rooms/:roomId/participants) as JSON {participants}.",
  positionals: [roomArg],
  options: { 'include-hidden': { type: 'boolean' } },
  optionHelp: [['--include-hidden', 'also hidden participants (recorders), marked hidden: true']],
  api: 'tenant',
  async run(ctx) {
    const { roomId } = validate(ctx, roomParams, { roomId: ctx.positionals[0] }, { roomId: '<room_id>' });
    const query = { include_hidden: ctx.values['include-hidden'] ? 'true' : undefined };
    validate(ctx, participantsQuery, query, { include_hidden: '--include-hidden' });
    const suffix = query.include_hidden ? '?include_hidden=true' : '';
    printJson(ctx, await apiClient(ctx, 'tenant').request('GET', `/api/v1/rooms/${encodeURIComponent(roomId)}/participants${suffix}`));
  },
};

const participantsKick: Command = {
  path: ['participants', 'kick'],
  brief: 'kick a user from a live room',
  summary:
    'Removes a user from a live room (DELETE /api/v1/rooms/:roomId/participants/:userId): its connections get kicked and its tokens for the room can no longer join.',
  positionals: [roomArg, { name: 'user_id', help: 'the user id' }],
  options: {},
  optionHelp: [],
  api: 'tenant',
  async run(ctx) {
    const { roomId, userId } = validate(
      ctx,
      participantParams,
      { roomId: ctx.positionals[0], userId: ctx.positionals[1] },
      { roomId: '<room_id>', userId: '<user_id>' },
    );
    await apiClient(ctx, 'tenant').request(
      'DELETE',
      `/api/v1/rooms/${encodeURIComponent(roomId)}/participants/${encodeURIComponent(userId)}`,
    );
    ctx.io.stdout(`user ${userId} kicked from room ${roomId}\n`);
  },
};

const migrate: Command = {
  path: ['migrate'],
  brief: "migrate the MongoDB store's indexes (MONGODB_URI)",
  summary:
    "Brings the MongoDB store's indexes to the ones this version declares (MONGODB_URI): drops undeclared indexes (never _id_), changes a TTL in place (collMod), rebuilds an index whose other options changed, creates missing ones, then fills record fields older versions did not store. Prints one line per change.",
  positionals: [],
  options: { 'dry-run': { type: 'boolean' }, timeout: { type: 'string' } },
  optionHelp: [
    ['--dry-run', 'print the changes without making them'],
    ['--timeout SECONDS', 'how long to look for a reachable MongoDB server (1-300, default 10)'],
  ],
  notes:
    'Run it once per database, before or while the new version boots (or boot one node with MONGODB_MIGRATE=true). Indexes you added by hand are dropped, as mongoose syncIndexes does: check with --dry-run first.',
  api: null,
  async run(ctx) {
    const timeoutS = intFlag(ctx, 'timeout') ?? 10;
    if (timeoutS < 1 || timeoutS > 300) throw usage(ctx, '--timeout must be 1-300 seconds');
    const settings = settingsOrUsage(ctx, () => loadMigrationConfig(ctx.io.env));
    const { MongoStore } = await import('../store/MongoStore.js');
    const store = new MongoStore(settings.mongodbUri, {
      tokenGraceMs: settings.auth.clockToleranceS * 1000,
      sessionStaleMs: settings.sessions.staleAfterMs,
      serverSelectionTimeoutMS: timeoutS * 1000,
    });
    try {
      const dryRun = ctx.values['dry-run'] === true;
      const planned = await store.migrate({ dryRun }).catch((error: unknown) => {
        throw new CliError(ExitCode.unreachable, `migrate: ${error instanceof Error ? error.message : String(error)}`);
      });
      for (const { description } of planned) ctx.io.stdout(`${dryRun ? 'would ' : ''}${description}\n`);
      ctx.io.stdout(
        planned.length === 0 ? 'indexes are up to date\n' : `${planned.length} index change(s)${dryRun ? ' planned' : ' made'}\n`,
      );
    } finally {
      await store.close();
    }
  },
};

/** Every command, in help order. */
export const COMMANDS: readonly Command[] = [
  tokenCreate,
  tenantCreate,
  roomsList,
  roomsGet,
  roomsClose,
  participantsList,
  participantsKick,
  migrate,
];
