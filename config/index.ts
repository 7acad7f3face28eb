/**
 * The only reader of process.env. Loads the environment (optionally over a JSON/YAML file
 * named by CONFIG_FILE), validates everything at once, and returns a frozen, typed Config.
 * Bad config throws ConfigError with one line per problem; main.ts prints them and exits.
 *
 * Layout: setting.ts declares how a setting is written; sections/ declare every setting once
 * (name, parser, default, doc) per Config section; schema.ts resolves them into the Config
 * with bootstrap.ts (generated secrets), checks.ts (cross-field problems) and
 * mediaAddresses.ts; sources.ts merges the environment over CONFIG_FILE.
 */
import { z } from 'zod';
import { configSchema, describeIssue, type Config } from './schema.js';
import { authSettings } from './sections/auth.js';
import { sessionSettings, storeSettings } from './sections/store.js';
import { fileOnlySchema } from './sections/tenants.js';
import { shapeOf, readSection, type Section, type SectionValues } from './setting.js';
import { readSources, type Env } from './sources.js';
import { staleAfterMs } from './sections/store.js';

export { DEFAULT_ROLES, NO_GRANTS, resolveGrants } from './roles.js';
export { configSchema, type Config } from './schema.js';
export type { SigningKey } from './sections/auth.js';
export { SETTING_NAMES } from './sections/index.js';
export { sha256Hex, type DeclaredTenant, type TenantLimitsConfig } from './sections/tenants.js';
export { reachableAddresses } from './mediaAddresses.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Builds the Config from an environment (process.env by default). Throws ConfigError listing
 * every problem found: the sources' first, then the settings', then the file's roles and tenants'.
 * Cross-field problems are looked for once every value parses.
 */
export function loadConfig(env: Env = process.env): Readonly<Config> {
  const { settings, file, problems } = readSources(env);
  const parsed = configSchema.safeParse({ settings, file });
  if (!parsed.success) problems.push(...parsed.error.issues.map(describeIssue));
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(parsed.data);
}

/** A config for tests and embedding: the given env over quiet, loopback-only defaults. */
export function testConfig(overrides: Env = {}): Readonly<Config> {
  return loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    // /metrics on PORT: servers in one process (or test run) would all want METRICS_PORT's one port.
    METRICS_PORT: '0',
    LOG_LEVEL: 'silent',
    TURN_ENABLED: 'false',
    SFU_ENABLED: 'false',
    ...overrides,
  });
}

/** What signing tokens outside the server needs: the key ring, the claims settings and the grant presets. */
export interface SigningConfig {
  auth: Pick<Config['auth'], 'signingKeys' | 'issuer' | 'audience' | 'clockToleranceS' | 'maxTokenLifetimeS'>;
  roles: Config['roles'];
}

/**
 * The signing settings alone (SIGNING_KEYS, TOKEN_*, CONFIG_FILE's roles), for tools that mint
 * tokens without running a server: no other setting is read or required, and SIGNING_KEYS
 * must be set (a generated key would sign tokens no server accepts). Throws ConfigError.
 */
export function loadSigningConfig(env: Env = process.env): SigningConfig {
  const { settings, file, problems } = readSources(env);
  const auth = parseSection(authSettings, settings, problems);
  const roles = fileOnlySchema.shape.roles.safeParse(file.roles);
  if (!roles.success) problems.push(...roles.error.issues.map((issue) => `CONFIG_FILE roles.${issue.path.join('.')}: ${issue.message}`));
  if (auth && !auth.signingKeys)
    problems.push('SIGNING_KEYS: required to sign tokens: the key ring the server verifies with ("kid:secret,...")');
  if (!auth?.signingKeys || !roles.success || problems.length > 0) throw new ConfigError(problems);
  const { signingKeys, issuer, audience, clockToleranceS, maxTokenLifetimeS } = auth;
  return deepFreeze({ auth: { signingKeys, issuer, audience, clockToleranceS, maxTokenLifetimeS }, roles: roles.data });
}

/** What migrating the MongoDB store needs: its URI and the store's tuning. */
export interface MigrationConfig {
  mongodbUri: string;
  auth: Pick<Config['auth'], 'clockToleranceS'>;
  sessions: Pick<Config['sessions'], 'staleAfterMs'>;
}

/** MONGODB_URI and the store settings alone, for `switchboard migrate`. Throws ConfigError. */
export function loadMigrationConfig(env: Env = process.env): MigrationConfig {
  const { settings, problems } = readSources(env);
  const store = parseSection(storeSettings, settings, problems);
  const auth = parseSection({ clockToleranceS: authSettings.clockToleranceS }, settings, problems);
  const sessions = parseSection(sessionSettings, settings, problems);
  if (store && !store.mongodbUri) problems.push('MONGODB_URI: required to migrate the MongoDB store');
  if (!store?.mongodbUri || !auth || !sessions || problems.length > 0) throw new ConfigError(problems);
  return {
    mongodbUri: store.mongodbUri,
    auth: { clockToleranceS: auth.clockToleranceS },
    sessions: { staleAfterMs: staleAfterMs(sessions.heartbeatMs) },
  };
}

/** One section's settings, or undefined with its problems ("NAME: message") added. */
function parseSection<S extends Section>(section: S, settings: Record<string, unknown>, problems: string[]): SectionValues<S> | undefined {
  const parsed = z.object(shapeOf([section])).safeParse(settings);
  if (parsed.success) return readSection(section, parsed.data);
  problems.push(...parsed.error.issues.map((issue) => `${issue.path.map(String).join('.')}: ${issue.message}`));
  return undefined;
}

/** The CLI's connection settings: where the server is and the credentials it calls with. */
export interface CliEnvironment {
  /** SWITCHBOARD_URL. */
  url: string | undefined;
  /** SWITCHBOARD_API_SECRET: a tenant's API secret. */
  apiSecret: string | undefined;
  /** SWITCHBOARD_ADMIN_KEY, else ADMIN_API_KEY (the server's own setting). */
  adminKey: string | undefined;
  /** SWITCHBOARD_TENANT: the tenant `token create` signs for. */
  tenant: string | undefined;
}

/** The CLI's environment variables (empty ones read as unset); its flags override them. */
export function cliEnvironment(env: Env = process.env): CliEnvironment {
  const value = (name: string): string | undefined => env[name] || undefined;
  return {
    url: value('SWITCHBOARD_URL'),
    apiSecret: value('SWITCHBOARD_API_SECRET'),
    adminKey: value('SWITCHBOARD_ADMIN_KEY') ?? value('ADMIN_API_KEY'),
    tenant: value('SWITCHBOARD_TENANT'),
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
