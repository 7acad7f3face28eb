/**
 * Mints a join token from the configured key ring (SIGNING_KEYS, TOKEN_ISSUER, TOKEN_AUDIENCE).
 *   npm run token -- --room R --user U [--role host] [--name N] [--tenant dev] [--ttl 3600] [--grants '{"canPublish":false}']
 * Prints the token alone on stdout, so it can be captured: TOKEN=$(npm run -s token -- ...).
 */
import { parseArgs } from 'node:util';
import type { Grants } from '../protocol/events.js';
import { externalId } from '../protocol/schemas.js';
import { ConfigError, loadConfig } from '../config/index.js';
import { TokenService } from '../server/auth/TokenService.js';

function fail(message: string): never {
  process.stderr.write(`token: ${message}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    room: { type: 'string' },
    user: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string', default: 'guest' },
    tenant: { type: 'string', default: 'dev' },
    ttl: { type: 'string', default: '3600' },
    grants: { type: 'string' },
  },
});

let config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) fail(error.problems.join('; '));
  throw error;
}
if (config.bootNotices.some((n) => n.includes('SIGNING_KEYS'))) {
  fail(
    'SIGNING_KEYS is not set: a token signed with a throw-away key would not verify anywhere. Export the SIGNING_KEYS the server uses (in dev mode the server prints it at boot).',
  );
}
if (!values.room || !externalId.safeParse(values.room).success) fail('--room is required (letters, digits, _ . : @ -)');
if (!values.user || !externalId.safeParse(values.user).success) fail('--user is required (letters, digits, _ . : @ -)');
const preset = config.roles[values.role];
if (!preset) fail(`unknown role "${values.role}"; known: ${Object.keys(config.roles).join(', ')}`);
let extra: Partial<Grants> = {};
if (values.grants) {
  try {
    extra = JSON.parse(values.grants) as Partial<Grants>;
  } catch {
    fail('--grants must be JSON, e.g. {"canPublish":false}');
  }
}
const ttlS = Number(values.ttl);
if (!Number.isInteger(ttlS) || ttlS < 60) fail('--ttl must be a whole number of seconds >= 60');

const tokens = TokenService.fromConfig(config.auth);
const minted = tokens.mint({
  tenantId: values.tenant,
  roomId: values.room,
  userId: values.user,
  name: values.name ?? values.user,
  grants: { ...preset, ...extra },
  ttlS,
});
process.stdout.write(`${minted.token}\n`);
