/**
 * Where setting values come from: the environment, over CONFIG_FILE (JSON or YAML) when it is
 * set. The file may use every setting name, plus roles and tenants, which only it can declare.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { SETTING_NAMES } from './sections/index.js';

export type Env = Record<string, string | undefined>;

export interface Sources {
  /** Values by setting name; a non-empty environment value wins over the file's. */
  settings: Record<string, unknown>;
  /** CONFIG_FILE's roles and tenants, unparsed. */
  file: { roles: unknown; tenants: unknown };
  /** The file that cannot be read or parsed, and names in it that are no setting. */
  problems: string[];
}

export function readSources(env: Env): Sources {
  const problems: string[] = [];
  const fileValues = env.CONFIG_FILE ? readConfigFile(env.CONFIG_FILE, problems) : {};
  const { roles, tenants, ...fileSettings } = fileValues;
  const known = new Set(SETTING_NAMES);
  const settings: Record<string, unknown> = { ...fileSettings };
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && value !== '' && known.has(name)) settings[name] = value;
  }
  for (const name of Object.keys(fileSettings)) {
    if (!known.has(name)) problems.push(`CONFIG_FILE: unknown setting "${name.slice(0, 64)}"`);
  }
  return { settings, file: { roles, tenants }, problems };
}

/** The file's top-level object; {} (and a problem) when it cannot be read or holds something else. */
function readConfigFile(path: string, problems: string[]): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    problems.push(`CONFIG_FILE: cannot read ${path}: ${(error as Error).message}`);
    return {};
  }
  try {
    const parsed: unknown = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      problems.push('CONFIG_FILE: must hold an object');
      return {};
    }
    return parsed as Record<string, unknown>;
  } catch (error) {
    problems.push(`CONFIG_FILE: cannot parse ${path}: ${(error as Error).message.split('\n')[0]}`);
    return {};
  }
}
