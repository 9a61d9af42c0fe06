/** Digest forms: the catalog's base64 and the URLs' hex name the same file. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeSpec, specFromCatalogFile, toHex } from './digest.ts';

test('base64 and hex digests normalise to the same lower-case hex; SHA-256 is the key when known', () => {
  // SHA-1 of the empty string, as File/@Digest (base64) and as hex.
  assert.equal(toHex('2jmj7l5rSw0yVb/vlWAYkK/YBwk=', 20), 'da39a3ee5e6b4b0d3255bfef95601890afd80709');
  assert.equal(toHex('DA39A3EE5E6B4B0D3255BFEF95601890AFD80709', 20), 'da39a3ee5e6b4b0d3255bfef95601890afd80709');
  assert.equal(toHex('2jmj7l5rSw0yVb/vlWAYkK/YBwk=', 32), null, 'a SHA-1 is not a SHA-256');
  const sha256 = '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=';
  assert.equal(
    normalizeSpec({ sha1: '2jmj7l5rSw0yVb/vlWAYkK/YBwk=', sha256, url: 'http://x/a' }).key,
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  );
  assert.equal(
    normalizeSpec({ sha1: '2jmj7l5rSw0yVb/vlWAYkK/YBwk=', url: 'http://x/a' }).key,
    'da39a3ee5e6b4b0d3255bfef95601890afd80709',
  );
});

test('a file without a usable digest is refused: nothing unverified is cached', () => {
  assert.throws(
    () => normalizeSpec({ sha1: 'nope', url: 'http://x/a' }),
    (e: Error & { code?: string }) => e.code === 'CONTENT_NO_DIGEST',
  );
});

test('catalog payload files become cache specs; one without a URL cannot be fetched', () => {
  const f = {
    id: 'x',
    sha1: '2jmj7l5rSw0yVb/vlWAYkK/YBwk=',
    sha256: null,
    url: 'http://download.windowsupdate.com/x.cab',
    size: 0,
    fileName: 'x.cab',
  };
  assert.equal(normalizeSpec(specFromCatalogFile(f)!).key, 'da39a3ee5e6b4b0d3255bfef95601890afd80709');
  assert.equal(specFromCatalogFile({ ...f, url: null }), null);
});
