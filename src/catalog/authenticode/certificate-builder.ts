/**
 * Issues X.509 v3 certificates with pkijs/asn1js for the structure and node:crypto for the RSA
 * signature, so the lab needs no openssl binary. Used by createLabRoot (a CA and a code-signing
 * leaf) and by tests that need other shapes (a timestamp authority, a leaf without EKU).
 */
import { createHash, randomBytes, sign as cryptoSign, X509Certificate, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { OID } from './oids.ts';
import { derOid, derSequence, derSetOf } from './der.ts';

const SERIAL_BYTES = 16;
const KEY_USAGE_BITS = { digitalSignature: 0x80, keyCertSign: 0x04, cRLSign: 0x02 } as const;

export interface CertificateSpec {
  /** Common name; the organisation is "Patchline Lab". */
  readonly subject: string;
  /** Common name of the issuer; equal to subject for a self-signed root. */
  readonly issuer: string;
  readonly publicKey: KeyObject;
  /** The issuer's RSA private key (the subject's own for a self-signed root). */
  readonly issuerKey: KeyObject;
  /** The issuer's public key, for the authority key identifier. */
  readonly issuerPublicKey: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** A CA (basicConstraints cA, keyCertSign) or an end entity (digitalSignature). */
  readonly ca: boolean;
  /** A CA's pathLenConstraint: how many CAs may follow it. Default 0 (it issues end entities only). */
  readonly pathLen?: number;
  /** Extended key usages of an end entity; none → no EKU extension. */
  readonly extendedKeyUsage?: readonly string[];
  /** RFC 3161 wants the timeStamping EKU marked critical. */
  readonly extendedKeyUsageCritical?: boolean;
}

function name(commonName: string): pkijs.RelativeDistinguishedNames {
  // One attribute per RDN (CN=…, O=…); pkijs's own encoder would put both in one multi-valued RDN.
  const rdn = (oid: string, value: string): Buffer =>
    derSetOf([derSequence(derOid(oid), Buffer.from(new asn1js.Utf8String({ value }).toBER(false)))]);
  return pkijs.RelativeDistinguishedNames.fromBER(
    derSequence(rdn(OID.commonName, commonName), rdn(OID.organizationName, 'Patchline Lab')),
  );
}

function extension(extnID: string, critical: boolean, value: asn1js.BaseBlock): pkijs.Extension {
  return new pkijs.Extension({ extnID, critical, extnValue: value.toBER(false) });
}

/** KeyUsage BIT STRING from its first byte (bit 0 = 0x80 digitalSignature … bit 6 = 0x02 cRLSign). */
function keyUsage(firstByte: number): asn1js.BitString {
  const unused = firstByte === 0 ? 0 : Math.log2(firstByte & -firstByte);
  return new asn1js.BitString({ valueHex: Uint8Array.of(firstByte).buffer, unusedBits: unused });
}

function keyId(publicKey: KeyObject): Buffer {
  // RFC 5280 §4.2.1.2 allows any unique value; a SHA-1 of the whole SubjectPublicKeyInfo is one.
  return createHash('sha1')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest();
}

/**
 * Builds and signs one certificate (sha256WithRSAEncryption); returns its PEM.
 *
 * @example issueCertificate({ subject: 'Lab Root', issuer: 'Lab Root', ca: true, … })
 */
export function issueCertificate(spec: CertificateSpec): string {
  const cert = new pkijs.Certificate();
  cert.version = 2;
  const serial = randomBytes(SERIAL_BYTES);
  // A positive INTEGER in minimal DER: high bit clear (else negative) and the first byte non-zero
  // (a leading 0x00 before a byte < 0x80 is not DER, and OpenSSL rejects the certificate).
  serial[0] = ((serial[0] as number) & 0x3f) | 0x40;
  cert.serialNumber = new asn1js.Integer({ valueHex: serial });
  cert.issuer = name(spec.issuer);
  cert.subject = name(spec.subject);
  cert.notBefore.value = spec.notBefore;
  cert.notAfter.value = spec.notAfter;
  cert.subjectPublicKeyInfo = pkijs.PublicKeyInfo.fromBER(spec.publicKey.export({ type: 'spki', format: 'der' }));
  const extensions = [
    extension(
      OID.basicConstraints,
      true,
      new pkijs.BasicConstraints(
        spec.ca ? { cA: true, pathLenConstraint: spec.pathLen ?? 0 } : { cA: false },
      ).toSchema(),
    ),
    extension(
      OID.keyUsage,
      true,
      keyUsage(spec.ca ? KEY_USAGE_BITS.keyCertSign | KEY_USAGE_BITS.cRLSign : KEY_USAGE_BITS.digitalSignature),
    ),
    extension(OID.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: keyId(spec.publicKey) })),
  ];
  if (spec.issuer !== spec.subject) {
    const aki = new pkijs.AuthorityKeyIdentifier({
      keyIdentifier: new asn1js.OctetString({ valueHex: keyId(spec.issuerPublicKey) }),
    });
    extensions.push(extension(OID.authorityKeyIdentifier, false, aki.toSchema()));
  }
  if (spec.extendedKeyUsage?.length) {
    const eku = new pkijs.ExtKeyUsage({ keyPurposes: [...spec.extendedKeyUsage] });
    extensions.push(extension(OID.extKeyUsage, spec.extendedKeyUsageCritical ?? false, eku.toSchema()));
  }
  cert.extensions = extensions;
  const algorithm = new pkijs.AlgorithmIdentifier({
    algorithmId: OID.sha256WithRsa,
    algorithmParams: new asn1js.Null(),
  });
  cert.signature = algorithm;
  cert.signatureAlgorithm = algorithm;
  const tbs = new Uint8Array(cert.encodeTBS().toBER(false));
  cert.tbsView = tbs;
  cert.signatureValue = new asn1js.BitString({ valueHex: cryptoSign('sha256', tbs, spec.issuerKey) });
  return new X509Certificate(Buffer.from(cert.toSchema(false).toBER(false))).toString();
}
