/**
 * Certificate path building and validation for Authenticode: from the signer up to one of the
 * trusted roots, with every certificate valid at the given time, issuers that are CAs allowed
 * to sign certificates, and the purpose (code signing, time stamping) allowed all along.
 * Pure apart from the signature checks node's X509Certificate performs. No revocation checking.
 */
import { OID } from './oids.ts';
import { sameCertificate, type CertInfo } from './certificate.ts';

/** Longest path tried (leaf + intermediates + root); real Authenticode chains have 3–4. */
export const MAX_CHAIN_LENGTH = 8;
/**
 * Issuer checks allowed per search. Certificates in a signature are attacker-supplied; without a
 * budget, a few dozen certificates cross-signing each other would make the depth-first search explode.
 */
export const MAX_CHAIN_SEARCH_STEPS = 2000;

export type ChainResult =
  { readonly ok: true; readonly chain: readonly CertInfo[] } | { readonly ok: false; readonly reason: string };

function validityProblem(cert: CertInfo, at: Date): string | undefined {
  if (at < cert.notBefore || at > cert.notAfter) {
    return `certificate "${cert.subject}" was not valid at ${at.toISOString()} (valid ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()})`;
  }
  return undefined;
}

function purposeAllowed(cert: CertInfo, purpose: string): boolean {
  const eku = cert.extendedKeyUsage;
  return eku === undefined || eku.includes(purpose) || eku.includes(OID.ekuAny);
}

/** Why a complete path (leaf first, trusted root last) is unacceptable, or undefined when it is fine. */
export function pathProblem(path: readonly CertInfo[], at: Date, purpose: string): string | undefined {
  const leaf = path[0];
  if (!leaf) return 'empty certificate path';
  const purposeName =
    purpose === OID.ekuCodeSigning ? 'code signing' : purpose === OID.ekuTimeStamping ? 'time stamping' : purpose;
  if (!leaf.extendedKeyUsage?.includes(purpose)) {
    return `the signer certificate "${leaf.subject}" is not valid for ${purposeName} (its extended key usage lacks ${purpose})`;
  }
  if (leaf.keyUsage && !leaf.keyUsage.digitalSignature) {
    return `the signer certificate "${leaf.subject}" may not make digital signatures (key usage)`;
  }
  for (const [i, cert] of path.entries()) {
    const problem = validityProblem(cert, at);
    if (problem) return problem;
    if (i === 0) continue;
    if (!cert.isCa) return `"${cert.subject}" issued a certificate but is not a CA`;
    if (cert.keyUsage && !cert.keyUsage.keyCertSign) return `"${cert.subject}" may not sign certificates (key usage)`;
    // pathLen counts the intermediate CAs below this one (the leaf is not counted).
    if (cert.pathLen !== undefined && i - 1 > cert.pathLen)
      return `"${cert.subject}" allows a path length of ${cert.pathLen} only`;
    if (!purposeAllowed(cert, purpose))
      return `"${cert.subject}" is not allowed to issue certificates for ${purposeName}`;
  }
  return undefined;
}

function issued(child: CertInfo, issuer: CertInfo): boolean {
  return child.x509.checkIssued(issuer.x509) && child.x509.verify(issuer.x509.publicKey);
}

/**
 * Builds a path from `leaf` to one of `roots`, trying every candidate issuer (depth first) and
 * returning the first path that passes pathProblem, or the most telling reason none did.
 *
 * @example buildChain(signer, embeddedCerts, defaultRoots, signingTime, OID.ekuCodeSigning)
 */
export function buildChain(
  leaf: CertInfo,
  intermediates: readonly CertInfo[],
  roots: readonly CertInfo[],
  at: Date,
  purpose: string,
): ChainResult {
  let bestReason: string | undefined; // a complete path that failed a check says more than "no issuer"
  // Roots first; a certificate both embedded and shipped is one candidate, not two branches.
  const pool = [...roots, ...intermediates].filter((c, i, all) => all.findIndex((o) => sameCertificate(o, c)) === i);
  let steps = 0;

  const extend = (path: CertInfo[]): readonly CertInfo[] | undefined => {
    const current = path[path.length - 1] as CertInfo;
    if (roots.some((r) => sameCertificate(r, current))) {
      const problem = pathProblem(path, at, purpose);
      if (!problem) return path;
      bestReason ??= problem;
      return undefined;
    }
    if (path.length >= MAX_CHAIN_LENGTH) return undefined;
    for (const candidate of pool) {
      if (path.some((p) => sameCertificate(p, candidate))) continue;
      if (++steps > MAX_CHAIN_SEARCH_STEPS) {
        bestReason ??= `the signature carries too many certificates to search for a chain (over ${MAX_CHAIN_SEARCH_STEPS} issuer checks)`;
        return undefined;
      }
      if (!issued(current, candidate)) continue;
      const found = extend([...path, candidate]);
      if (found) return found;
    }
    return undefined;
  };

  const chain = extend([leaf]);
  if (chain) return { ok: true, chain };
  return {
    ok: false,
    reason: bestReason ?? `no trusted root certificate issued the chain of "${leaf.subject}" (issuer "${leaf.issuer}")`,
  };
}
