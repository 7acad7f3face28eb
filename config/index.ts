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
import { configSchema, describeIssue, type Config } from './schema.js';
import { readSources, type Env } from './sources.js';

export { DEFAULT_ROLES, NO_GRANTS } from './roles.js';
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
    LOG_LEVEL: 'silent',
    TURN_ENABLED: 'false',
    SFU_ENABLED: 'false',
    ...overrides,
  });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
