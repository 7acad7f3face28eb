import type { Grants } from '../protocol/events.js';

/** No permission at all: every grant a token does not name is false. */
export const NO_GRANTS: Grants = {
  roomJoin: false,
  canPublish: false,
  canSubscribe: false,
  canPublishData: false,
  roomAdmin: false,
  hidden: false,
  canUpdateOwnMetadata: false,
};

/** Named grant presets. Operators may override or add presets in the config file (`roles`). */
export const DEFAULT_ROLES: Record<string, Grants> = {
  host: {
    ...NO_GRANTS,
    roomJoin: true,
    canPublish: true,
    canSubscribe: true,
    canPublishData: true,
    roomAdmin: true,
    canUpdateOwnMetadata: true,
  },
  presenter: { ...NO_GRANTS, roomJoin: true, canPublish: true, canSubscribe: true, canPublishData: true, canUpdateOwnMetadata: true },
  guest: { ...NO_GRANTS, roomJoin: true, canPublish: true, canSubscribe: true, canPublishData: true },
  /** One speaker of a guided tour: publishes its microphone and data, nothing else (canPublishSources). */
  guide: { ...NO_GRANTS, roomJoin: true, canPublish: true, canSubscribe: true, canPublishData: true, canPublishSources: ['microphone'] },
  listener: { ...NO_GRANTS, roomJoin: true, canSubscribe: true, canPublishData: true },
  recorder: { ...NO_GRANTS, roomJoin: true, canSubscribe: true, hidden: true },
};

/** The preset a token gets when its request names neither a role nor grants. */
export const DEFAULT_ROLE = 'guest';

/**
 * A token's grants: the role's preset (guest when neither role nor grants is given) with the
 * explicit grants over it; explicit grants alone start from none. Undefined for an unknown role.
 */
export function resolveGrants(
  roles: Readonly<Record<string, Grants>>,
  role: string | undefined,
  grants: Partial<Grants> | undefined,
): Grants | undefined {
  if (role !== undefined && !Object.hasOwn(roles, role)) return undefined;
  const presetName = role ?? (grants ? undefined : DEFAULT_ROLE);
  const preset = presetName !== undefined && Object.hasOwn(roles, presetName) ? roles[presetName] : undefined;
  return { ...NO_GRANTS, ...preset, ...grants };
}
