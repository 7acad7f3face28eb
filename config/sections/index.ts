/**
 * Every setting, section by section, as one schema over the setting names. Its output groups
 * the values by Config section; resolving them into the Config (schema.ts) is the next step.
 */
import { z } from 'zod';
import { readSection, shapeOf, type Section, type SectionValues } from '../setting.js';
import { authSettings } from './auth.js';
import { clusterSettings } from './cluster.js';
import { httpSettings } from './http.js';
import { observabilitySettings } from './observability.js';
import { rateLimitSettings } from './rateLimits.js';
import { roomSettings } from './rooms.js';
import { serverSettings } from './server.js';
import { sfuSettings } from './sfu.js';
import { socketSettings } from './socket.js';
import { sessionSettings, storeSettings } from './store.js';
import { turnSettings } from './turn.js';
import { webhookSettings } from './webhooks.js';

/** In this order settings are listed (SETTING_NAMES) and their problems reported. */
const SECTIONS = {
  server: serverSettings,
  http: httpSettings,
  observability: observabilitySettings,
  auth: authSettings,
  store: storeSettings,
  sessions: sessionSettings,
  cluster: clusterSettings,
  rooms: roomSettings,
  socket: socketSettings,
  rateLimits: rateLimitSettings,
  webhooks: webhookSettings,
  turn: turnSettings,
  sfu: sfuSettings,
};

type Sections = typeof SECTIONS;

/** The parsed settings by section and field. */
export type ParsedSettings = { [Name in keyof Sections]: SectionValues<Sections[Name]> };

const sections: Section[] = Object.values(SECTIONS);

/** Every setting name the environment (or CONFIG_FILE) may carry. */
export const SETTING_NAMES: readonly string[] = sections.flatMap((section) => Object.values(section).map(({ name }) => name));

// Each name parses into exactly one field.
if (new Set(SETTING_NAMES).size !== SETTING_NAMES.length) throw new Error('config: a setting name is declared twice');

/** Values keyed by setting name in; out, the same values by section and Config field. */
export const settingsSchema = z
  .object(shapeOf(sections))
  .transform(
    (parsed) =>
      Object.fromEntries(Object.entries(SECTIONS).map(([name, section]) => [name, readSection(section, parsed)])) as ParsedSettings,
  );
