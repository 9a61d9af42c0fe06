import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { displayName, outputPathBytes, usesUnixSeparators } from './names.ts';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('usesUnixSeparators (cabextract rules)', () => {
  const cases: [string, string[], boolean][] = [
    ['no slashes → DOS', ['a', 'b'], false],
    ['only backslashes → DOS', ['a\\b', 'c'], false],
    ['only slashes → UNIX', ['a/b', 'c'], true],
    ['one file with both: the first slash decides', ['x/y\\z'], true],
    ['both kinds: a repeated leading directory decides', ['dir\\a/b', 'dir\\c'], false],
    ['both kinds, nothing repeated → DOS', ['a/b', 'c\\d'], false],
  ];
  for (const [what, names, unix] of cases) {
    it(what, () => assert.equal(usesUnixSeparators(names.map(b)), unix));
  }
});

describe('outputPathBytes (cabextract sanitising)', () => {
  const cases: [string, boolean, boolean, string][] = [
    ['1\\2\\3\\4.c', false, false, '1/2/3/4.c'],
    ['\\absolute\\path', false, false, 'absolute/path'],
    ['\\\\\\', false, false, 'x'],
    ['..\\..\\relative\\path', false, false, 'xx/xx/relative/path'],
    ['relative\\..\\..\\path', false, false, 'relative/xx/xx/path'],
    ['a/b', false, false, 'a\\b'], // the other slash is kept literally
    ['/abs/../x', false, true, 'abs/xx/x'],
    ['ends/..', false, true, 'ends/..'], // cabextract leaves a final ".." alone; extraction refuses it
  ];
  for (const [name, utf8, unix, expected] of cases) {
    it(`${JSON.stringify(name)} → ${JSON.stringify(expected)}`, () => {
      assert.equal(outputPathBytes(b(name), utf8, unix).toString('latin1'), expected);
    });
  }

  it('re-encodes UTF-8 names, replacing invalid sequences and overlong slashes with U+FFFD', () => {
    const overlongSlash = Buffer.from([0x61, 0xc0, 0xaf, 0x62]); // "a" + overlong "/" + "b"
    assert.equal(outputPathBytes(overlongSlash, true, false).toString('utf8'), 'a\ufffd\ufffdb');
    assert.equal(outputPathBytes(Buffer.from('tést.dat', 'utf8'), true, false).toString('utf8'), 'tést.dat');
  });

  it('keeps the raw bytes of names without the UTF-8 flag', () => {
    const koi8 = Buffer.from([0xe4, 0xc1, 0x2e]);
    assert.deepEqual(outputPathBytes(koi8, false, false), koi8);
    assert.equal(displayName(koi8, false), '\ufffd\ufffd.');
  });
});
