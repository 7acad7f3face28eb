/**
 * What only CONFIG_FILE can declare: grant presets (roles) and tenants, for deployments
 * without a database. Their problems read "CONFIG_FILE <path>: ...".
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Grants } from '../../protocol/events.js';
import { partialGrants } from '../../protocol/schemas.js';
import { DEFAULT_ROLES, NO_GRANTS } from '../roles.js';
import { int } from '../setting.js';
import type { ParsedSettings } from './index.js';

export interface TenantLimitsConfig {
  max_rooms: number;
  max_participants: number;
  mesh_threshold: number;
  max_token_lifetime_s: number;
  auto_create_rooms: boolean;
  max_screen_shares: number;
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

/** Hex sha256, how API secrets are stored. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

const tenantLimits = z.strictObject({
  max_rooms: int(1, 1_000_000).optional(),
  max_participants: int(1, 10_000).optional(),
  mesh_threshold: int(1, 1000).optional(),
  max_token_lifetime_s: int(60, 30 * 24 * 3600).optional(),
  auto_create_rooms: z.boolean().optional(),
  max_screen_shares: int(0, 100).optional(),
});

/** One declared tenant; a plain api_secret is hashed here and goes no further. */
const declaredTenant = z
  .strictObject({
    tenant_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    name: z.string().max(256).optional(),
    api_key: z.string().min(8).max(128),
    api_secret: z.string().min(32).optional(),
    api_secret_sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
    limits: tenantLimits.optional(),
  })
  .refine((t) => Boolean(t.api_secret) !== Boolean(t.api_secret_sha256), 'give exactly one of api_secret or api_secret_sha256')
  .transform((t): DeclaredTenant => ({
    tenant_id: t.tenant_id,
    ...(t.name ? { name: t.name } : {}),
    api_key: t.api_key,
    api_secret_sha256: t.api_secret_sha256 ?? sha256Hex(t.api_secret as string),
    ...(t.limits ? { limits: t.limits } : {}),
  }));

/** Declared tenants; tenant ids and API keys are each unique. */
const declaredTenants = z
  .array(declaredTenant)
  .max(10_000)
  .superRefine((tenants, ctx) => {
    const tenantIds = new Set<string>();
    const apiKeys = new Set<string>();
    for (const t of tenants) {
      if (tenantIds.has(t.tenant_id)) ctx.addIssue({ code: 'custom', message: `tenant_id "${t.tenant_id}" appears twice` });
      if (apiKeys.has(t.api_key)) ctx.addIssue({ code: 'custom', message: 'an api_key appears twice' });
      tenantIds.add(t.tenant_id);
      apiKeys.add(t.api_key);
    }
  })
  .default(() => []);

/** The presets: DEFAULT_ROLES with the file's roles over them; a grant a role does not name is false. */
const roles = z
  .record(z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/), partialGrants)
  .optional()
  .transform((declared): Record<string, Grants> => {
    const presets: Record<string, Grants> = { ...DEFAULT_ROLES };
    for (const [name, grants] of Object.entries(declared ?? {})) presets[name] = { ...NO_GRANTS, ...grants };
    return presets;
  });

/** The keys CONFIG_FILE may hold besides setting names. */
export const fileOnlySchema = z.object({ roles, tenants: declaredTenants });

export type FileOnlyValues = z.output<typeof fileOnlySchema>;

/** The limits of a tenant that sets none: the server's room settings and token lifetime, 10,000 rooms, rooms created by a join. */
export function defaultTenantLimits({ rooms, auth }: Pick<ParsedSettings, 'rooms' | 'auth'>): TenantLimitsConfig {
  return {
    max_rooms: 10_000,
    max_participants: rooms.maxParticipants,
    mesh_threshold: rooms.meshThreshold,
    max_token_lifetime_s: auth.maxTokenLifetimeS,
    auto_create_rooms: true,
    max_screen_shares: rooms.maxScreenShares,
  };
}
