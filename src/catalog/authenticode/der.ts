/**
 * Minimal DER reading (over asn1js, which also accepts BER) and writing for the Authenticode
 * structures. Reading keeps the original bytes of every element, because Authenticode hashes and
 * signs exact encodings (SpcIndirectDataContent's contents, the signed attributes); writing is a
 * tiny tag-length-value encoder so the signer embeds certificates and names byte for byte.
 */
import * as asn1js from 'asn1js';

/** A decoded element; the asn1js block type, named for readability. */
export type DerNode = asn1js.AsnType;

/** Thrown by the readers when the bytes are not the structure expected; the verifier maps it. */
export class DerFormatError extends Error {
  override readonly name = 'DerFormatError';
}

export const TAG_CLASS = { universal: 1, context: 3 } as const;

/** Decodes one element at the start of `bytes`; `end` is where it stopped (trailing bytes are the caller's business). */
export function decodeDer(bytes: Uint8Array, what: string): { node: DerNode; end: number } {
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const parsed = asn1js.fromBER(view);
  if (parsed.offset === -1 || parsed.result.error) {
    throw new DerFormatError(`${what}: not valid DER (${parsed.result.error || 'decode failed'})`);
  }
  return { node: parsed.result, end: parsed.offset };
}

/** The whole encoding (tag, length, contents) of a decoded element. */
export function tlv(node: DerNode): Uint8Array {
  return node.valueBeforeDecodeView;
}

/** The contents octets only: what Authenticode hashes for SpcIndirectDataContent. */
export function contents(node: DerNode): Uint8Array {
  const all = node.valueBeforeDecodeView;
  const header = node.idBlock.blockLength + node.lenBlock.blockLength;
  const eoc = node.lenBlock.isIndefiniteForm ? 2 : 0;
  return all.subarray(header, all.length - eoc);
}

export function isContext(node: DerNode, tagNumber: number): boolean {
  return node.idBlock.tagClass === TAG_CLASS.context && node.idBlock.tagNumber === tagNumber;
}

/** Children of a constructed element, or a DerFormatError naming `what`. */
export function childrenOf(node: DerNode | undefined, what: string, min = 0): DerNode[] {
  if (!node || !node.idBlock.isConstructed) throw new DerFormatError(`${what}: expected a constructed element`);
  const value = (node.valueBlock as unknown as { value?: DerNode[] }).value;
  if (!Array.isArray(value)) throw new DerFormatError(`${what}: expected a constructed element`);
  const items = value.filter((n) => !(n instanceof asn1js.EndOfContent));
  if (items.length < min) throw new DerFormatError(`${what}: expected at least ${min} elements, found ${items.length}`);
  return items;
}

export function oidOf(node: DerNode | undefined, what: string): string {
  if (!(node instanceof asn1js.ObjectIdentifier)) throw new DerFormatError(`${what}: expected an object identifier`);
  return node.valueBlock.toString();
}

/** Bytes of an OCTET STRING (primitive or BER-constructed) or of any primitive element. */
export function octets(node: DerNode | undefined, what: string): Uint8Array {
  if (!node) throw new DerFormatError(`${what}: missing`);
  if (node.idBlock.isConstructed) {
    return Buffer.concat(childrenOf(node, what).map((c) => octets(c, what)));
  }
  const view = (node.valueBlock as unknown as { valueHexView?: Uint8Array }).valueHexView;
  if (!view) throw new DerFormatError(`${what}: expected a primitive value`);
  return view;
}

export function timeOf(node: DerNode | undefined, what: string): Date {
  if (node instanceof asn1js.UTCTime || node instanceof asn1js.GeneralizedTime) return node.toDate();
  throw new DerFormatError(`${what}: expected a time`);
}

// ---- writing ------------------------------------------------------------------------------

function encodeLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** One element: `tag` is the full identifier octet (e.g. 0x30 SEQUENCE, 0xa0 [0] constructed). */
export function derElement(tag: number, ...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Uint8Array.of(tag), encodeLength(body.length), body]);
}

export const DER_TAG = {
  integer: 0x02,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
  context0Primitive: 0x80,
  context0: 0xa0,
  context2: 0xa2,
} as const;

export const derSequence = (...parts: Uint8Array[]): Buffer => derElement(DER_TAG.sequence, ...parts);
export const derNull = (): Buffer => derElement(DER_TAG.null);
export const derOctetString = (bytes: Uint8Array): Buffer => derElement(DER_TAG.octetString, bytes);

/** A SET OF in DER order (elements sorted by their encodings), which OpenSSL re-encodes to when it verifies. */
export function derSetOf(elements: readonly Uint8Array[]): Buffer {
  const sorted = [...elements].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return derElement(DER_TAG.set, ...sorted);
}

export function derOid(oid: string): Buffer {
  return Buffer.from(new asn1js.ObjectIdentifier({ value: oid }).toBER(false));
}

/** UTCTime for 1950–2049 as RFC 5280 requires, GeneralizedTime otherwise. */
export function derTime(date: Date): Buffer {
  const iso = date.toISOString(); // 2026-11-21T05:45:32.123Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, ''); // 20261121054532
  const year = date.getUTCFullYear();
  if (year >= 1950 && year < 2050) return derElement(DER_TAG.utcTime, Buffer.from(`${digits.slice(2)}Z`, 'ascii'));
  return derElement(DER_TAG.generalizedTime, Buffer.from(`${digits}Z`, 'ascii'));
}
