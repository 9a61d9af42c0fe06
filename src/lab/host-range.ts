/**
 * Host name patterns with numeric ranges: `web{01..20}` → web01 … web20. Several ranges in one
 * name multiply (`r{1..2}-web{1..3}` → six names). A bound written with a leading zero fixes
 * the width (zero padding), as bash brace expansion does. Pure.
 */

/** Beyond this a pattern is almost certainly a typo (web{1..100000}). */
const MAX_NAMES_PER_PATTERN = 10_000;

export type HostPatternResult =
  { readonly ok: true; readonly names: readonly string[] } | { readonly ok: false; readonly message: string };

const RANGE_RE = /\{(\d+)\.\.(\d+)\}/g;

/**
 * @example expandHostPattern('web{01..03}') // { ok: true, names: ['web01', 'web02', 'web03'] }
 */
export function expandHostPattern(pattern: string): HostPatternResult {
  let names: string[] = [''];
  let last = 0;
  for (const match of pattern.matchAll(RANGE_RE)) {
    const [whole, loText = '', hiText = ''] = match;
    const literal = pattern.slice(last, match.index);
    last = match.index + whole.length;
    const lo = Number(loText);
    const hi = Number(hiText);
    if (lo > hi)
      return { ok: false, message: `range {${loText}..${hiText}} counts down; write the smaller bound first` };
    const padded = (loText.length > 1 && loText.startsWith('0')) || (hiText.length > 1 && hiText.startsWith('0'));
    const width = padded ? Math.max(loText.length, hiText.length) : 0;
    if (names.length * (hi - lo + 1) > MAX_NAMES_PER_PATTERN)
      return { ok: false, message: `expands to more than ${MAX_NAMES_PER_PATTERN} names` };
    const next: string[] = [];
    for (const prefix of names) {
      for (let n = lo; n <= hi; n++) next.push(`${prefix}${literal}${String(n).padStart(width, '0')}`);
    }
    names = next;
  }
  const tail = pattern.slice(last);
  names = names.map((n) => n + tail);
  const bad = names.find((n) => /[{}]/.test(n));
  if (bad !== undefined) return { ok: false, message: `bad range in "${pattern}": write ranges as {01..20}` };
  const invalid = names.find((n) => !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(n));
  if (invalid !== undefined)
    return {
      ok: false,
      message: `"${invalid}" is not a valid host name (letters, digits, ".", "_" and "-", at most 63)`,
    };
  return { ok: true, names };
}
