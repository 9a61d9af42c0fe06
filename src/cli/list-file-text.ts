/**
 * Decodes a list file (`--kb @FILE`) the way Windows tools write it. Windows PowerShell 5.1's `>`
 * and `Out-File` write UTF-16 LE with a byte-order mark, Notepad and `Set-Content -Encoding UTF8`
 * write UTF-8 with one, most other tools plain UTF-8. Anything else is refused with its encoding
 * named, rather than read as junk entries. Pure: bytes in, text or an error out.
 */
import { usageError } from '../domain/errors.ts';

/**
 * @example decodeListFile(Buffer.from('\uFEFFKB5044444\r\n', 'utf16le'), 'kbs.txt') // 'KB5044444\r\n'
 */
export function decodeListFile(bytes: Uint8Array, file: string): string {
  const b = bytes;
  if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf)
    return utf8(b.subarray(3), file, 'UTF-8 (with a byte-order mark)');
  if (b[0] === 0xff && b[1] === 0xfe) {
    if (b[2] === 0 && b[3] === 0) throw unreadable(file, 'UTF-32 LE');
    return utf16(b.subarray(2), file, 'utf-16le');
  }
  if (b[0] === 0xfe && b[1] === 0xff) return utf16(b.subarray(2), file, 'utf-16be');
  // No mark: UTF-16 without one shows as a zero in every other byte of ASCII text.
  const sample = b.subarray(0, 64);
  if (sample.length >= 4 && sample.filter((x, i) => x === 0 && i % 2 === 1).length >= sample.length / 4)
    throw unreadable(file, 'UTF-16 LE without a byte-order mark');
  if (sample.length >= 4 && sample.filter((x, i) => x === 0 && i % 2 === 0).length >= sample.length / 4)
    throw unreadable(file, 'UTF-16 BE without a byte-order mark');
  return utf8(b, file, 'UTF-8');
}

function utf8(bytes: Uint8Array, file: string, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    // Not UTF-8: most likely the ANSI code page (Windows-1252) of an old tool.
    throw unreadable(file, `neither ${what} nor UTF-16 (probably an ANSI code page such as Windows-1252)`, cause);
  }
}

function utf16(bytes: Uint8Array, file: string, encoding: 'utf-16le' | 'utf-16be'): string {
  const name = encoding === 'utf-16le' ? 'UTF-16 LE' : 'UTF-16 BE';
  if (bytes.length % 2 !== 0) throw unreadable(file, `${name} with an odd number of bytes (cut off?)`);
  try {
    return new TextDecoder(encoding, { fatal: true }).decode(bytes);
  } catch (cause) {
    throw unreadable(file, `${name} with invalid characters`, cause);
  }
}

function unreadable(file: string, encoding: string, cause?: unknown) {
  return usageError(
    'LIST_ENCODING',
    `The list file ${file} is ${encoding}; it cannot be read. Save it as UTF-8 or UTF-16 (PowerShell: \`Set-Content -Encoding UTF8\`).`,
    { cause, context: { file } },
  );
}
