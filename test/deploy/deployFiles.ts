/**
 * What the deploy-kit tests read: the repository's deploy files, the config schema's setting
 * names and defaults, and small parsers for an env file and a Dockerfile.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { SETTING_NAMES } from '../../config/index.js';
import { settingsSchema } from '../../config/sections/index.js';

/** A path of the repository. */
export function repoPath(relative: string): string {
  return fileURLToPath(new URL(`../../${relative}`, import.meta.url));
}

export function readRepoFile(relative: string): string {
  return readFileSync(repoPath(relative), 'utf8');
}

/** One YAML document of the repository; throws with the parser's message when it does not parse. */
export function readYaml(relative: string): unknown {
  return parseYaml(readRepoFile(relative), { strict: true, uniqueKeys: true });
}

/** Every setting name the config schema declares. */
export const settingNames: ReadonlySet<string> = new Set(SETTING_NAMES);

/** The names among `names` that are no setting of the config schema. */
export function unknownSettings(names: Iterable<string>): string[] {
  return [...names].filter((name) => !settingNames.has(name));
}

/** A setting's default as the schema parses an unset value (undefined where it has none). */
export function settingDefault(name: string): unknown {
  const schema = settingsSchema.in.shape[name];
  if (!schema) throw new Error(`${name} is no setting`);
  const parsed = schema.safeParse(undefined);
  if (!parsed.success) throw new Error(`${name} has no default`);
  return parsed.data;
}

/** Whether the schema accepts `value` (as the environment gives it) for the setting `name`. */
export function settingAccepts(name: string, value: string): boolean {
  const schema = settingsSchema.in.shape[name];
  if (!schema) throw new Error(`${name} is no setting`);
  return schema.safeParse(value).success;
}

/** KEY=value lines of an env file (comments and blank lines skipped), in order. */
export function parseEnvFile(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(trimmed);
    if (!match) throw new Error(`not a KEY=value line: ${trimmed}`);
    values.set(match[1] as string, match[2] as string);
  }
  return values;
}

/** Names of an env file's commented-out examples (`# NAME=value` lines), in order. */
export function commentedSettings(text: string): string[] {
  return [...text.matchAll(/^#\s*([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1] as string);
}

/** The word the deploy files put where an operator must put a secret of their own. */
export const PLACEHOLDER = 'CHANGE_ME';

/** The values with every placeholder replaced by a fresh 64-hex-character secret. */
export function fillPlaceholders(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).map(([name, value]) => [name, value.replaceAll(PLACEHOLDER, () => randomBytes(32).toString('hex'))]),
  );
}

export interface DockerInstruction {
  /** Upper-cased keyword: FROM, RUN, COPY, ENV, EXPOSE, ... */
  keyword: string;
  /** The rest of the instruction, continuation lines joined. */
  args: string;
  /** Index of the build stage (FROM) it belongs to. */
  stage: number;
}

/** A Dockerfile's instructions, with `\` continuations joined and comments dropped. */
export function parseDockerfile(text: string): DockerInstruction[] {
  const instructions: DockerInstruction[] = [];
  let stage = -1;
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = `${pending}${line}`.trim();
    pending = '';
    const match = /^(\w+)\s+(.*)$/.exec(full);
    if (!match) throw new Error(`not a Dockerfile instruction: ${full}`);
    const keyword = (match[1] as string).toUpperCase();
    if (keyword === 'FROM') stage++;
    instructions.push({ keyword, args: match[2] as string, stage });
  }
  return instructions;
}

/** NAME=value pairs of ENV instructions (the `ENV name=value ...` form). */
export function dockerEnv(instructions: DockerInstruction[]): Map<string, string> {
  const env = new Map<string, string>();
  for (const { args } of instructions.filter((i) => i.keyword === 'ENV')) {
    for (const pair of args.split(/\s+/)) {
      const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(pair);
      if (!match) throw new Error(`ENV ${args}: use the name=value form`);
      env.set(match[1] as string, match[2] as string);
    }
  }
  return env;
}
