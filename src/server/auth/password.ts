/**
 * Password hashing with scrypt (node:crypto), a memory-hard KDF: N = 2^15, r = 8, p = 1 costs
 * 32 MiB and about 50-100 ms per guess on a server core (OWASP's 2023 minimum is N = 2^17 with
 * r = 8 at 128 MiB, or N = 2^15 paired with more parallelism; we take 2^15/8/1 so a login
 * burst of a few users cannot push a 1 GB server into swap; docs/decisions.md). The parameters travel
 * inside the stored hash, so raising them later re-hashes nobody and breaks nobody.
 *
 * Format: `scrypt$<log2 N>$<r>$<p>$<salt base64>$<hash base64>`.
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  readonly log2N: number;
  readonly r: number;
  readonly p: number;
}

export const SCRYPT_PARAMS: ScryptParams = Object.freeze({ log2N: 15, r: 8, p: 1 });
const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Longest password accepted: scrypt's cost is independent of length, but a 1 MB body is not a password. */
export const MAX_PASSWORD_CHARS = 1024;
export const MIN_PASSWORD_CHARS = 8;

function scrypt(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const N = 2 ** params.log2N;
  // scrypt needs 128·N·r bytes; node refuses above maxmem (default 32 MiB), so allow twice that.
  const options: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 256 * N * params.r };
  return new Promise((resolve, reject) => {
    scryptCallback(password.normalize('NFC'), salt, KEY_BYTES, options, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

/** @example await hashPassword('correct horse') // 'scrypt$15$8$1$…$…' */
export async function hashPassword(password: string, params: ScryptParams = SCRYPT_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scrypt(password, salt, params);
  return ['scrypt', params.log2N, params.r, params.p, salt.toString('base64'), key.toString('base64')].join('$');
}

/** True when the password matches the stored hash; false for a malformed hash (never throws on input). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [log2N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![log2N, r, p].every((n) => Number.isInteger(n) && n > 0) || log2N > 22) return false;
  const salt = Buffer.from(parts[4]!, 'base64');
  const expected = Buffer.from(parts[5]!, 'base64');
  const actual = await scrypt(password, salt, { log2N, r, p });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A hash of a random password: compared against when the user does not exist, so timing tells nothing. */
let decoy: Promise<string> | undefined;
export function decoyHash(): Promise<string> {
  decoy ??= hashPassword(randomBytes(16).toString('hex'));
  return decoy;
}
