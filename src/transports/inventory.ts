/**
 * The inventory of real targets (`--inventory servers.yaml`) and `user@host[:port]` targets.
 *
 *     defaults: { user: patchline, port: 22, keyFile: ~/.ssh/id_ed25519 }
 *     hosts:
 *       web01: { address: 10.0.0.11 }
 *       sql01: { address: sql01.corp.example, user: dbadmin, passwordEnv: SQL01_PASSWORD }
 *     groups:
 *       sql: [sql01, sql02]
 *       night: [web, sql]        # groups may name groups
 *
 * `all` is every host. Secrets are never in the file or on the command line: a host names a key
 * file, an environment variable (`passwordEnv`) or a file (`passwordFile`) holding the password,
 * or nothing (the SSH agent). Host and group names are case-insensitive (Windows names are).
 * Errors are usage errors (exit 64) naming the file, line and field.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { usageError } from '../domain/errors.ts';

export const DEFAULT_SSH_PORT = 22;
/** The group every inventory has: every host. */
export const ALL_GROUP = 'all';

export type HostAuth =
  | { readonly kind: 'key'; readonly keyFile: string }
  | { readonly kind: 'passwordEnv'; readonly variable: string }
  | { readonly kind: 'passwordFile'; readonly path: string }
  /** No key or password named: the SSH agent (SSH_AUTH_SOCK), else the transport refuses. */
  | { readonly kind: 'agent' };

export interface InventoryHost {
  /** The name targets use (as written in the inventory, or the host part of user@host). */
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly user: string | null;
  readonly auth: HostAuth;
}

export interface Inventory {
  readonly source: string;
  /** By lower-case name. */
  readonly hosts: ReadonlyMap<string, InventoryHost>;
  /** Lower-case group name → lower-case host names (groups already expanded). */
  readonly groups: ReadonlyMap<string, readonly string[]>;
  readonly defaults: { readonly user: string | null; readonly port: number; readonly auth: HostAuth };
}

type Path = readonly (string | number)[];
class FieldError extends Error {
  constructor(
    readonly path: Path,
    message: string,
  ) {
    super(message);
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,252})$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HOST_FIELDS = ['address', 'port', 'user', 'keyFile', 'passwordEnv', 'passwordFile'] as const;

function text(obj: Record<string, unknown>, key: string, path: Path): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return String(v);
  if (typeof v !== 'string' || v.trim() === '') throw new FieldError([...path, key], 'must be a non-empty string');
  return v.trim();
}

function port(obj: Record<string, unknown>, path: Path, fallback: number): number {
  const v = obj.port;
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535)
    throw new FieldError([...path, 'port'], 'must be a port number from 1 to 65535');
  return v;
}

function checkFields(obj: Record<string, unknown>, path: Path): void {
  for (const key of Object.keys(obj)) {
    if (key === 'password')
      throw new FieldError(
        [...path, key],
        'passwords are not kept in the inventory: name an environment variable (passwordEnv) or a file (passwordFile) that holds it',
      );
    if (!(HOST_FIELDS as readonly string[]).includes(key))
      throw new FieldError([...path, key], `unknown field (known: ${HOST_FIELDS.join(', ')})`);
  }
}

