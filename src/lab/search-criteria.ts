/**
 * WUA search criteria, the subset real tools send (reference §1.2): `IsInstalled=0|1`,
 * `IsHidden=0|1`, `Type='Software'|'Driver'`, `BrowseOnly=0|1`, `UpdateID='…'` (each with `=` or
 * `!=`), joined by `and`, with `or` only at the top level and optional parentheses around each
 * and-group. Names and keywords are case-insensitive; `and` binds tighter than `or`.
 * Anything else is invalid (the provider answers WU_E_INVALID_CRITERIA). Pure.
 */

export const CRITERIA_NAMES = ['IsInstalled', 'IsHidden', 'Type', 'BrowseOnly', 'UpdateID'] as const;
export type CriteriaName = (typeof CRITERIA_NAMES)[number];

export interface Condition {
  readonly name: CriteriaName;
  readonly negated: boolean;
  /** 0/1 for the flags; lower-case text for Type and UpdateID. */
  readonly value: number | string;
}

/** OR of AND-groups. */
export type Criteria = readonly (readonly Condition[])[];

export type CriteriaParse =
  { readonly ok: true; readonly criteria: Criteria } | { readonly ok: false; readonly message: string };

/** The fields of an update that criteria look at. */
export interface CriteriaSubject {
  readonly isInstalled: boolean;
  readonly isHidden: boolean;
  readonly type: 'software' | 'driver';
  readonly browseOnly: boolean;
  readonly updateId: string;
}

type Token = { kind: 'word' | 'string' | 'number' | 'op' | 'lparen' | 'rparen'; text: string };

function tokenize(text: string): Token[] | string {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '(') {
      tokens.push({ kind: 'lparen', text: c });
      i++;
      continue;
    }
    if (c === ')') {
      tokens.push({ kind: 'rparen', text: c });
      i++;
      continue;
    }
    if (c === '=') {
      tokens.push({ kind: 'op', text: '=' });
      i++;
      continue;
    }
    if (c === '!' && text[i + 1] === '=') {
      tokens.push({ kind: 'op', text: '!=' });
      i += 2;
      continue;
    }
    if (c === "'") {
      // A doubled quote escapes a quote inside a string, as in WUA.
      let value = '';
      let j = i + 1;
      for (;;) {
        if (j >= text.length) return `unterminated string at position ${i + 1}`;
        if (text[j] === "'") {
          if (text[j + 1] === "'") {
            value += "'";
            j += 2;
            continue;
          }
          break;
        }
        value += text[j];
        j++;
      }
      tokens.push({ kind: 'string', text: value });
      i = j + 1;
      continue;
    }
    const m = /^(?:[0-9]+|[A-Za-z_][A-Za-z0-9_]*)/.exec(text.slice(i));
    if (!m) return `unexpected "${c}" at position ${i + 1}`;
    tokens.push({ kind: /^[0-9]/.test(m[0]) ? 'number' : 'word', text: m[0] });
    i += m[0].length;
  }
  return tokens;
}

/**
 * @example parseCriteria("IsInstalled=0 and Type='Software' and IsHidden=0")
 */
export function parseCriteria(text: string): CriteriaParse {
  const tokens = tokenize(text);
  if (typeof tokens === 'string') return { ok: false, message: tokens };
  let pos = 0;
  const peek = () => tokens[pos];
  const isKeyword = (t: Token | undefined, k: string) => t?.kind === 'word' && t.text.toLowerCase() === k;

  const condition = (): Condition | string => {
    const nameToken = tokens[pos++];
    if (nameToken?.kind !== 'word') return `expected a criterion name at token ${pos}`;
    const name = CRITERIA_NAMES.find((n) => n.toLowerCase() === nameToken.text.toLowerCase());
    if (!name) return `unsupported criterion "${nameToken.text}" (the lab knows ${CRITERIA_NAMES.join(', ')})`;
    const op = tokens[pos++];
    if (op?.kind !== 'op') return `expected = or != after ${name}`;
    const value = tokens[pos++];
    if (name === 'Type' || name === 'UpdateID') {
      if (value?.kind !== 'string')
        return `${name} takes a quoted string, e.g. ${name}='${name === 'Type' ? 'Software' : '…'}'`;
      const v = value.text.trim().toLowerCase();
      if (name === 'Type' && v !== 'software' && v !== 'driver') return `Type must be 'Software' or 'Driver'`;
      return { name, negated: op.text === '!=', value: v };
    }
    if (value?.kind !== 'number' || (value.text !== '0' && value.text !== '1')) return `${name} takes 0 or 1`;
    return { name, negated: op.text === '!=', value: Number(value.text) };
  };

  const andGroup = (): Condition[] | string => {
    const parenthesized = peek()?.kind === 'lparen';
    if (parenthesized) pos++;
    const group: Condition[] = [];
    for (;;) {
      const c = condition();
      if (typeof c === 'string') return c;
      group.push(c);
      if (!isKeyword(peek(), 'and')) break;
      pos++;
    }
    if (parenthesized) {
      if (isKeyword(peek(), 'or')) return '"or" is allowed only at the top level';
      if (peek()?.kind !== 'rparen') return 'missing ")"';
      pos++;
    }
    return group;
  };

  const groups: Condition[][] = [];
  if (tokens.length === 0) return { ok: false, message: 'empty criteria' };
  for (;;) {
    const g = andGroup();
    if (typeof g === 'string') return { ok: false, message: g };
    groups.push(g);
    const next = peek();
    if (next === undefined) break;
    if (isKeyword(next, 'or')) {
      pos++;
      continue;
    }
    if (isKeyword(next, 'and'))
      return {
        ok: false,
        message: '"and" after a parenthesized group combines or-groups; "or" is allowed only at the top level',
      };
    return { ok: false, message: `unexpected "${next.text}"` };
  }
  return { ok: true, criteria: groups };
}

function holds(c: Condition, u: CriteriaSubject): boolean {
  let actual: number | string;
  switch (c.name) {
    case 'IsInstalled':
      actual = u.isInstalled ? 1 : 0;
      break;
    case 'IsHidden':
      actual = u.isHidden ? 1 : 0;
      break;
    case 'BrowseOnly':
      actual = u.browseOnly ? 1 : 0;
      break;
    case 'Type':
      actual = u.type;
      break;
    case 'UpdateID':
      actual = u.updateId.toLowerCase();
      break;
  }
  return (actual === c.value) !== c.negated;
}

/** Does the update match the criteria (any and-group whose every condition holds)? */
export function matchesCriteria(criteria: Criteria, u: CriteriaSubject): boolean {
  return criteria.some((group) => group.every((c) => holds(c, u)));
}
