/**
 * Bearer secrets of people and scripts: API tokens (`plt_<id>_<secret>`), session ids and CSRF
 * tokens (agent credentials and enrollment tokens are the agent protocol's, src/domain/agent-protocol.ts).
 * Each is 256 random bits (tokens also carry a public id); the store keeps only the SHA-256 of the secret part, so a copy
 * of the database authenticates no one. A slow KDF adds nothing for secrets with that much
 * entropy (passwords are another matter: password.ts).
 *
 * @example const t = newCredential('plt'); // t.text = 'plt_k3v9…_Qx…' shown once; store t.id, t.hash
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SECRET_BYTES = 32;
const ID_BYTES = 8;
export const CREDENTIAL_PREFIXES = ['plt'] as const;
export type CredentialPrefix = (typeof CREDENTIAL_PREFIXES)[number];

export interface NewCredential {
  readonly id: string;
  /** The whole credential, shown once to its owner. */
  readonly text: string;
  readonly hash: string;
}

export const sha256Hex = (value: string): string => createHash('sha256').update(value, 'utf8').digest('hex');

/** A short random id: lower-case hex, safe in URLs and logs. */
export const newId = (bytes = ID_BYTES): string => randomBytes(bytes).toString('hex');

export const newSecret = (): string => randomBytes(SECRET_BYTES).toString('base64url');

export function newCredential(prefix: CredentialPrefix): NewCredential {
  const id = newId();
  const secret = newSecret();
  return { id, text: `${prefix}_${id}_${secret}`, hash: sha256Hex(secret) };
}

const CREDENTIAL_RE = /^(plt)_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** Splits a presented credential; undefined when it has not the shape of one of ours. */
export function parseCredential(text: string): { prefix: CredentialPrefix; id: string; secret: string } | undefined {
  const m = CREDENTIAL_RE.exec(text);
  return m ? { prefix: m[1] as CredentialPrefix, id: m[2]!, secret: m[3]! } : undefined;
}

/** Compares a presented secret with a stored hash in constant time. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(sha256Hex(secret), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