function expandPath(p: string, baseDir: string): string {
  if (p === '~' || p.startsWith('~/')) return resolve(homedir(), p.slice(2));
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

function auth(obj: Record<string, unknown>, path: Path, baseDir: string, fallback: HostAuth | null): HostAuth {
  const keyFile = text(obj, 'keyFile', path);
  const passwordEnv = text(obj, 'passwordEnv', path);
  const passwordFile = text(obj, 'passwordFile', path);
  const given = [keyFile, passwordEnv, passwordFile].filter((v) => v !== undefined).length;
  if (given > 1) throw new FieldError(path, 'name one of keyFile, passwordEnv, passwordFile');
  if (keyFile !== undefined) return { kind: 'key', keyFile: expandPath(keyFile, baseDir) };
  if (passwordEnv !== undefined) {
    if (!ENV_NAME.test(passwordEnv))
      throw new FieldError([...path, 'passwordEnv'], 'must be an environment variable name (letters, digits, _)');
    return { kind: 'passwordEnv', variable: passwordEnv };
  }
  if (passwordFile !== undefined) return { kind: 'passwordFile', path: expandPath(passwordFile, baseDir) };
  return fallback ?? { kind: 'agent' };
}

function build(doc: unknown, source: string, baseDir: string): Inventory {
  if (!isRecord(doc))
    throw new FieldError([], 'the inventory must be a mapping with `hosts` (and optional `groups`, `defaults`)');
  for (const key of Object.keys(doc))
    if (!['hosts', 'groups', 'defaults'].includes(key))
      throw new FieldError([key], 'unknown field (known: hosts, groups, defaults)');
  const d = doc.defaults ?? {};
  if (!isRecord(d)) throw new FieldError(['defaults'], 'must be a mapping');
  checkFields(d, ['defaults']);
  if (d.address !== undefined) throw new FieldError(['defaults', 'address'], 'an address belongs to a host');
  const defaults = {
    user: text(d, 'user', ['defaults']) ?? null,
    port: port(d, ['defaults'], DEFAULT_SSH_PORT),
    auth: auth(d, ['defaults'], baseDir, null),
  };

  if (!isRecord(doc.hosts))
    throw new FieldError(
      ['hosts'],
      'is required: a mapping of host name to { address, port, user, keyFile | passwordEnv | passwordFile }',
    );
  const hosts = new Map<string, InventoryHost>();
  for (const [name, raw] of Object.entries(doc.hosts)) {
    const path = ['hosts', name];
    if (!HOST_NAME.test(name)) throw new FieldError(path, 'is not a host name (letters, digits, -, _, .)');
    if (hosts.has(name.toLowerCase()))
      throw new FieldError(
        path,
        `names the same host as ${hosts.get(name.toLowerCase())!.name} (names are case-insensitive)`,
      );
    const h = raw ?? {};
    if (!isRecord(h))
      throw new FieldError(path, 'must be a mapping (address, port, user, keyFile | passwordEnv | passwordFile)');
    checkFields(h, path);
    hosts.set(name.toLowerCase(), {
      name,
      address: text(h, 'address', path) ?? name,
      port: port(h, path, defaults.port),
      user: text(h, 'user', path) ?? defaults.user,
      auth: auth(h, path, baseDir, defaults.auth),
    });
  }

  const rawGroups = doc.groups ?? {};
  if (!isRecord(rawGroups))
    throw new FieldError(['groups'], 'must be a mapping of group name to a list of hosts and groups');
  const members = new Map<string, readonly string[]>();
  for (const [name, list] of Object.entries(rawGroups)) {
    if (name.toLowerCase() === ALL_GROUP)
      throw new FieldError(['groups', name], '`all` is every host and cannot be redefined');
    if (hosts.has(name.toLowerCase())) throw new FieldError(['groups', name], 'a group cannot have the name of a host');
    if (!Array.isArray(list)) throw new FieldError(['groups', name], 'must be a list of host and group names');
    list.forEach((m, i) => {
      if (
        typeof m !== 'string' ||
        (!hosts.has(m.toLowerCase()) && !Object.keys(rawGroups).some((g) => g.toLowerCase() === m.toLowerCase()))
      ) {
        throw new FieldError(
          ['groups', name, i],
          `${JSON.stringify(m)} is neither a host nor a group of this inventory`,
        );
      }
    });
    members.set(
      name.toLowerCase(),
      (list as string[]).map((m) => m.toLowerCase()),
    );
  }
  const groups = new Map<string, readonly string[]>([[ALL_GROUP, [...hosts.keys()]]]);
  const expand = (group: string, trail: readonly string[]): string[] => {
    if (trail.includes(group))
      throw new FieldError(['groups', group], `groups include each other in a loop: ${[...trail, group].join(' → ')}`);
    return (members.get(group) ?? []).flatMap((m) => (members.has(m) ? expand(m, [...trail, group]) : [m]));
  };
  for (const g of members.keys()) groups.set(g, [...new Set(expand(g, []))]);
  return { source, hosts, groups, defaults };
}

/**
 * Parses inventory text; `source` names the file in messages.
 *
 * @example parseInventory('hosts:\n  web01: { address: 10.0.0.11 }\n', 'servers.yaml').hosts.get('web01')?.port // 22
 */
export function parseInventory(text: string, source: string, baseDir: string = process.cwd()): Inventory {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const line = yamlError.linePos?.[0]?.line;
    throw usageError(
      'INVENTORY_INVALID',
      `${source}${line ? `:${line}` : ''}: not valid YAML: ${yamlError.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '')}`,
      { cause: yamlError, context: { file: source } },
    );
  }
  try {
    return build(doc.toJS(), source, baseDir);
  } catch (error) {
    if (!(error instanceof FieldError)) throw error;
    let line: number | undefined;
    for (let n = error.path.length; n >= 0 && line === undefined; n--) {
      const node = doc.getIn(error.path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === 'object' && node.range) line = lineCounter.linePos(node.range[0]).line;
    }
    const field =
      error.path
        .map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`))
        .join('')
        .replace(/^\./, '') || '(top level)';
    throw usageError('INVENTORY_INVALID', `${source}${line ? `:${line}` : ''}: ${field}: ${error.message}`, {
      context: { file: source, field, ...(line ? { line } : {}) },
    });
  }
}

/** Reads and parses an inventory file (relative key/password files are relative to it). */
export async function loadInventory(path: string): Promise<Inventory> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw usageError('INVENTORY_UNREADABLE', `cannot read the inventory ${path}: ${(error as Error).message}`, {
      cause: error,
      context: { file: path },
    });
  }
  return parseInventory(text, path, dirname(resolve(path)));
}

export interface TargetSpec {
  readonly user: string | null;
  readonly host: string;
  readonly port: number | null;
}

/**
 * Reads `host`, `user@host`, `host:port`, `user@host:port` (and `[v6]:port`).
 *
 * @example parseTarget('admin@web01:2222') // { user: 'admin', host: 'web01', port: 2222 }
 */
export function parseTarget(target: string): TargetSpec {
  const m = /^(?:([^@\s:]+)@)?(?:\[([0-9A-Fa-f:.]+)\]|([^@\s:[\]]+))(?::(\d+))?$/.exec(target.trim());
  const host = m?.[2] ?? m?.[3];
  const portText = m?.[4];
  const portNumber = portText === undefined ? null : Number(portText);
  if (
    !m ||
    host === undefined ||
    (!m[2] && !HOST_NAME.test(host)) ||
    (portNumber !== null && (portNumber < 1 || portNumber > 65535))
  ) {
    throw usageError(
      'USAGE_TARGET',
      `"${target}" is not a target: write a host or group name, user@host, or user@host:port`,
      { context: { target } },
    );
  }
  return { user: m[1] ?? null, host, port: portNumber };
}

/**
 * The hosts a run's targets name, in order, each once: inventory hosts, groups (`all`, `sql`, …),
 * or `user@host[:port]` (a host not in the inventory is reached by its name with the defaults).
 * Without an inventory only plain targets work. A bare name that is neither host nor group is an
 * error listing what the inventory knows: a typo must not patch nothing silently.
 */
export function resolveInventoryTargets(inventory: Inventory | null, targets: readonly string[]): InventoryHost[] {
  const out = new Map<string, InventoryHost>();
  const named = new Set<string>();
  const fallbackAuth: HostAuth = inventory?.defaults.auth ?? { kind: 'agent' };
  for (const target of targets) {
    const spec = parseTarget(target);
    const key = spec.host.toLowerCase();
    const group = spec.user === null && spec.port === null ? inventory?.groups.get(key) : undefined;
    if (group !== undefined) {
      for (const h of group) if (!out.has(h)) out.set(h, inventory!.hosts.get(h)!);
      continue;
    }
    const known = inventory?.hosts.get(key);
    if (known === undefined && inventory !== null && spec.user === null && spec.port === null) {
      const names = [...inventory.hosts.values()].slice(0, 5).map((h) => h.name);
      const groups = [...inventory.groups.keys()].slice(0, 5);
      throw usageError(
        'INVENTORY_UNKNOWN_TARGET',
        `"${target}" is neither a host nor a group of ${inventory.source} (hosts: ${names.join(', ')}${inventory.hosts.size > 5 ? ', …' : ''}; groups: ${groups.join(', ')}). Write user@${target} to reach a host that is not in the inventory.`,
        { context: { target, file: inventory.source } },
      );
    }
    const host: InventoryHost = known
      ? { ...known, user: spec.user ?? known.user, port: spec.port ?? known.port }
      : {
          name: spec.host,
          address: spec.host,
          port: spec.port ?? inventory?.defaults.port ?? DEFAULT_SSH_PORT,
          user: spec.user ?? inventory?.defaults.user ?? null,
          auth: fallbackAuth,
        };
    if (named.has(key)) throw usageError('USAGE_TARGET', `host ${host.name} is named twice`, { context: { target } });
    named.add(key);
    // A host a group already brought in keeps its place; an explicit user@/:port still applies.
    out.set(key, host);
  }
  return [...out.values()];
}
