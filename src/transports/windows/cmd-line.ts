/**
 * Turning an argv array into ONE Windows command line, and back.
 *
 * Two parsers read what we send, one after the other:
 *  1. cmd.exe (OpenSSH's default shell on Windows runs `cmd.exe /c <line>`): it treats
 *     `( ) % ! ^ " < > & |` specially. We prefix every one of them with `^`, so cmd passes the
 *     line through literally. Caret-escaping the quotes too means cmd never enters its own quote
 *     mode, so the escaping is the same everywhere on the line. (`%` survives because `^%NAME^%`
 *     names an undefined variable during percent expansion; the carets go in the next phase.)
 *  2. The program's C runtime / CommandLineToArgvW splits the line into argv: whitespace separates
 *     arguments unless inside quotes; 2n backslashes + `"` give n backslashes and toggle quoting;
 *     2n+1 backslashes + `"` give n backslashes and a literal quote; other backslashes are literal.
 * References: learn.microsoft.com "Parsing C command-line arguments", CommandLineToArgvW; Daniel
 * Colascione, "Everyone quotes command line arguments the wrong way" (MSDN blog, 2011).
 *
 * `splitCommandLine` is the inverse (cmd phase, then argv phase) for the lines we produce; the lab's
 * forced-command interpreter uses it, and the tests check quote → split round trips.
 */

import { usageError } from '../../domain/errors.ts';

/** Characters cmd.exe interprets on a command line. */
const CMD_METACHARACTERS = new Set(['(', ')', '%', '!', '^', '"', '<', '>', '&', '|']);

/** An argument no Windows command line can carry (NUL, CR, LF): a usage error naming it. */
function assertQuotable(arg: string): void {
  if (/[\0\r\n]/.test(arg)) {
    throw usageError(
      'WINDOWS_ARG_UNQUOTABLE',
      `a value holds a character a Windows command line cannot carry (NUL, CR or LF): ${JSON.stringify(arg)}`,
    );
  }
}

/**
 * Quotes one argument for CommandLineToArgvW / the MSVC runtime (no cmd.exe escaping).
 *
 * @example quoteArgument('C:\\Program Files\\x') // '"C:\\Program Files\\x"'
 * @example quoteArgument('a"b') // '"a\\"b"'
 */
export function quoteArgument(arg: string): string {
  assertQuotable(arg);
  if (arg !== '' && !/[ \t\v"]/.test(arg)) return arg;
  let out = '"';
  let backslashes = 0;
  for (const ch of arg) {
    if (ch === '\\') {
      backslashes++;
      continue;
    }
    if (ch === '"') out += '\\'.repeat(backslashes * 2 + 1) + '"';
    else out += '\\'.repeat(backslashes) + ch;
    backslashes = 0;
  }
  // Backslashes before the closing quote must be doubled, or they would escape it.
  return `${out}${'\\'.repeat(backslashes * 2)}"`;
}

/** Prefixes every cmd.exe metacharacter with `^`. */
export function escapeForCmd(text: string): string {
  let out = '';
  for (const ch of text) out += CMD_METACHARACTERS.has(ch) ? `^${ch}` : ch;
  return out;
}

/**
 * The argv-quoted line, without cmd.exe escaping: what CreateProcess takes (the Task Scheduler's
 * `<Arguments>`, Node's `windowsVerbatimArguments`).
 *
 * @example argvToCommandLine(['node.exe', 'a b']) // 'node.exe "a b"'
 */
export function argvToCommandLine(argv: readonly string[]): string {
  return argv.map(quoteArgument).join(' ');
}

/**
 * The line to hand to cmd.exe (an SSH exec request to Windows' OpenSSH with its default shell).
 *
 * @example argvToCmdLine(['schtasks', '/Run', '/TN', 'Patchline\\a&b']) // 'schtasks /Run /TN Patchline\\a^&b'
 */
export function argvToCmdLine(argv: readonly string[]): string {
  return escapeForCmd(argvToCommandLine(argv));
}

/** cmd.exe's caret phase for a line whose quotes are all caret-escaped: `^x` → `x`. */
function unescapeCmd(line: string): string {
  let out = '';
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '^' && i + 1 < line.length) {
      out += line[i + 1];
      i++;
    } else if (ch === '"' || ch === '&' || ch === '|' || ch === '<' || ch === '>') {
      // Not produced by argvToCmdLine: cmd would act on it (quote mode, a second command, a redirection).
      throw new Error(
        `unescaped cmd.exe metacharacter ${JSON.stringify(ch)} at column ${i + 1}: not a line Patchline sends`,
      );
    } else {
      out += ch;
    }
  }
  return out;
}

/**
 * Splits a command line by the MSVC runtime rules (every argument, including the first, is
 * parsed with the same rules — our program names never need the first-argument special case).
 */
export function splitArgv(line: string): string[] {
  const args: string[] = [];
  let current = '';
  let inArg = false;
  let quoted = false;
  for (let i = 0; i < line.length;) {
    const ch = line[i]!;
    if (!quoted && (ch === ' ' || ch === '\t')) {
      if (inArg) args.push(current);
      current = '';
      inArg = false;
      i++;
      continue;
    }
    inArg = true;
    if (ch === '\\') {
      let n = 0;
      while (line[i] === '\\') {
        n++;
        i++;
      }
      if (line[i] === '"') {
        current += '\\'.repeat(Math.floor(n / 2));
        if (n % 2 === 1) {
          current += '"';
          i++;
        }
      } else {
        current += '\\'.repeat(n);
      }
      continue;
    }
    if (ch === '"') {
      // Inside quotes, `""` is a literal quote (MSVC 2008+ rule).
      if (quoted && line[i + 1] === '"') {
        current += '"';
        i += 2;
        continue;
      }
      quoted = !quoted;
      i++;
      continue;
    }
    current += ch;
    i++;
  }
  if (inArg) args.push(current);
  return args;
}

/**
 * The argv a line built by `argvToCmdLine` gives the program on Windows.
 *
 * @example splitCommandLine('schtasks /Run /TN Patchline\\a^&b') // ['schtasks', '/Run', '/TN', 'Patchline\\a&b']
 */
export function splitCommandLine(cmdLine: string): string[] {
  return splitArgv(unescapeCmd(cmdLine));
}
