/**
 * X.509 certificates as the verifier needs them: node's X509Certificate for the crypto (issuer
 * checks, signature verification) plus the fields node 20 does not expose, read from the DER
 * (dates as Dates, key usage bits, path length, raw issuer name and serial for SignerInfo lookup).
 */
import { X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import { DerFormatError, childrenOf, decodeDer, isContext, octets, oidOf, timeOf, tlv } from './der.ts';
import { OID } from './oids.ts';

export interface CertInfo {
  readonly der: Buffer;
  readonly x509: X509Certificate;
  /** "CN=…, O=…" */
  readonly subject: string;
  readonly issuer: string;
  /** Upper-case hex, as Windows shows it. */
  readonly serial: string;
  readonly issuerDer: Uint8Array;
  readonly serialBytes: Uint8Array;
  readonly subjectKeyId: Uint8Array | undefined;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
  readonly pathLen: number | undefined;
  /** undefined when the certificate has no keyUsage extension (any use allowed). */
  readonly keyUsage: { readonly digitalSignature: boolean; readonly keyCertSign: boolean } | undefined;
  /** Extended key usage OIDs; undefined when the extension is absent. */
  readonly extendedKeyUsage: readonly string[] | undefined;
}

const KEY_USAGE_DIGITAL_SIGNATURE_BIT = 0x80;
const KEY_USAGE_KEY_CERT_SIGN_BIT = 0x04;

function nameText(x509Name: string): string {
  return x509Name.split('\n').filter(Boolean).join(', ');
}

interface TbsFields {
  readonly issuerDer: Uint8Array;
  readonly serialBytes: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: ReadonlyMap<string, Uint8Array>;
}

/**
 * The TBSCertificate fields node does not expose, read straight from the DER (asn1js decoding
 * only: pkijs's schema matching costs ~6 ms per certificate, which adds up across a chain pool).
 */
function tbsFields(der: Uint8Array): TbsFields {
  const what = 'certificate';
  const tbs = childrenOf(childrenOf(decodeDer(der, what).node, what, 3)[0], `${what} tbsCertificate`, 6);
  const offset = tbs[0] && isContext(tbs[0], 0) ? 1 : 0; // explicit version
  const serial = tbs[offset];
  const issuer = tbs[offset + 2];
  const validity = childrenOf(tbs[offset + 3], `${what} validity`, 2);
  if (!(serial instanceof asn1js.Integer) || !issuer) throw new DerFormatError(`${what}: bad serial number or issuer`);
  const extensions = new Map<string, Uint8Array>();
  const extsWrapper = tbs.slice(offset + 6).find((n) => isContext(n, 3));
  if (extsWrapper) {
    for (const ext of childrenOf(childrenOf(extsWrapper, `${what} extensions`, 1)[0], `${what} extensions`)) {
      const parts = childrenOf(ext, `${what} extension`, 2);
      extensions.set(
        oidOf(parts[0], `${what} extension id`),
        octets(parts[parts.length - 1], `${what} extension value`),
      );
    }
  }
  return {
    issuerDer: tlv(issuer),
    serialBytes: serial.valueBlock.valueHexView,
    notBefore: timeOf(validity[0], `${what} notBefore`),
    notAfter: timeOf(validity[1], `${what} notAfter`),
    extensions,
  };
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL } */
function basicConstraints(value: Uint8Array | undefined): { isCa: boolean; pathLen: number | undefined } {
  if (!value) return { isCa: false, pathLen: undefined };
  const items = childrenOf(decodeDer(value, 'basicConstraints').node, 'basicConstraints');
  const ca = items.find((n) => n instanceof asn1js.Boolean) as asn1js.Boolean | undefined;
  const len = items.find((n) => n instanceof asn1js.Integer) as asn1js.Integer | undefined;
  return { isCa: ca?.valueBlock.value === true, pathLen: len ? len.valueBlock.valueDec : undefined };
}

/** Parses one DER certificate; throws DerFormatError when it is not one. */
export function certFromDer(der: Uint8Array): CertInfo {
  const buf = Buffer.from(der);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(buf);
  } catch (e) {
    throw new DerFormatError(`not a valid X.509 certificate: ${(e as Error).message}`);
  }
  const tbs = tbsFields(buf);
  const kuValue = tbs.extensions.get(OID.keyUsage);
  // KeyUsage is a BIT STRING: first contents byte = unused bits, then the flags (bit 0 = 0x80).
  const kuByte = kuValue ? (octets(decodeDer(kuValue, 'keyUsage').node, 'keyUsage')[0] ?? 0) : 0;
  const ekuValue = tbs.extensions.get(OID.extKeyUsage);
  const eku = ekuValue
    ? childrenOf(decodeDer(ekuValue, 'extKeyUsage').node, 'extKeyUsage').map((n) => oidOf(n, 'extKeyUsage purpose'))
    : undefined;
  const skiValue = tbs.extensions.get(OID.subjectKeyIdentifier);
  const { isCa, pathLen } = basicConstraints(tbs.extensions.get(OID.basicConstraints));
  return {
    der: buf,
    x509,
    subject: nameText(x509.subject),
    issuer: nameText(x509.issuer),
    serial: x509.serialNumber.toUpperCase(),
    issuerDer: tbs.issuerDer,
    serialBytes: tbs.serialBytes,
    subjectKeyId: skiValue
      ? octets(decodeDer(skiValue, 'subjectKeyIdentifier').node, 'subjectKeyIdentifier')
      : undefined,
    notBefore: tbs.notBefore,
    notAfter: tbs.notAfter,
    isCa,
    pathLen,
    keyUsage: kuValue
      ? {
          digitalSignature: (kuByte & KEY_USAGE_DIGITAL_SIGNATURE_BIT) !== 0,
          keyCertSign: (kuByte & KEY_USAGE_KEY_CERT_SIGN_BIT) !== 0,
        }
      : undefined,
    extendedKeyUsage: eku,
  };
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;

/** Every certificate in a PEM text (a bundle may hold several). */
export function certsFromPem(pem: string): CertInfo[] {
  return [...pem.matchAll(PEM_BLOCK)].map((m) => certFromDer(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64')));
}

export function sameCertificate(a: CertInfo, b: CertInfo): boolean {
  return a.der.equals(b.der);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}

/** INTEGER contents may carry a leading zero byte; compare the numbers, not the encodings. */
function sameSerial(a: Uint8Array, b: Uint8Array): boolean {
  const strip = (x: Uint8Array): Buffer => {
    let i = 0;
    while (i < x.length - 1 && x[i] === 0) i++;
    return Buffer.from(x.subarray(i));
  };
  return strip(a).equals(strip(b));
}

/** The certificate a SignerInfo names, by issuer + serial or by subject key identifier. */
export function findSignerCert(
  certs: readonly CertInfo[],
  sid: { kind: 'issuer-serial'; issuer: Uint8Array; serial: Uint8Array } | { kind: 'key-id'; keyId: Uint8Array },
): CertInfo | undefined {
  return certs.find((c) =>
    sid.kind === 'issuer-serial'
      ? sameBytes(c.issuerDer, sid.issuer) && sameSerial(c.serialBytes, sid.serial)
      : c.subjectKeyId !== undefined && sameBytes(c.subjectKeyId, sid.keyId),
  );
}
