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
