/**
 * Name-based UUIDs (RFC 9562 version 5, SHA-1) under a fixed Patchline namespace, so a scenario's
 * update keys and category names always map to the same GUIDs across runs and machines.
 */
import { createHash } from 'node:crypto';

/** The Patchline lab namespace (itself a random UUID fixed once; never change it: ids would move). */
export const PATCHLINE_LAB_NAMESPACE = '5b0f7d1e-3a52-4c8e-9e61-2d7a4f0c9b13';

/**
 * UUIDv5 of `name` under `namespace`, lower case.
 *
 * @example nameUuid('ssu-2026-11') // always the same GUID
 */
export function nameUuid(name: string, namespace: string = PATCHLINE_LAB_NAMESPACE): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest();
  hash[6] = ((hash[6] ?? 0) & 0x0f) | 0x50;
  hash[8] = ((hash[8] ?? 0) & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
