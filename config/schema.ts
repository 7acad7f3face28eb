/**
 * The Config: the settings (sections/) and CONFIG_FILE's roles and tenants, resolved. What
 * production refuses and ranges split over two settings are problems (checks.ts); secrets a run
 * left unset are generated (bootstrapSecrets); values whose default depends on other settings
 * are filled in. Problems are zod issues, so every one found is reported at once.
 */
import os from 'node:os';
import { z } from 'zod';
import { bootstrapSecrets } from './bootstrap.js';
import {
  portRangeProblems,
  productionRefusals,
  sfuPortProblems,
  storeSelectionProblems,
  storeWarnings,
  turnPortProblems,
  turnTlsConfigured,
  turnTlsProblems,
  turnTlsWarnings,
} from './checks.js';
import { mediaAddresses } from './mediaAddresses.js';
import { settingsSchema, type ParsedSettings } from './sections/index.js';
import { transportsPerTenant } from './sections/sfu.js';
import { selectedStore, staleAfterMs } from './sections/store.js';
import { defaultTenantLimits, fileOnlySchema, type FileOnlyValues } from './sections/tenants.js';

/** Input: setting values by name, and the file's roles and tenants. Issue paths start with "settings" or "file". */
const sourcesSchema = z.object({ settings: settingsSchema, file: fileOnlySchema });

/**
 * The Config from parsed values. zod runs it only once every value parsed, so cross-field
 * problems are looked for then; any found is an issue and no Config is built.
 */
function resolveConfig({ settings, file }: { settings: ParsedSettings; file: FileOnlyValues }, ctx: z.RefinementCtx) {
  const problems = [
    ...productionRefusals(settings),
    ...storeSelectionProblems(settings),
    ...portRangeProblems(settings),
    ...sfuPortProblems(settings),
    ...turnPortProblems(settings),
    ...turnTlsProblems(settings),
  ];
  for (const { setting, message } of problems) ctx.addIssue({ code: 'custom', path: ['settings', setting], message });
  if (problems.length > 0) return z.NEVER;

  const { server, http, auth, turn, sfu } = settings;
  const production = server.nodeEnv === 'production';
  const secrets = bootstrapSecrets(settings, file.tenants);
  const publicUrl = http.publicUrl ?? `http://localhost:${http.port}`;
  const media = mediaAddresses(settings, publicUrl, os.networkInterfaces());
  return {
    ...server,
    http: {
      ...http,
      /** PUBLIC_URL, else http://localhost:PORT; no trailing slash. */
      publicUrl,
      /** Allowed browser origins; ['*'] allows any (development's default; production's is PUBLIC_URL's origin). Requests without Origin (non-browser) pass. */
      corsOrigins: http.corsOrigins.length > 0 ? http.corsOrigins : production ? [new URL(publicUrl).origin] : ['*'],
    },
    /** The /metrics listener (METRICS_PORT on METRICS_HOST; port 0: on PORT) and ACCESS_LOG. */
    observability: settings.observability,
    auth: {
      ...auth,
      /** The first signs, all verify. */
      signingKeys: secrets.signingKeys,
      /** Unset in production when ADMIN_API_KEY is: the admin API is then closed. */
      adminApiKey: secrets.adminApiKey,
      /** The demo page's token route: never in production. */
      devTokenRoute: production ? false : (auth.devTokenRoute ?? true),
    },
    /** Grant presets by name. */
    roles: file.roles,
    /** Tenants from CONFIG_FILE (or development's "dev" tenant). */
    tenants: secrets.tenants,
    defaultTenantLimits: defaultTenantLimits(settings),
    store: {
      ...settings.store,
      /** STORE, else mongodb with MONGODB_URI, else redis with REDIS_URL, else memory. */
      kind: selectedStore(settings.store),
    },
    sessions: {
      ...settings.sessions,
      /** An open session not seen for this long is taken as lost. */
      staleAfterMs: staleAfterMs(settings.sessions.heartbeatMs),
    },
    cluster: {
      ...settings.cluster,
      /** REDIS_URL set: this node joins the cluster on it (registry, room leases, Socket.IO's Redis adapter); unset: one node, as before. */
      enabled: settings.store.redisUrl !== undefined,
      redisUrl: settings.store.redisUrl,
      /** A registry entry outlives its last heartbeat by three intervals. */
      nodeTtlMs: 3 * settings.cluster.heartbeatMs,
    },
    rooms: settings.rooms,
    socket: settings.socket,
    rateLimits: settings.rateLimits,
    webhooks: settings.webhooks,
    turn: {
      ...turn,
      /** TURN_RELAY_IP, else the address mediaAddresses() found relays bind. */
      relayIp: media.turnRelayIp,
      /** TURN_SECRET, else one generated for this run. */
      secret: secrets.turnSecret,
      /** TURN over TLS on TURN_TLS_PORT: TURN_TLS_CERT and TURN_TLS_KEY are set (and were readable at boot). */
      tlsEnabled: turnTlsConfigured(turn),
    },
    sfu: {
      ...sfu,
      /** SFU_ANNOUNCED_IP, else the address mediaAddresses() found browsers reach; unset for a specific listen address. */
      announcedIp: media.sfuAnnouncedIp,
      /** SFU_MAX_TRANSPORTS_PER_TENANT, else half the SFU port range. */
      maxTransportsPerTenant: transportsPerTenant(sfu),
    },
    /** Lines main.ts prints at boot (dev-mode generated credentials). Empty in production. */
    bootNotices: secrets.bootNotices,
    /** Settings the server guessed or could not know, logged as warnings at boot (production too). */
    bootWarnings: [...storeWarnings(settings), ...media.bootWarnings, ...turnTlsWarnings(settings)],
  };
}

export const configSchema = sourcesSchema.transform(resolveConfig);

export type Config = z.output<typeof configSchema>;

/** One problem line: "NAME: message" for a setting, "CONFIG_FILE path: message" for the file's roles and tenants. */
export function describeIssue(issue: z.core.$ZodIssue): string {
  const [source, ...path] = issue.path;
  const where = path.map(String).join('.');
  return source === 'file' ? `CONFIG_FILE ${where}: ${issue.message}` : `${where}: ${issue.message}`;
}
