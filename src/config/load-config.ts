import { readFile } from 'node:fs/promises';
import { Value } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { DisklessError } from '../errors/index.js';
import { ConfigSchema, type Config } from './schema.js';
import { checkConfigSemantics } from './check-semantics.js';

/**
 * Reads, defaults and validates a configuration. Every failure is a DisklessError
 * CONFIG_INVALID whose message names the key (`dhcp.mode`), the value given and what is
 * allowed, and whose data holds `{ key, value, allowed }`. Called once at start-up.
 */
export async function loadConfigFile(path: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new DisklessError('CONFIG_NOT_FOUND', `cannot read configuration file ${path}: ${(err as Error).message}`, { path }, { cause: err });
  }
  return parseConfig(text, path);
}

/** Parses YAML text (an empty document means "all defaults") and validates it. */
export function parseConfig(text: string, source = '<config>'): Config {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true }) ?? {};
  } catch (err) {
    const line = err instanceof YAMLParseError ? err.linePos?.[0]?.line : undefined;
    throw new DisklessError('CONFIG_SYNTAX', `${source}${line ? `:${line}` : ''}: not valid YAML: ${(err as Error).message.split('\n')[0]}`, { source, line }, { cause: err });
  }
  return validateConfig(raw, source);
}

/** Applies defaults to a plain object and validates it against the schema and the cross-key rules. */
export function validateConfig(raw: unknown, source = '<config>'): Config {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw invalid(source, '(top level)', raw, 'a mapping of keys');
  }
  const withDefaults = Value.Default(ConfigSchema, Value.Clone(raw));
  const first = Value.Errors(ConfigSchema, withDefaults).First();
  if (first) {
    const key = pointerToKey(first.path);
    throw invalid(source, key, first.value, describeAllowed(first.schema, first.message, withDefaults, first.path));
  }
  const config = withDefaults as Config;
  normalise(config);
  checkConfigSemantics(config, (key, value, allowed) => invalid(source, key, value, allowed));
  return config;
}

function invalid(source: string, key: string, value: unknown, allowed: string): DisklessError {
  const shown = value === undefined ? '(missing)' : JSON.stringify(value);
  return new DisklessError('CONFIG_INVALID', `${source}: key ${key}: value ${shown} is not allowed; allowed: ${allowed}`, {
    source,
    key,
    value,
    allowed,
  });
}

function pointerToKey(path: string): string {
  if (path === '') return '(top level)';
  return path
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join('');
}

function describeAllowed(schema: TSchema, message: string, root: unknown, path: string): string {
  const s = schema as TSchema & Record<string, unknown>;
  if (Array.isArray(s.anyOf)) {
    const consts = (s.anyOf as Array<Record<string, unknown>>).filter((x) => 'const' in x).map((x) => String(x.const));
    if (consts.length === (s.anyOf as unknown[]).length) return `one of ${consts.join(', ')}`;
    return (s.description as string | undefined) ?? message;
  }
  if (message.toLowerCase().includes('unexpected property')) {
    const parentPath = path.slice(0, path.lastIndexOf('/'));
    const parent = parentPath === '' ? ConfigSchema : schemaAt(ConfigSchema, parentPath, root);
    const keys = parent && typeof parent === 'object' && 'properties' in parent ? Object.keys(parent.properties as object) : [];
    return `no such key; known keys here: ${keys.join(', ')}`;
  }
  const parts: string[] = [];
  if (s.type) parts.push(String(s.type));
  if (typeof s.minimum === 'number' || typeof s.maximum === 'number') parts.push(`from ${s.minimum ?? '-∞'} to ${s.maximum ?? '∞'}`);
  if (typeof s.description === 'string') parts.push(`(${s.description})`);
  if (Array.isArray(s.examples)) parts.push(`e.g. ${String(s.examples[0])}`);
  return parts.length ? parts.join(' ') : message;
}

function schemaAt(schema: TSchema, pointer: string, _root: unknown): TSchema | undefined {
  let cur: TSchema | undefined = schema;
  for (const part of pointer.slice(1).split('/')) {
    if (!cur) return undefined;
    const c = cur as Record<string, unknown>;
    if (/^\d+$/.test(part) && c.items) cur = c.items as TSchema;
    else cur = (c.properties as Record<string, TSchema> | undefined)?.[part];
  }
  return cur;
}

/** Canonical forms the rest of the code relies on: lower-case colon MACs (nodes, AoE allow lists). */
function normalise(config: Config): void {
  const canonical = (mac: string) => mac.toLowerCase().replace(/-/g, ':');
  for (const node of config.nodes) node.mac = canonical(node.mac);
  for (const e of config.aoe.exports) if (e.allow) e.allow = e.allow.map(canonical);
}
