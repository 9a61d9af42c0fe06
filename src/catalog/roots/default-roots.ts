/**
 * The certificates Patchline trusts for Microsoft's signed catalog, shipped with the package
 * (README.md here records where each file came from and its SHA-256 fingerprint).
 * Roots are trust anchors; intermediates only help build a chain when a signature does not embed
 * them — they are never trusted on their own.
 */
import { readFileSync } from 'node:fs';

export const ROOT_FILES = ['microsoft-root-ca-2011.pem', 'microsoft-root-ca-2010.pem'] as const;

export const INTERMEDIATE_FILES = [
  'microsoft-code-signing-pca-2011.pem',
  'microsoft-windows-production-pca-2011.pem',
  'microsoft-code-signing-pca-2010.pem',
  'microsoft-time-stamp-pca-2010-2021.pem',
  'microsoft-time-stamp-pca-2010-2010.pem',
] as const;

function load(names: readonly string[]): string[] {
  return names.map((name) => readFileSync(new URL(`./${name}`, import.meta.url), 'utf8'));
}

/**
 * PEM texts of Microsoft Root Certificate Authority 2011 and 2010, the anchors of the code-signing
 * and timestamp chains Microsoft uses.
 *
 * @example await verifyCabSignature('wsusscn2.cab', { roots: defaultRoots() })
 */
export function defaultRoots(): string[] {
  return load(ROOT_FILES);
}

/** PEM texts of Microsoft's code-signing and time-stamp intermediate CAs (expired ones included: timestamps keep them useful). */
export function defaultIntermediates(): string[] {
  return load(INTERMEDIATE_FILES);
}
