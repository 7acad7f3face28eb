/** Secrets and a tenant a run may leave unset, generated for that run. */
import { randomBytes } from 'node:crypto';
import type { SigningKey } from './sections/auth.js';
import type { ParsedSettings } from './sections/index.js';
import { selectedStore } from './sections/store.js';
import { sha256Hex, type DeclaredTenant } from './sections/tenants.js';

const randomSecret = (): string => randomBytes(32).toString('base64url');

export interface BootstrappedSecrets {
  signingKeys: SigningKey[];
  adminApiKey: string | undefined;
  turnSecret: string;
  tenants: DeclaredTenant[];
  /** How to use what development generated; printed at boot. Empty in production. */
  bootNotices: string[];
}

/**
 * Outside production, generates what is unset: a signing key "dev", the admin API key, and,
 * on the in-memory store without declared tenants, a tenant "dev" (a persistent store keeps the
 * first run's); bootNotices tell how to use them.
 * An unset TURN secret is generated in every mode (production refuses to start without one
 * while TURN is on, productionRefusals), so TURN credentials are never signed with a known value.
 */
export function bootstrapSecrets(
  { server, auth, store, turn }: Pick<ParsedSettings, 'server' | 'auth' | 'store' | 'turn'>,
  declaredTenants: readonly DeclaredTenant[],
): BootstrappedSecrets {
  const development = server.nodeEnv !== 'production';
  const bootNotices: string[] = [];
  const tenants = [...declaredTenants];

  let signingKeys = auth.signingKeys ?? [];
  if (!auth.signingKeys && development) {
    const secret = randomSecret();
    signingKeys = [{ kid: 'dev', secret }];
    bootNotices.push(
      `dev mode: generated an ephemeral signing key; export SIGNING_KEYS=dev:${secret} to mint tokens for this run: npm run -s token -- --tenant dev --room R`,
    );
  }

  let adminApiKey = auth.adminApiKey;
  if (!adminApiKey && development) {
    adminApiKey = randomSecret();
    bootNotices.push(`dev mode: ADMIN_API_KEY=${adminApiKey}`);
  }

  if (tenants.length === 0 && selectedStore(store) === 'memory' && development) {
    const apiSecret = randomSecret();
    tenants.push({ tenant_id: 'dev', name: 'Development tenant', api_key: 'dev', api_secret_sha256: sha256Hex(apiSecret) });
    bootNotices.push(`dev mode: tenant "dev" with api_key=dev api_secret=${apiSecret}`);
  }

  return { signingKeys, adminApiKey, turnSecret: turn.secret || randomSecret(), tenants, bootNotices };
}
