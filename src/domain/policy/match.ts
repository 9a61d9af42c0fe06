/**
 * Small matching helpers shared by rules and rings: host name patterns and KB normalisation.
 * Host patterns are shell-style (`web*`, `sql0?`), case-insensitive, because Windows host names
 * are; they are compiled to anchored regular expressions once.
 */

const patternCache = new Map<string, RegExp>();

/**
 * True when `name` matches a host pattern (`*` any run, `?` one character), case-insensitively.
 *
 * @example hostMatches('WEB*', 'web01') // true
 */
export function hostMatches(pattern: string, name: string): boolean {
  let re = patternCache.get(pattern);
  if (!re) {
    const body = pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    re = new RegExp(`^${body}$`, 'i');
    patternCache.set(pattern, re);
  }
  return re.test(name);
}

/** True when any of the patterns matches. */
export function anyHostMatches(patterns: readonly string[], name: string): boolean {
  return patterns.some((p) => hostMatches(p, name));
}

/** "KB5044444", "kb 5044444", "5044444" → "5044444"; anything else → null. */
export function normalizeKb(value: string): string | null {
  const m = /^\s*(?:kb\s*)?(\d{4,8})\s*$/i.exec(value);
  return m ? m[1]! : null;
}

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isGuid = (value: string): boolean => GUID_RE.test(value.trim());

/** A host pattern may hold letters, digits, `-`, `.`, `_`, `*` and `?` (NetBIOS and DNS names). */
export const isHostPattern = (value: string): boolean => /^[A-Za-z0-9._*?-]+$/.test(value) && value.length <= 253;
