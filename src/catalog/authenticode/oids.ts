/**
 * Object identifiers used by Authenticode (Microsoft's "SPC" structures), CMS and X.509, and the
 * mapping between digest OIDs and node:crypto hash names. Named here once so the parser, the
 * verifier and the signer cannot disagree.
 */

export const OID = {
  signedData: '1.2.840.113549.1.7.2',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  /** Legacy (PKCS#9) countersignature: an Authenticode timestamp before RFC 3161. */
  counterSignature: '1.2.840.113549.1.9.6',
  /** Microsoft's RFC 3161 timestamp token attribute. */
  msRfc3161Timestamp: '1.3.6.1.4.1.311.3.3.1',
  tstInfo: '1.2.840.113549.1.9.16.1.4',
  spcIndirectDataContent: '1.3.6.1.4.1.311.2.1.4',
  spcStatementType: '1.3.6.1.4.1.311.2.1.11',
  spcSpOpusInfo: '1.3.6.1.4.1.311.2.1.12',
  spcIndividualCodeSigning: '1.3.6.1.4.1.311.2.1.21',
  /** SpcIndirectDataContent.data.type for cabinet files. */
  spcCabData: '1.3.6.1.4.1.311.2.1.25',
  /** Nested (dual) signature in the unsigned attributes. */
  spcNestedSignature: '1.3.6.1.4.1.311.2.4.1',
  ekuCodeSigning: '1.3.6.1.5.5.7.3.3',
  ekuTimeStamping: '1.3.6.1.5.5.7.3.8',
  ekuAny: '2.5.29.37.0',
  extKeyUsage: '2.5.29.37',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
} as const;

export const DIGEST_NAMES = ['sha1', 'sha256', 'sha384', 'sha512'] as const;
/** A node:crypto hash name Authenticode may use. MD5 is deliberately absent: it is refused. */
export type DigestName = (typeof DIGEST_NAMES)[number];

const DIGEST_BY_OID: Readonly<Record<string, DigestName>> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** Signature algorithm OIDs that fix the hash; plain rsaEncryption/ecPublicKey take it from the digest algorithm. */
const SIGNATURE_HASH_BY_OID: Readonly<Record<string, DigestName | 'from-digest'>> = {
  [OID.rsaEncryption]: 'from-digest',
  [OID.ecPublicKey]: 'from-digest',
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha1',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

export function digestNameForOid(oid: string): DigestName | undefined {
  return DIGEST_BY_OID[oid];
}

export function oidForDigestName(name: DigestName): string {
  const found = Object.entries(DIGEST_BY_OID).find(([, n]) => n === name);
  if (!found) throw new Error(`no OID for digest ${name}`);
  return found[0];
}

/**
 * The hash a SignerInfo's signature was made with, or undefined for algorithms Patchline does
 * not verify (RSA-PSS, DSA, MD5-based).
 */
export function signatureHashFor(signatureOid: string, digest: DigestName): DigestName | undefined {
  const h = SIGNATURE_HASH_BY_OID[signatureOid];
  if (h === undefined) return undefined;
  return h === 'from-digest' ? digest : h;
}
