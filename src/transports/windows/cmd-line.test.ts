import { test } from 'node:test';
import assert from 'node:assert/strict';
import { argvToCmdLine, argvToCommandLine, quoteArgument, splitArgv, splitCommandLine } from './cmd-line.ts';
import { PatchlineError } from '../../domain/errors.ts';

test('quoteArgument follows the CommandLineToArgvW rules', () => {
  const table: ReadonlyArray<readonly [string, string]> = [
    ['plain', 'plain'],
    ['', '""'],
    ['a b', '"a b"'],
    ['C:\\Program Files\\node.exe', '"C:\\Program Files\\node.exe"'],
    ['C:\\dir\\', 'C:\\dir\\'], // no space: backslashes stay literal
    ['C:\\my dir\\', '"C:\\my dir\\\\"'], // trailing backslash doubled before the closing quote
    ['a"b', '"a\\"b"'],
    ['a\\"b', '"a\\\\\\"b"'], // one backslash before a quote: 3 backslashes + quote
    ['tab\there', '"tab\there"'],
  ];
  for (const [arg, quoted] of table) assert.equal(quoteArgument(arg), quoted, JSON.stringify(arg));
});

test('argvToCmdLine caret-escapes what cmd.exe would interpret', () => {
  assert.equal(argvToCmdLine(['schtasks.exe', '/Run', '/TN', 'a&b|c']), 'schtasks.exe /Run /TN a^&b^|c');
  assert.equal(argvToCmdLine(['x', '50% (done) <ok> ^!']), 'x ^"50^% ^(done^) ^<ok^> ^^^!^"');
  assert.equal(argvToCommandLine(['x', 'a b&c']), 'x "a b&c"', 'no cmd escaping where no cmd.exe reads the line');
});

test('splitCommandLine undoes argvToCmdLine for any printable argument', () => {
  const alphabet = [
    'a',
    'Z',
    '0',
    ' ',
    '\t',
    '"',
    '\\',
    '\\\\',
    '%',
    '!',
    '^',
    '&',
    '|',
    '<',
    '>',
    '(',
    ')',
    "'",
    'é',
    '€',
    '/',
    ':',
  ];
  let seed = 12345;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 2000; i++) {
    const argv = Array.from({ length: 1 + random(4) }, () =>
      Array.from({ length: random(8) }, () => alphabet[random(alphabet.length)]).join(''),
    );
    argv[0] = 'prog.exe';
    assert.deepEqual(splitCommandLine(argvToCmdLine(argv)), argv, JSON.stringify(argv));
    assert.deepEqual(splitArgv(argvToCommandLine(argv)), argv, JSON.stringify(argv));
  }
});

test('splitArgv reads lines written by others by the same rules', () => {
  assert.deepEqual(splitArgv('a  "b c"   d\\\\"e f"'), ['a', 'b c', 'd\\e f']);
  assert.deepEqual(splitArgv('"say ""hi"""'), ['say "hi"']);
  assert.deepEqual(splitArgv('a\\\\b "c\\\\"'), ['a\\\\b', 'c\\']);
});

test('splitCommandLine refuses a line with an unescaped cmd.exe operator (it would run a second command)', () => {
  assert.throws(() => splitCommandLine('schtasks /Run /TN x & del C:\\x'), /unescaped cmd\.exe metacharacter "&"/);
});

test('arguments a command line cannot carry are refused with a stable code', () => {
  for (const bad of ['a\nb', 'a\rb', 'a\0b']) {
    assert.throws(
      () => quoteArgument(bad),
      (e: unknown) => e instanceof PatchlineError && e.code === 'WINDOWS_ARG_UNQUOTABLE' && e.exitCode === 64,
    );
  }
});
