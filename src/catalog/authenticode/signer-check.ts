/**
 * Checks one SignerInfo cryptographically: finds its certificate, compares the messageDigest
 * attribute with the content it signs, and verifies the signature over the signed attributes
 * with the certificate's key. Shared by the catalog signature and its timestamp.
 * Failures throw SignerCheckError (a malformed or invalid signature, never a trust question).
 */
import { createHash, verify as cryptoVerify } from 'node:crypto';
import { octets, oidOf } from './der.ts';
import { attributeValue, type SignerInfoParts } from './signed-data.ts';
import { findSignerCert, type CertInfo } from './certificate.ts';
import { OID, signatureHashFor } from './oids.ts';

export class SignerCheckError extends Error {
  override readonly name = 'SignerCheckError';
}

/**
 * @param signedContent the bytes whose hash the messageDigest attribute must equal
 * @param expectedContentType the contentType attribute required, or undefined to not check it
 * @returns the signer's certificate
 */
export function checkSigner(
  signer: SignerInfoParts,
  certs: readonly CertInfo[],
  signedContent: Uint8Array,
  expectedContentType: string | undefined,
  what: string,
): CertInfo {
  const cert = findSignerCert(certs, signer.sid);
  if (!cert) throw new SignerCheckError(`${what}: the signer's certificate is not in the signature`);
  if (!signer.signedAttrsDer) throw new SignerCheckError(`${what}: no signed attributes`);
  if (expectedContentType !== undefined) {
    const ct = attributeValue(signer.signedAttrs, OID.contentType);
    if (!ct || oidOf(ct, `${what} contentType`) !== expectedContentType) {
      throw new SignerCheckError(`${what}: the contentType attribute does not name the signed content`);
    }
  }
  const md = attributeValue(signer.signedAttrs, OID.messageDigest);
  if (!md) throw new SignerCheckError(`${what}: no messageDigest attribute`);
  const expected = createHash(signer.digestAlgorithm).update(signedContent).digest();
  if (!expected.equals(Buffer.from(octets(md, `${what} messageDigest`)))) {
    throw new SignerCheckError(`${what}: the messageDigest attribute does not match the signed content`);
  }
  const hash = signatureHashFor(signer.signatureAlgorithm, signer.digestAlgorithm);
  if (!hash) throw new SignerCheckError(`${what}: unsupported signature algorithm ${signer.signatureAlgorithm}`);
  let ok: boolean;
  try {
    ok = cryptoVerify(hash, signer.signedAttrsDer, cert.x509.publicKey, signer.signature);
  } catch (e) {
    throw new SignerCheckError(`${what}: the signature value cannot be checked (${(e as Error).message})`);
  }
  if (!ok) throw new SignerCheckError(`${what}: the signature value does not verify with the signer's key`);
  return cert;
}
