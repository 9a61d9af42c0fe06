/**
 * The timestamp of an Authenticode signature: an RFC 3161 token (Microsoft attribute
 * 1.3.6.1.4.1.311.3.3.1) or a legacy PKCS#9 countersignature. A timestamp proves the signature
 * existed at its time, which is when the signer's chain must have been valid — so Microsoft
 * catalogs signed under code-signing CAs that have since expired still verify.
 * A malformed or cryptographically broken timestamp throws; one whose authority is not trusted
 * is reported as such and the caller falls back to another time.
 */
import { createHash } from 'node:crypto';
import { DerFormatError, octets, timeOf } from './der.ts';
import { attributeValue, parseSignedData, parseSignerInfo, parseTstInfo, type SignerInfoParts } from './signed-data.ts';
import { certFromDer, type CertInfo } from './certificate.ts';
import { buildChain } from './chain.ts';
import { checkSigner, SignerCheckError } from './signer-check.ts';
import { OID } from './oids.ts';

export type TimestampOutcome =
  | { readonly kind: 'none' }
  | { readonly kind: 'trusted'; readonly time: Date; readonly format: 'rfc3161' | 'legacy'; readonly authority: string }
  | { readonly kind: 'untrusted'; readonly time: Date; readonly reason: string };

export interface TimestampTrust {
  readonly intermediates: readonly CertInfo[];
  readonly roots: readonly CertInfo[];
}

/** Checks the first timestamp found on `signer` (RFC 3161 preferred). */
export function checkTimestamp(
  signer: SignerInfoParts,
  outerCerts: readonly CertInfo[],
  trust: TimestampTrust,
): TimestampOutcome {
  const token = attributeValue(signer.unsignedAttrs, OID.msRfc3161Timestamp);
  if (token) {
    const sd = parseSignedData(token, 'timestamp token');
    if (sd.contentType !== OID.tstInfo) throw new DerFormatError('timestamp token: content is not a TSTInfo');
    const tstDer = octets(sd.content, 'timestamp TSTInfo');
    const tsaSigner = sd.signerInfos[0];
    if (!tsaSigner) throw new DerFormatError('timestamp token: no signer');
    const certs = [...sd.certificates.map(certFromDer), ...outerCerts];
    const tsa = checkSigner(tsaSigner, certs, tstDer, OID.tstInfo, 'timestamp');
    const tst = parseTstInfo(tstDer);
    const imprint = createHash(tst.imprintAlgorithm).update(signer.signature).digest();
    if (!imprint.equals(Buffer.from(tst.imprint))) {
      throw new SignerCheckError('timestamp: it does not cover this signature (message imprint differs)');
    }
    return judge(tsa, certs, trust, tst.genTime, 'rfc3161');
  }
  const counter = attributeValue(signer.unsignedAttrs, OID.counterSignature);
  if (counter) {
    const cs = parseSignerInfo(counter, 'countersignature');
    // A legacy countersignature signs the hash of the outer signature value; its contentType is not fixed.
    const tsa = checkSigner(cs, outerCerts, signer.signature, undefined, 'countersignature');
    const time = timeOf(attributeValue(cs.signedAttrs, OID.signingTime), 'countersignature signingTime');
    return judge(tsa, outerCerts, trust, time, 'legacy');
  }
  return { kind: 'none' };
}

function judge(
  tsa: CertInfo,
  certs: readonly CertInfo[],
  trust: TimestampTrust,
  time: Date,
  format: 'rfc3161' | 'legacy',
): TimestampOutcome {
  const chain = buildChain(tsa, [...certs, ...trust.intermediates], trust.roots, time, OID.ekuTimeStamping);
  if (!chain.ok) return { kind: 'untrusted', time, reason: chain.reason };
  return { kind: 'trusted', time, format, authority: tsa.subject };
}
