/**
 * Builds the Authenticode PKCS#7 SignedData for a cabinet digest: SpcIndirectDataContent (CAB
 * data type, "<<<Obsolete>>>" link, the file digest), signed attributes as signtool and
 * osslsigncode write them, one SignerInfo, and the certificates. Pure except for the signing call.
 */
import { createHash, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { DER_TAG, derElement, derNull, derOctetString, derOid, derSequence, derSetOf, derTime } from './der.ts';
import { OID, oidForDigestName, type DigestName } from './oids.ts';
import type { CertInfo } from './certificate.ts';

/** The SpcLink Authenticode puts in a cabinet's indirect data (SpcLink.file, unicode). */
export const SPC_OBSOLETE_LINK_TEXT = '<<<Obsolete>>>';

export interface SignatureInput {
  readonly digest: Uint8Array;
  readonly digestAlgorithm: DigestName;
  readonly signer: CertInfo;
  /** Certificates to embed after the signer (intermediates; the root may be left out). */
  readonly chain: readonly CertInfo[];
  readonly privateKey: KeyObject;
  readonly signingTime: Date;
}

function utf16be(text: string): Buffer {
  const le = Buffer.from(text, 'utf16le');
  const be = Buffer.alloc(le.length);
  for (let i = 0; i < le.length; i += 2) {
    be[i] = le[i + 1] as number;
    be[i + 1] = le[i] as number;
  }
  return be;
}

function algorithmIdentifier(oid: string, withNullParams: boolean): Buffer {
  return withNullParams ? derSequence(derOid(oid), derNull()) : derSequence(derOid(oid));
}

/** SpcIndirectDataContent ::= SEQUENCE { data SpcAttributeTypeAndOptionalValue, messageDigest DigestInfo } */
export function indirectDataContent(digest: Uint8Array, digestAlgorithm: DigestName): Buffer {
  // SpcLink ::= CHOICE { …, file [2] EXPLICIT SpcString }; SpcString ::= CHOICE { unicode [0] IMPLICIT BMPString, … }
  const link = derElement(DER_TAG.context2, derElement(DER_TAG.context0Primitive, utf16be(SPC_OBSOLETE_LINK_TEXT)));
  return derSequence(
    derSequence(derOid(OID.spcCabData), link),
    derSequence(algorithmIdentifier(oidForDigestName(digestAlgorithm), true), derOctetString(digest)),
  );
}

function attribute(oid: string, value: Uint8Array): Buffer {
  return derSequence(derOid(oid), derSetOf([value]));
}

function signatureAlgorithmFor(key: KeyObject): Buffer {
  if (key.asymmetricKeyType === 'rsa') return algorithmIdentifier(OID.rsaEncryption, true);
  if (key.asymmetricKeyType === 'ec') return algorithmIdentifier(OID.ecdsaWithSha256, false);
  throw new Error(`unsupported signing key type ${key.asymmetricKeyType ?? 'unknown'} (use RSA or EC)`);
}

/** DER of the ContentInfo (not yet padded). */
export function buildAuthenticodeSignature(input: SignatureInput): Buffer {
  const { digestAlgorithm, signer, privateKey } = input;
  if (privateKey.asymmetricKeyType === 'ec' && digestAlgorithm !== 'sha256') {
    throw new Error('EC keys are signed with SHA-256 only');
  }
  const content = indirectDataContent(input.digest, digestAlgorithm);
  const contentBody = content.subarray(content.length - contentLengthOf(content));
  const attrs = [
    attribute(OID.contentType, derOid(OID.spcIndirectDataContent)),
    attribute(OID.signingTime, derTime(input.signingTime)),
    attribute(OID.spcStatementType, derSequence(derOid(OID.spcIndividualCodeSigning))),
    attribute(OID.spcSpOpusInfo, derSequence()),
    attribute(OID.messageDigest, derOctetString(createHash(digestAlgorithm).update(contentBody).digest())),
  ];
  const signedAttrsSet = derSetOf(attrs);
  const signature = cryptoSign(digestAlgorithm, signedAttrsSet, privateKey);
  const signedAttrsImplicit = Buffer.from(signedAttrsSet);
  signedAttrsImplicit[0] = DER_TAG.context0; // [0] IMPLICIT in the SignerInfo

  const digestAlgId = algorithmIdentifier(oidForDigestName(digestAlgorithm), true);
  const signerInfo = derSequence(
    derElement(DER_TAG.integer, Uint8Array.of(1)),
    derSequence(signer.issuerDer, derElement(DER_TAG.integer, signer.serialBytes)),
    digestAlgId,
    signedAttrsImplicit,
    signatureAlgorithmFor(privateKey),
    derOctetString(signature),
  );
  const certificates = [signer, ...input.chain].filter((c, i, all) => all.findIndex((o) => o.der.equals(c.der)) === i);
  const signedData = derSequence(
    derElement(DER_TAG.integer, Uint8Array.of(1)),
    derSetOf([digestAlgId]),
    derSequence(derOid(OID.spcIndirectDataContent), derElement(DER_TAG.context0, content)),
    derElement(DER_TAG.context0, ...certificates.map((c) => c.der)),
    derSetOf([signerInfo]),
  );
  return derSequence(derOid(OID.signedData), derElement(DER_TAG.context0, signedData));
}

/** Length of a DER element's contents, from its length octets. */
function contentLengthOf(element: Uint8Array): number {
  const first = element[1] as number;
  if (first < 0x80) return first;
  let n = 0;
  for (let i = 0; i < (first & 0x7f); i++) n = n * 256 + (element[2 + i] as number);
  return n;
}
