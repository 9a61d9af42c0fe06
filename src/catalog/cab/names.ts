/**
 * Member names → safe relative output paths, exactly as cabextract 1.9 makes them, so that our
 * extraction writes the same files it does: it decides once per cabinet whether `/` or `\` is the
 * directory separator, re-encodes UTF-8-flagged names as valid UTF-8 (bad sequences become
 * U+FFFD), keeps other names as raw bytes, strips leading slashes and turns `../` into `xx/`.
 * Everything here is pure.
 */

const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const DOT = 0x2e;
const REPLACEMENT_CHARACTER = 0xfffd;

/**
 * Whether the names use `/` (true) or `\` (false) as separator — cabextract's
 * unix_path_seperators(): only one kind seen decides; with both, the first name whose leading
 * directory repeats in the next name decides; otherwise `\`.
 */
export function usesUnixSeparators(names: readonly Uint8Array[]): boolean {
  let slash = false;
  let backslash = false;
  let lastScanned: Uint8Array | undefined;
  for (const name of names) {
    lastScanned = name;
    for (const c of name) {
      if (c === SLASH) slash = true;
      if (c === BACKSLASH) backslash = true;
    }
    if (slash && backslash) break;
  }
  if (!slash) return false;
  if (!backslash) return true;
  if (names.length === 1 && lastScanned) {
    for (const c of lastScanned) {
      if (c === BACKSLASH) return false;
      if (c === SLASH) return true;
    }
    return false;
  }
  let previous: Uint8Array | undefined;
  let previousLength = 0;
  for (const name of names) {
    let length = name.findIndex((c) => c === SLASH || c === BACKSLASH);
    length = length < 0 ? 0 : length + 1;
    if (length && length === previousLength && previous && sameBytes(name, previous, length)) {
      return name[length - 1] !== BACKSLASH;
    }
    previous = name;
    previousLength = length;
  }
  return false;
}

function sameBytes(a: Uint8Array, b: Uint8Array, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Decode cabextract-style: one code point per step, invalid input → U+FFFD. */
function decodeCodePoints(raw: Uint8Array): number[] {
  // Bytes past the end read as the NUL terminator, as in the C original.
  const at = (i: number): number => (i < raw.length ? raw[i]! : 0);
  const cont = (i: number): boolean => (at(i) & 0xc0) === 0x80;
  const out: number[] = [];
  let i = 0;
  while (i < raw.length) {
    const c = raw[i++]!;
    let x: number;
    if (c < 0x80) x = c;
    else if (c >= 0xc2 && c < 0xe0 && cont(i)) {
      x = ((c & 0x1f) << 6) | (at(i) & 0x3f);
      i += 1;
    } else if (c >= 0xe0 && c < 0xf0 && cont(i) && cont(i + 1)) {
      x = ((c & 0x0f) << 12) | ((at(i) & 0x3f) << 6) | (at(i + 1) & 0x3f);
      i += 2;
    } else if (c >= 0xf0 && c < 0xf5 && cont(i) && cont(i + 1) && cont(i + 2)) {
      x = ((c & 0x07) << 18) | ((at(i) & 0x3f) << 12) | ((at(i + 1) & 0x3f) << 6) | (at(i + 2) & 0x3f);
      i += 3;
    } else x = REPLACEMENT_CHARACTER;
    if (x <= 0 || x > 0x10ffff || (x >= 0xd800 && x <= 0xdfff) || x === 0xfffe || x === 0xffff) {
      x = REPLACEMENT_CHARACTER;
    }
    out.push(x);
  }
  return out;
}

function encodeCodePoint(x: number, out: number[]): void {
  if (x < 0x80) out.push(x);
  else if (x < 0x800) out.push(0xc0 | (x >> 6), 0x80 | (x & 0x3f));
  else if (x < 0x10000) out.push(0xe0 | (x >> 12), 0x80 | ((x >> 6) & 0x3f), 0x80 | (x & 0x3f));
  else out.push(0xf0 | (x >> 18), 0x80 | ((x >> 12) & 0x3f), 0x80 | ((x >> 6) & 0x3f), 0x80 | (x & 0x3f));
}

/**
 * The relative output path (raw bytes, `/`-separated) cabextract writes for a member.
 * @example outputPathBytes(Buffer.from('..\\..\\x'), false, false) // → "xx/xx/x"
 */
export function outputPathBytes(raw: Uint8Array, utf8: boolean, unixSeparators: boolean): Buffer {
  const sep = unixSeparators ? SLASH : BACKSLASH;
  const other = unixSeparators ? BACKSLASH : SLASH;
  const swap = (c: number): number => (c === sep ? SLASH : c === other ? BACKSLASH : c);
  const bytes: number[] = [];
  if (utf8) for (const x of decodeCodePoints(raw)) encodeCodePoint(swap(x), bytes);
  else for (const c of raw) bytes.push(swap(c));

  // No absolute paths: drop leading slashes; a name of only slashes becomes "x".
  let start = 0;
  while (start < bytes.length && (bytes[start] === SLASH || bytes[start] === BACKSLASH)) start++;
  let out = start === 0 ? bytes : start < bytes.length ? bytes.slice(start) : [0x78];
  // No directory traversal: every "../" or "..\" becomes "xx/" (or "xx\").
  out = out.slice();
  for (let o = 0; o < out.length; o++) {
    if (out[o] === DOT && out[o + 1] === DOT && (out[o + 2] === SLASH || out[o + 2] === BACKSLASH)) {
      out[o] = out[o + 1] = 0x78;
      o += 2;
    }
  }
  return Buffer.from(out);
}

/** A readable name for a member: UTF-8 when flagged (cabextract's decoding), else the bytes as UTF-8 with U+FFFD. */
export function displayName(raw: Uint8Array, utf8: boolean): string {
  if (utf8) return String.fromCodePoint(...decodeCodePoints(raw));
  return Buffer.from(raw).toString('utf8');
}
