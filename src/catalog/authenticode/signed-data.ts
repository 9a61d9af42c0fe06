/**
 * Parses the CMS/PKCS#7 structures of an Authenticode signature into plain values with the exact
 * bytes that get hashed and verified: SignedData, SignerInfo, SpcIndirectDataContent and the
 * RFC 3161 TSTInfo of a timestamp. No crypto and no trust decisions here; malformed input throws
 * DerFormatError.
 */
import * as asn1js from 'asn1js';
import {
  DerFormatError,
  childrenOf,
  contents,
  decodeDer,
  isContext,
  octets,
  oidOf,
  timeOf,
  tlv,
  type DerNode,
} from './der.ts';
import { OID, digestNameForOid, type DigestName } from './oids.ts';

export type SignerId =
  | { readonly kind: 'issuer-serial'; readonly issuer: Uint8Array; readonly serial: Uint8Array }
  | { readonly kind: 'key-id'; readonly keyId: Uint8Array };

export interface SignerInfoParts {
  readonly sid: SignerId;
  readonly digestAlgorithm: DigestName;
  /** The signed attributes re-tagged as SET OF: the exact bytes the signature covers. */
  readonly signedAttrsDer: Uint8Array | undefined;
  readonly signedAttrs: ReadonlyMap<string, readonly DerNode[]>;
  readonly signatureAlgorithm: string;
  readonly signature: Uint8Array;
  readonly unsignedAttrs: ReadonlyMap<string, readonly DerNode[]>;
}

export interface SignedDataParts {
  readonly contentType: string;
  /** The element inside encapContentInfo's [0] EXPLICIT wrapper. */
  readonly content: DerNode | undefined;
  /** DER of each plain X.509 certificate in the certificates set. */
  readonly certificates: readonly Uint8Array[];
  readonly signerInfos: readonly SignerInfoParts[];
}

export interface IndirectData {
  /** SpcAttributeTypeAndOptionalValue.type: 1.3.6.1.4.1.311.2.1.25 for cabinets. */
  readonly dataType: string;
  readonly digestAlgorithm: DigestName;
  /** The file digest the signer committed to. */
  readonly digest: Uint8Array;
  /** The SEQUENCE's contents octets: what the messageDigest attribute is a hash of (Authenticode quirk). */
  readonly hashedBytes: Uint8Array;
}

export interface TstInfo {
  readonly imprintAlgorithm: DigestName;
  readonly imprint: Uint8Array;
  readonly genTime: Date;
}

function digestAlgorithmOf(node: DerNode | undefined, what: string): DigestName {
  const oid = oidOf(childrenOf(node, what, 1)[0], what);
  const name = digestNameForOid(oid);
  if (!name) throw new DerFormatError(`${what}: unsupported digest algorithm ${oid}`);
  return name;
}

function attributesOf(node: DerNode, what: string): Map<string, DerNode[]> {
  const map = new Map<string, DerNode[]>();
  for (const attr of childrenOf(node, what)) {
    const [type, values] = childrenOf(attr, `${what} attribute`, 2);
    const oid = oidOf(type, `${what} attribute type`);
    map.set(oid, [...(map.get(oid) ?? []), ...childrenOf(values, `${what} ${oid} values`)]);
  }
  return map;
}

