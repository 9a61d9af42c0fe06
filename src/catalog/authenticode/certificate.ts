/**
 * X.509 certificates as the verifier needs them: node's X509Certificate for the crypto (issuer
 * checks, signature verification) plus the fields pkijs parses that node 20 does not expose
 * (dates as Dates, key usage bits, path length, raw issuer name and serial for SignerInfo lookup).
 */
import { X509Certificate } from 'node:crypto';
import * as pkijs from 'pkijs';
import * as asn1js from 'asn1js';
import { DerFormatError } from './der.ts';
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

/** Parses one DER certificate; throws DerFormatError when it is not one. */
export function certFromDer(der: Uint8Array): CertInfo {
  const buf = Buffer.from(der);
  let x509: X509Certificate;
  let cert: pkijs.Certificate;
  try {
    x509 = new X509Certificate(buf);
    cert = pkijs.Certificate.fromBER(buf);
  } catch (e) {
    throw new DerFormatError(`not a valid X.509 certificate: ${(e as Error).message}`);
  }
  const ext = (oid: string): pkijs.Extension | undefined => cert.extensions?.find((e) => e.extnID === oid);
  const bc = ext(OID.basicConstraints)?.parsedValue as pkijs.BasicConstraints | undefined;
  const ku = ext(OID.keyUsage)?.parsedValue as asn1js.BitString | undefined;
  const kuByte = ku?.valueBlock.valueHexView[0] ?? 0;
  const eku = ext(OID.extKeyUsage)?.parsedValue as pkijs.ExtKeyUsage | undefined;
  const ski = ext(OID.subjectKeyIdentifier)?.parsedValue as asn1js.OctetString | undefined;
  const pathLen = bc?.pathLenConstraint;
  return {
    der: buf,
    x509,
    subject: nameText(x509.subject),
    issuer: nameText(x509.issuer),
    serial: x509.serialNumber.toUpperCase(),
    issuerDer: new Uint8Array(cert.issuer.valueBeforeDecode),
    serialBytes: cert.serialNumber.valueBlock.valueHexView,
    subjectKeyId: ski?.valueBlock.valueHexView,
    notBefore: cert.notBefore.value,
    notAfter: cert.notAfter.value,
    isCa: bc?.cA === true,
    pathLen: typeof pathLen === 'number' ? pathLen : undefined,
    keyUsage: ku
      ? {
          digitalSignature: (kuByte & KEY_USAGE_DIGITAL_SIGNATURE_BIT) !== 0,
          keyCertSign: (kuByte & KEY_USAGE_KEY_CERT_SIGN_BIT) !== 0,
        }
      : undefined,
    extendedKeyUsage: eku?.keyPurposes,
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
