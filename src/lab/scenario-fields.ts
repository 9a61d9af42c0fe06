/**
 * Field readers for scenario validation: each checks one value, applies its default, and on a
 * bad value throws a FieldError carrying the field's path (`hosts[2].faults[0].hresult`) and
 * what was expected, so scenario.ts can add the file and line. Pure.
 */

export type Path = readonly (string | number)[];

/** Thrown inside validation; turned into a usage error with the line where the field is. */
export class FieldError extends Error {
  constructor(
    readonly path: Path,
    message: string,
  ) {
    super(message);
  }
}

export function formatPath(path: Path): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out || '(top level)';
}

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Field readers: each checks one value and says what was expected, with its path. */
export class Fields {
  constructor(
    readonly obj: Record<string, unknown>,
    readonly path: Path,
    allowed: readonly string[],
  ) {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) throw new FieldError([...path, key], `unknown field (known: ${allowed.join(', ')})`);
    }
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  private value(key: string): unknown {
    return this.obj[key];
  }

  string(key: string, fallback?: string): string {
    const v = this.value(key);
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new FieldError([...this.path, key], 'is required');
    }
    if (typeof v === 'number') return String(v);
    if (typeof v !== 'string' || v.trim() === '')
      throw new FieldError([...this.path, key], 'must be a non-empty string');
    return v.trim();
  }

  number(
    key: string,
    fallback: number | undefined,
    opts: { min?: number; integer?: boolean; positive?: boolean } = {},
  ): number {
    const v = this.value(key);
    const p = [...this.path, key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new FieldError(p, 'is required');
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new FieldError(p, 'must be a number');
    if (opts.integer && !Number.isInteger(v)) throw new FieldError(p, 'must be a whole number');
    if (opts.positive && v <= 0) throw new FieldError(p, 'must be greater than 0');
    if (opts.min !== undefined && v < opts.min) throw new FieldError(p, `must be at least ${opts.min}`);
    return v;
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.value(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new FieldError([...this.path, key], 'must be true or false');
    return v;
  }

  oneOf<T extends string>(key: string, values: readonly T[], fallback: T): T {
    const v = this.value(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string' || !values.includes(v as T))
      throw new FieldError([...this.path, key], `must be one of ${values.join(' | ')}`);
    return v as T;
  }

  strings(key: string): string[] {
    const v = this.value(key);
    const p = [...this.path, key];
    if (v === undefined || v === null) return [];
    // A single name is a list of one (`products: Windows Server 2022`).
    if (typeof v === 'string' && v.trim() !== '') return [v.trim()];
    if (!Array.isArray(v)) throw new FieldError(p, 'must be a list, e.g. [a, b]');
    return v.map((item, i) => {
      if (typeof item !== 'string' || item.trim() === '') throw new FieldError([...p, i], 'must be a non-empty string');
      return item.trim();
    });
  }

  hresult(key: string): string {
    return toHResult(this.value(key), [...this.path, key]);
  }
}

const HRESULT_RE = /^0x[0-9a-f]{8}$/i;

/** "0x80242016" → "0x80242016" (upper-case digits). An unquoted YAML hex number is accepted too. */
export function toHResult(v: unknown, path: Path): string {
  if (typeof v === 'string' && HRESULT_RE.test(v.trim())) return `0x${v.trim().slice(2).toUpperCase()}`;
  // YAML reads an unquoted 0x80242016 as a number; failure HRESULTs have the top bit set.
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0x8000_0000 && v <= 0xffff_ffff) {
    return `0x${v.toString(16).toUpperCase().padStart(8, '0')}`;
  }
  throw new FieldError(path, 'must look like 0x80242016');
}

const DATE_RE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;
const DATE_ONLY_RE = /^\d{4}-\d{2}-\d{2}$/;

/** "2026-11-11" (midnight UTC) or a full ISO date-time → ISO-8601 UTC. */
export function toIsoDate(v: unknown, path: Path): string {
  const text = typeof v === 'string' ? v.trim() : '';
  const ms = DATE_RE.test(text) ? Date.parse(DATE_ONLY_RE.test(text) ? `${text}T00:00:00Z` : text) : NaN;
  if (!Number.isFinite(ms)) throw new FieldError(path, 'must be a date like 2026-11-11');
  return new Date(ms).toISOString();
}