export function parseSignerInfo(node: DerNode, what: string): SignerInfoParts {
  const items = childrenOf(node, what, 5);
  let i = 1; // [0] is the version
  const sidNode = items[i++];
  let sid: SignerId;
  if (sidNode && isContext(sidNode, 0)) {
    sid = { kind: 'key-id', keyId: octets(sidNode, `${what} subjectKeyIdentifier`) };
  } else {
    const [issuer, serial] = childrenOf(sidNode, `${what} issuerAndSerialNumber`, 2);
    if (!issuer || !(serial instanceof asn1js.Integer)) throw new DerFormatError(`${what}: bad issuerAndSerialNumber`);
    sid = { kind: 'issuer-serial', issuer: tlv(issuer), serial: serial.valueBlock.valueHexView };
  }
  const digestAlgorithm = digestAlgorithmOf(items[i++], `${what} digestAlgorithm`);
  let signedAttrsDer: Uint8Array | undefined;
  let signedAttrs = new Map<string, DerNode[]>();
  const maybeSigned = items[i];
  if (maybeSigned && isContext(maybeSigned, 0)) {
    signedAttrsDer = Buffer.from(tlv(maybeSigned));
    signedAttrsDer[0] = 0x31; // the signature covers the attributes encoded as SET OF, not [0] IMPLICIT
    signedAttrs = attributesOf(maybeSigned, `${what} signed attributes`);
    i++;
  }
  const signatureAlgorithm = oidOf(
    childrenOf(items[i++], `${what} signatureAlgorithm`, 1)[0],
    `${what} signatureAlgorithm`,
  );
  const signatureNode = items[i++];
  if (!(signatureNode instanceof asn1js.OctetString))
    throw new DerFormatError(`${what}: signature is not an OCTET STRING`);
  const signature = octets(signatureNode, `${what} signature`);
  const maybeUnsigned = items[i];
  const unsignedAttrs =
    maybeUnsigned && isContext(maybeUnsigned, 1)
      ? attributesOf(maybeUnsigned, `${what} unsigned attributes`)
      : new Map();
  return { sid, digestAlgorithm, signedAttrsDer, signedAttrs, signatureAlgorithm, signature, unsignedAttrs };
}

/** Parses a ContentInfo holding SignedData (the whole Authenticode blob, or a timestamp token). */
export function parseSignedData(node: DerNode, what: string): SignedDataParts {
  const [typeNode, wrapped] = childrenOf(node, `${what} ContentInfo`, 2);
  if (oidOf(typeNode, `${what} contentType`) !== OID.signedData)
    throw new DerFormatError(`${what}: not a PKCS#7 SignedData`);
  const sd = childrenOf(childrenOf(wrapped, `${what} content`, 1)[0], `${what} SignedData`, 4);
  const [eTypeNode, eWrapped] = childrenOf(sd[2], `${what} encapContentInfo`, 1);
  const contentType = oidOf(eTypeNode, `${what} eContentType`);
  const content = eWrapped ? childrenOf(eWrapped, `${what} eContent`, 1)[0] : undefined;

  const certificates: Uint8Array[] = [];
  let signerInfosNode: DerNode | undefined;
  for (const item of sd.slice(3)) {
    if (isContext(item, 0)) {
      for (const cert of childrenOf(item, `${what} certificates`)) {
        // Only plain X.509 certificates (SEQUENCE); attribute/other certificate formats are ignored.
        if (cert instanceof asn1js.Sequence) certificates.push(tlv(cert));
      }
    } else if (item instanceof asn1js.Set) {
      signerInfosNode = item;
    }
  }
  const signerInfos = childrenOf(signerInfosNode, `${what} signerInfos`).map((s, n) =>
    parseSignerInfo(s, `${what} signerInfo ${n}`),
  );
  return { contentType, content, certificates, signerInfos };
}

export function parseIndirectData(node: DerNode | undefined): IndirectData {
  const what = 'SpcIndirectDataContent';
  if (!(node instanceof asn1js.Sequence)) throw new DerFormatError(`${what}: missing`);
  const [data, digestInfo] = childrenOf(node, what, 2);
  const dataType = oidOf(childrenOf(data, `${what} data`, 1)[0], `${what} data type`);
  const [algorithm, digestNode] = childrenOf(digestInfo, `${what} messageDigest`, 2);
  return {
    dataType,
    digestAlgorithm: digestAlgorithmOf(algorithm, `${what} digestAlgorithm`),
    digest: octets(digestNode, `${what} digest`),
    hashedBytes: contents(node),
  };
}

/** TSTInfo (RFC 3161) from the eContent OCTET STRING of a timestamp token. */
export function parseTstInfo(der: Uint8Array): TstInfo {
  const what = 'TSTInfo';
  const items = childrenOf(decodeDer(der, what).node, what, 5);
  const [algorithm, imprint] = childrenOf(items[2], `${what} messageImprint`, 2);
  return {
    imprintAlgorithm: digestAlgorithmOf(algorithm, `${what} imprint algorithm`),
    imprint: octets(imprint, `${what} imprint`),
    genTime: timeOf(items[4], `${what} genTime`),
  };
}

/** The first value of a single-valued attribute, if present. */
export function attributeValue(attrs: ReadonlyMap<string, readonly DerNode[]>, oid: string): DerNode | undefined {
  return attrs.get(oid)?.[0];
}
