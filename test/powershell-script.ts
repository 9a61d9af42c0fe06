/**
 * Reading wua.ps1 without PowerShell (not installable here): its string literals, its brackets, its
 * C# here-string, the body of a named function and the value of a top-level constant. Not a
 * parser — enough for the contract tests to check the script's structure where running it is
 * impossible, and to hand its C# to Mono, where it can run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const SCRIPT_PATH = join(ROOT, 'src', 'wua', 'providers', 'powershell', 'wua.ps1');
export const script = readFileSync(SCRIPT_PATH, 'utf8');

export interface Scanned {
  /** The brackets outside comments and strings, in order. */
  readonly brackets: string;
  readonly singleQuoted: string[];
  readonly doubleQuoted: string[];
  /** Here-strings (@'…'@, @"…"@): the C# of Add-Type. */
  readonly hereStrings: string[];
  /** The text with comments removed and every string literal blanked to '' / "" (same offsets not kept). */
  readonly code: string;
}

/**
 * Splits PowerShell text into its brackets (outside comments and strings), its string literals and
 * its here-strings. Enough to catch an unbalanced brace and to list the strings the script can print.
 */
export function scanPowerShell(text: string): Scanned {
  let brackets = '';
  let code = '';
  const singleQuoted: string[] = [];
  const doubleQuoted: string[] = [];
  const hereStrings: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    const two = text.slice(i, i + 2);
    if (two === '<#') {
      i = text.indexOf('#>', i + 2) + 2;
      continue;
    }
    if (c === '#') {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl;
      continue;
    }
    if (two === '@"' || two === "@'") {
      const end = text.indexOf(`\n${two[1]}@`, i);
      hereStrings.push(text.slice(i + 2, end));
      code += "@''@";
      i = end + 3;
      continue;
    }
    if (c === "'") {
      let j = i + 1;
      while (j < text.length && !(text[j] === "'" && text[j + 1] !== "'")) j += text[j] === "'" ? 2 : 1;
      singleQuoted.push(text.slice(i + 1, j).replace(/''/g, "'"));
      code += `'${text.slice(i + 1, j)}'`;
      i = j + 1;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '`' ? 2 : 1;
      doubleQuoted.push(text.slice(i + 1, j));
      code += '""';
      i = j + 1;
      continue;
    }
    if ('(){}[]'.includes(c)) brackets += c;
    code += c;
    i += 1;
  }
  return { brackets, singleQuoted, doubleQuoted, hereStrings, code };
}

export function balanced(brackets: string): boolean {
  const pairs: Record<string, string> = { ')': '(', '}': '{', ']': '[' };
  const stack: string[] = [];
  for (const c of brackets) {
    if ('({['.includes(c)) stack.push(c);
    else if (stack.pop() !== pairs[c]) return false;
  }
  return stack.length === 0;
}

const scanned = scanPowerShell(script);

/** The C# compiled by Add-Type (the one here-string). */
export const csharp = scanned.hereStrings[0] ?? '';

/**
 * The body of `function Name { … }` in the script's code (comments removed; single-quoted
 * literals kept, double-quoted ones blanked). Throws when the function is not there.
 */
export function functionBody(name: string): string {
  const code = scanned.code;
  const start = code.search(new RegExp(`^function ${name}\\b[^{]*\\{`, 'm'));
  if (start < 0) throw new Error(`wua.ps1 has no function ${name}`);
  let depth = 0;
  for (let i = code.indexOf('{', start); i < code.length; i++) {
    if (code[i] === '{') depth++;
    else if (code[i] === '}' && --depth === 0) return code.slice(code.indexOf('{', start) + 1, i);
  }
  throw new Error(`function ${name} does not end`);
}

/** Names of the functions the script defines. */
export function functionNames(): string[] {
  return [...scanned.code.matchAll(/^function ([\w-]+)/gm)].map((m) => m[1] as string);
}

/** The integer a top-level `$Name = 7` sets. */
export function numericConstant(name: string): number {
  const m = new RegExp(`^\\$${name} = (\\d+)\\s*$`, 'm').exec(scanned.code);
  if (!m) throw new Error(`wua.ps1 sets no numeric $${name}`);
  return Number(m[1]);
}

/** The string a top-level `$Name = '…'` sets. */
export function stringConstant(name: string): string {
  const m = new RegExp(`^\\$${name} = '([^']*)'`, 'm').exec(scanned.code);
  if (!m) throw new Error(`wua.ps1 sets no string $${name}`);
  return m[1] as string;
}

/** The `$RequiredFields = @{ type = @('a', 'b') … }` table, as type → fields. */
export function requiredFieldsTable(): Record<string, string[]> {
  const m = /^\$RequiredFields = @\{([\s\S]*?)^\}/m.exec(scanned.code);
  if (!m) throw new Error('wua.ps1 has no $RequiredFields table');
  const table: Record<string, string[]> = {};
  for (const row of (m[1] as string).matchAll(/^\s*(\w+)\s*=\s*@\(([^)]*)\)/gm)) {
    table[row[1] as string] = [...(row[2] as string).matchAll(/'(\w+)'/g)].map((f) => f[1] as string);
  }
  return table;
}

/** Finds a program on PATH, or null (for checks that need an optional tool). */
export function onPath(program: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, program))) return join(dir, program);
  }
  return null;
}

export { scanned };
