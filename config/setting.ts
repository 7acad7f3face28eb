/**
 * How a setting is declared: setting(NAME, schema) ties a Config field to the name it has in
 * the environment and in CONFIG_FILE, and to the zod schema that parses its value (bounds,
 * default and error messages included). A section is an object of such declarations keyed by
 * Config field, so each setting is written down once; its doc comment travels with the field
 * into the Config type. Also the value parsers the sections share.
 */
import { z } from 'zod';

export interface Setting<Schema extends z.ZodType = z.ZodType> {
  /** The environment and CONFIG_FILE name. */
  readonly name: string;
  readonly schema: Schema;
}

export function setting<Schema extends z.ZodType>(name: string, schema: Schema): Setting<Schema> {
  return { name, schema };
}

/** Setting declarations keyed by the Config field each one fills. */
export type Section = Record<string, Setting>;

/** The values a section's settings parse to, by field. */
export type SectionValues<S extends Section> = { [Field in keyof S]: z.output<S[Field]['schema']> };

/** The parsers of these sections' settings, keyed by setting name. */
export function shapeOf(sections: readonly Section[]): Record<string, z.ZodType> {
  return Object.fromEntries(sections.flatMap((section) => Object.values(section).map(({ name, schema }) => [name, schema])));
}

/** A section's values out of values keyed by setting name, which shapeOf() parsed. */
export function readSection<S extends Section>(section: S, parsed: Record<string, unknown>): SectionValues<S> {
  return Object.fromEntries(Object.entries(section).map(([field, { name }]) => [field, parsed[name]])) as SectionValues<S>;
}

// ---- value parsers (environment values are strings; CONFIG_FILE may give numbers, booleans, arrays) ----

/** true/false, 1/0, yes/no, on/off, or a boolean from the file. */
export const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes' || v === 'on');

export const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const port = int(0, 65535);

/** Comma-separated in the environment or an array in the file; entries trimmed, blanks dropped. */
export const list = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean));

/** A list whose entries must each pass `accepts`; every entry that does not is one problem, `problem(entry)`. */
export function listOf(accepts: (entry: string) => boolean, problem: (entry: string) => string) {
  return list.superRefine((entries, ctx) => {
    for (const entry of entries) if (!accepts(entry)) ctx.addIssue({ code: 'custom', message: problem(entry) });
  });
}

export const isIpAddress = (value: string): boolean => z.ipv4().safeParse(value).success || z.ipv6().safeParse(value).success;
export const isCidr = (value: string): boolean => z.cidrv4().safeParse(value).success || z.cidrv6().safeParse(value).success;

export const ipAddress = z.string().refine(isIpAddress, 'must be an IP address');

/** CIDRs, IPv4 or IPv6; none by default. */
export const cidrList = listOf(isCidr, (entry) => `"${entry.slice(0, 64)}" must be a CIDR like 127.0.0.0/8`).default(() => []);

/** A shared secret or key given by the operator. */
export const secret = z.string().min(32, 'must be at least 32 characters');
