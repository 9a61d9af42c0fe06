/**
 * Host-key checking for the SSH transport, in OpenSSH's known_hosts format, so an administrator can
 * share the file with `ssh` (`ssh -o UserKnownHostsFile=FILE`) and read it with `ssh-keygen -F`.
 *
 * A presented key is `known` (an entry for the host holds it), `unknown` (no entry for the host)
 * or `changed` (entries for the host exist, none holds it). Unknown keys are refused unless the
 * run accepts new keys (OpenSSH's `StrictHostKeyChecking accept-new`): then the key is appended.
 * A changed key is always refused. Fingerprints are OpenSSH's: `SHA256:` + unpadded base64.
 * Hashed entries (`|1|salt|hash`, HashKnownHosts) are read; new entries are written in clear.
 */
import { createHash, createHmac } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface KnownHostEntry {
  /** Host patterns as written (`web01`, `[10.0.0.5]:2222`, or a `|1|…` hash). */
  readonly hosts: readonly string[];
  readonly keyType: string;
  /** The public key blob (SSH wire format). */
  readonly key: Buffer;
  readonly revoked: boolean;
}

export type HostKeyVerdict =
  | { readonly status: 'known'; readonly fingerprint: string }
  | { readonly status: 'unknown'; readonly fingerprint: string; readonly keyType: string }
  | {
      readonly status: 'changed' | 'revoked';
      readonly fingerprint: string;
      readonly keyType: string;
      readonly expected: readonly string[];
    };

/** OpenSSH's fingerprint of a key blob. @example fingerprint(blob) // 'SHA256:hnVZ62zo…' */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside a key blob (its first SSH string), e.g. `ssh-ed25519`. */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const length = key.readUInt32BE(0);
  return key.length >= 4 + length ? key.subarray(4, 4 + length).toString('latin1') : 'unknown';
}

/** How known_hosts names a host: `name` on port 22, `[name]:port` otherwise. */
export function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Parses known_hosts text; comments, blank lines, @cert-authority lines and garbage are skipped. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let revoked = false;
    if (fields[0]?.startsWith('@')) {
      const marker = fields.shift();
      if (marker === '@revoked') revoked = true;
      else continue; // @cert-authority: certificates are not used by this transport
    }
    const [hosts, keyType, base64] = fields;
    if (hosts === undefined || keyType === undefined || base64 === undefined) continue;
    const key = Buffer.from(base64, 'base64');
    if (key.length === 0) continue;
    entries.push({ hosts: hosts.split(','), keyType, key, revoked });
  }
  return entries;
}

function matchesPattern(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    // HashKnownHosts: |1|base64(salt)|base64(HMAC-SHA1(salt, name))
    const [, , salt, hash] = pattern.split('|');
    if (salt === undefined || hash === undefined) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  if (pattern.startsWith('!')) return false;
  if (!/[*?]/.test(pattern)) return pattern.toLowerCase() === name.toLowerCase();
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  );
  return re.test(name);
}

/**
 * Judges the key a host presented against the entries for `pattern` (see hostPattern).
 *
 * @example verifyHostKey(parseKnownHosts(text), '[127.0.0.1]:2201', blob) // { status: 'known', … }
 */
export function verifyHostKey(entries: readonly KnownHostEntry[], pattern: string, key: Buffer): HostKeyVerdict {
  const presented = fingerprint(key);
  const keyType = keyTypeOf(key);
  const forHost = entries.filter((e) => e.hosts.some((h) => matchesPattern(h, pattern)));
  const revoked = entries.filter((e) => e.revoked && e.key.equals(key));
  if (revoked.length > 0) return { status: 'revoked', fingerprint: presented, keyType, expected: [] };
  if (forHost.some((e) => !e.revoked && e.key.equals(key))) return { status: 'known', fingerprint: presented };
  const others = forHost.filter((e) => !e.revoked);
  if (others.length === 0) return { status: 'unknown', fingerprint: presented, keyType };
  return { status: 'changed', fingerprint: presented, keyType, expected: others.map((e) => fingerprint(e.key)) };
}

/** One known_hosts line for a key. */
export function knownHostsLine(pattern: string, key: Buffer): string {
  return `${pattern} ${keyTypeOf(key)} ${key.toString('base64')}`;
}

/**
 * The transport's known_hosts file. Reads it afresh for every check (an administrator may fix it
 * while a run waits), and appends accepted keys one line at a time.
 */
export class KnownHostsFile {
  /** Appends of this process, in order, so two hosts accepted at once do not interleave. */
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  async entries(): Promise<KnownHostEntry[]> {
    try {
      return parseKnownHosts(await readFile(this.path, 'utf8'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  async check(pattern: string, key: Buffer): Promise<HostKeyVerdict> {
    await this.writing;
    return verifyHostKey(await this.entries(), pattern, key);
  }

  /** Records a key seen for the first time (accept-new). */
  add(pattern: string, key: Buffer): Promise<void> {
    this.writing = this.writing.then(async () => {
      await mkdir(dirname(this.path), { recursive: true });
      await appendFile(this.path, `${knownHostsLine(pattern, key)}\n`, { mode: 0o600 });
    });
    return this.writing;
  }
}
