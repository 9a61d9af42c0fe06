/**
 * Authenticode signatures of cabinets: the verifier against a real signed cabinet (gcab's
 * test-signed.cab), lab-signed catalogs, every way a catalog must be rejected, and osslsigncode
 * as an independent oracle in both directions (skipped with a reason when it is not installed).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  createLabRoot,
  defaultRoots,
  inspectCabSignature,
  signCab,
  verifyCabSignature,
  type LabRoot,
} from '../src/catalog/authenticode/index.ts';
import { issueCertificate } from '../src/catalog/authenticode/certificate-builder.ts';
import { OID } from '../src/catalog/authenticode/oids.ts';
import { PatchlineError } from '../src/domain/errors.ts';
import { skipWithoutTestdata, testdata } from './testdata.ts';

const run = promisify(execFile);
const SHARED_CAB = testdata('cab');
const GCAB_SIGNED = join(SHARED_CAB, 'gcab/test-signed.cab');
const UNSIGNED_SIMPLE = join(SHARED_CAB, 'cabarchive/simple.cab');
const UNSIGNED_MULTI = join(SHARED_CAB, 'cabarchive/multi-folder-compressed.cab');
/** The suites below sign and verify the shared third-party cabinets. */
const skipShared = skipWithoutTestdata('cab', 'cabarchive', 'multi-folder-compressed.cab');
const OSSLSIGNCODE = '/usr/bin/osslsigncode';
const OPENSSL = '/usr/bin/openssl';
const TOOL_TIMEOUT_MS = 20_000;
const haveOsslsigncode = existsSync(OSSLSIGNCODE);
const noOsslsigncode = haveOsslsigncode ? false : 'osslsigncode is not installed (apt-get install osslsigncode)';
const noOpenssl = haveOsslsigncode && existsSync(OPENSSL) ? false : 'osslsigncode or openssl is not installed';

/** Awaits a rejection and returns the PatchlineError it carried. */
async function rejection(p: Promise<unknown>): Promise<PatchlineError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof PatchlineError, `expected a PatchlineError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  return (await rejection(p)).code;
}

async function osslsigncode(...args: string[]): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run(OSSLSIGNCODE, args, { timeout: TOOL_TIMEOUT_MS });
    return { ok: true, output: stdout + stderr };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return { ok: false, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

let dir: string;
let lab: LabRoot;
let labSigned: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'patchline-authenticode-'));
  if (skipShared) return;
  lab = await createLabRoot({ dir: join(dir, 'lab') });
  labSigned = join(dir, 'lab-signed.cab');
  await signCab(UNSIGNED_MULTI, labSigned, { certPem: lab.certPem, keyPem: lab.keyPem });
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A copy of the lab-signed cabinet to damage. */
async function copyOfSigned(name: string): Promise<string> {
  const path = join(dir, name);
  await copyFile(labSigned, path);
  return path;
}

describe('the real signed cabinet (gcab test-signed.cab)', { skip: skipShared }, () => {
  it('our digest of the file equals the digest inside its signature', async () => {
    const info = await inspectCabSignature(GCAB_SIGNED);
    assert.ok(info, 'a signature is found');
    assert.equal(info.digestAlgorithm, 'sha1');
    assert.equal(info.signatureOffset, 139);
    assert.equal(info.computedDigest, info.signedDigest);
    assert.equal(info.signedDigest, '1b61dba14d36350d609afd35a21afad0cd72849d');
    // The chain it carries: one self-signed LVFS test CA, which also is the signer.
    assert.equal(info.signerSubject, 'CN=LVFS CA, O=Linux Vendor Firmware Project');
    assert.deepEqual(info.certificates, [
      { subject: 'CN=LVFS CA, O=Linux Vendor Firmware Project', issuer: 'CN=LVFS CA, O=Linux Vendor Firmware Project' },
    ]);
  });

  it('is rejected as CATALOG_SIGNATURE_INVALID: its RSA signature value does not verify', async () => {
    // osslsigncode agrees (next test): the file digest matches, the signature value does not.
    assert.equal(await codeOf(verifyCabSignature(GCAB_SIGNED, { roots: defaultRoots() })), 'CATALOG_SIGNATURE_INVALID');
  });

  it('osslsigncode computes the same digest and also fails the signature value', { skip: noOsslsigncode }, async () => {
    const lvfs = join(dir, 'lvfs.pem');
    const blob = (await readFile(GCAB_SIGNED)).subarray(139);
    const { certificates } = (await inspectCabSignature(GCAB_SIGNED))!;
    assert.equal(certificates.length, 1);
    await writeFile(join(dir, 'gcab-sig.der'), blob);
    const { stdout } = await run(
      OPENSSL,
      ['pkcs7', '-inform', 'DER', '-in', join(dir, 'gcab-sig.der'), '-print_certs'],
      {
        timeout: TOOL_TIMEOUT_MS,
      },
    );
    await writeFile(lvfs, stdout);
    const result = await osslsigncode('verify', '-in', GCAB_SIGNED, '-CAfile', lvfs);
    assert.equal(result.ok, false);
    assert.match(result.output, /Calculated message digest : 1B61DBA14D36350D609AFD35A21AFAD0CD72849D/);
    assert.match(result.output, /signature failure/);
  });
});

describe('lab-signed catalogs', { skip: skipShared }, () => {
  it('verify with the lab root and report signer, chain and time', async () => {
    const info = await verifyCabSignature(labSigned, { roots: [lab.rootPem] });
    assert.equal(info.signer.subject, 'CN=Patchline Lab Catalog Signing, O=Patchline Lab');
    assert.deepEqual(info.chain, [
      'CN=Patchline Lab Catalog Signing, O=Patchline Lab',
      'CN=Patchline Lab Root CA, O=Patchline Lab',
    ]);
    assert.equal(info.digestAlgorithm, 'sha256');
    assert.equal(info.timestamped, false);
    assert.equal(info.validatedAtSource, 'signing-time');
    assert.ok(info.signingTime && Math.abs(info.signingTime.getTime() - Date.now()) < 10 * 60_000);
  });

  it('are CATALOG_UNTRUSTED without the lab root (Microsoft roots only)', async () => {
    assert.equal(await codeOf(verifyCabSignature(labSigned, { roots: defaultRoots() })), 'CATALOG_UNTRUSTED');
  });

  it('createLabRoot reuses the CA already in its directory', async () => {
    const again = await createLabRoot({ dir: join(dir, 'lab') });
    assert.equal(again.rootPem, lab.rootPem);
    assert.equal((await stat(join(dir, 'lab', 'lab-signing-key.pem'))).mode & 0o777, 0o600);
  });

  it('re-signing replaces the old signature (sha1 this time) and still verifies', async () => {
    const resigned = join(dir, 'resigned.cab');
    await signCab(labSigned, resigned, { certPem: lab.certPem, keyPem: lab.keyPem, digestAlgorithm: 'sha1' });
    const info = await verifyCabSignature(resigned, { roots: [lab.rootPem] });
    assert.equal(info.digestAlgorithm, 'sha1');
    // Same cabinet data: only the signature differs in size, the header layout is kept.
    assert.equal(
      (await inspectCabSignature(resigned))!.signatureOffset,
      (await inspectCabSignature(labSigned))!.signatureOffset,
    );
  });

  it('validity is checked at the signing time: expired now is fine, signed after expiry is not', async () => {
    const old = await createLabRoot({ dir: join(dir, 'old-lab'), now: new Date('2020-01-01T00:00:00Z') });
    const inWindow = join(dir, 'old-in-window.cab');
    await signCab(UNSIGNED_SIMPLE, inWindow, {
      certPem: old.certPem,
      keyPem: old.keyPem,
      signingTime: new Date('2021-06-01T00:00:00Z'),
    });
    const info = await verifyCabSignature(inWindow, { roots: [old.rootPem] });
    assert.equal(info.validatedAt.toISOString(), '2021-06-01T00:00:00.000Z');

    const afterExpiry = join(dir, 'old-after-expiry.cab');
    await signCab(UNSIGNED_SIMPLE, afterExpiry, {
      certPem: old.certPem,
      keyPem: old.keyPem,
      signingTime: new Date('2026-01-01T00:00:00Z'),
    });
    const error = await rejection(verifyCabSignature(afterExpiry, { roots: [old.rootPem] }));
    assert.equal(error.code, 'CATALOG_UNTRUSTED');
    assert.match(error.message, /was not valid at 2026-01-01T00:00:00\.000Z/);
  });

  it('signCab refuses a certificate without the code-signing EKU', async () => {
    const code = await codeOf(
      signCab(UNSIGNED_SIMPLE, join(dir, 'x.cab'), { certPem: lab.rootPem, keyPem: lab.keyPem }),
    );
    assert.equal(code, 'CAB_SIGN_FAILED');
  });
});

describe('rejections', { skip: skipShared }, () => {
  it('one byte changed in the cabinet body → CATALOG_TAMPERED', async () => {
    const path = await copyOfSigned('tampered-body.cab');
    const bytes = await readFile(path);
    const { signatureOffset } = (await inspectCabSignature(path))!;
    const at = Math.floor(signatureOffset / 2); // inside the compressed data, well past the header
    bytes[at] = (bytes[at] as number) ^ 0x01;
    await writeFile(path, bytes);
    assert.equal(await codeOf(verifyCabSignature(path, { roots: [lab.rootPem] })), 'CATALOG_TAMPERED');
  });

  it('a changed header field (file count) → CATALOG_TAMPERED', async () => {
    const path = await copyOfSigned('tampered-header.cab');
    const bytes = await readFile(path);
    bytes.writeUInt16LE(bytes.readUInt16LE(28) + 1, 28);
    await writeFile(path, bytes);
    assert.equal(await codeOf(verifyCabSignature(path, { roots: [lab.rootPem] })), 'CATALOG_TAMPERED');
  });

  it('bytes appended after the signature → CATALOG_TAMPERED', async () => {
    const path = await copyOfSigned('appended.cab');
    await writeFile(path, Buffer.concat([await readFile(path), Buffer.from('extra')]));
    assert.equal(await codeOf(verifyCabSignature(path, { roots: [lab.rootPem] })), 'CATALOG_TAMPERED');
  });

  it('an unsigned cabinet → CATALOG_UNSIGNED', async () => {
    assert.equal(await codeOf(verifyCabSignature(UNSIGNED_SIMPLE, { roots: defaultRoots() })), 'CATALOG_UNSIGNED');
    assert.equal(await inspectCabSignature(UNSIGNED_SIMPLE), undefined);
  });

  it('a file that is not a cabinet → CATALOG_NOT_CABINET', async () => {
    const path = join(dir, 'error-page.cab');
    await writeFile(path, '<html><body>503 Service Unavailable</body></html>');
    assert.equal(await codeOf(verifyCabSignature(path, { roots: defaultRoots() })), 'CATALOG_NOT_CABINET');
  });

  it('a truncated signature → CATALOG_SIGNATURE_INVALID', async () => {
    const path = await copyOfSigned('truncated.cab');
    await truncate(path, (await stat(path)).size - 100);
    assert.equal(await codeOf(verifyCabSignature(path, { roots: [lab.rootPem] })), 'CATALOG_SIGNATURE_INVALID');
  });

  it('a flipped bit in the signature value → CATALOG_SIGNATURE_INVALID', async () => {
    const path = await copyOfSigned('bad-signature-value.cab');
    const bytes = await readFile(path);
    // The RSA signature value is the last OCTET STRING of the blob, just before the zero padding.
    let end = bytes.length;
    while (bytes[end - 1] === 0) end--;
    bytes[end - 10] = (bytes[end - 10] as number) ^ 0x01;
    await writeFile(path, bytes);
    assert.equal(await codeOf(verifyCabSignature(path, { roots: [lab.rootPem] })), 'CATALOG_SIGNATURE_INVALID');
  });

  it('every shared cabinet test vector gets a verdict, never a crash', async () => {
    const { readdir } = await import('node:fs/promises');
    const entries = await readdir(SHARED_CAB, { recursive: true, withFileTypes: true });
    const cabs = entries.filter((e) => e.isFile() && e.name.endsWith('.cab')).map((e) => join(e.parentPath, e.name));
    assert.ok(cabs.length > 10);
    const codes = new Set<string>();
    for (const cab of cabs) codes.add(await codeOf(verifyCabSignature(cab, { roots: defaultRoots() })));
    assert.ok(
      [...codes].every((c) => c.startsWith('CATALOG_')),
      [...codes].join(' '),
    );
  });

  it('a bit flipped anywhere in the signature blob never crashes the verifier', async () => {
    const original = await readFile(labSigned);
    const { signatureOffset } = (await inspectCabSignature(labSigned))!;
    const path = join(dir, 'flipped.cab');
    const STRIDE_BYTES = 13; // every 13th byte touches every structure of the blob in ~120 runs
    for (let at = signatureOffset; at < original.length; at += STRIDE_BYTES) {
      const bytes = Buffer.from(original);
      bytes[at] = (bytes[at] as number) ^ 0x10;
      await writeFile(path, bytes);
      // No shipped intermediates: the lab chain does not need them, and parsing them costs ~50 ms a run.
      await verifyCabSignature(path, { roots: [lab.rootPem], intermediates: [] }).catch((e: unknown) => {
        assert.ok(e instanceof PatchlineError && e.code.startsWith('CATALOG_'), `offset ${at}: ${String(e)}`);
      });
    }
  });

  it('a missing file → CATALOG_UNREADABLE', async () => {
    assert.equal(
      await codeOf(verifyCabSignature(join(dir, 'nope.cab'), { roots: defaultRoots() })),
      'CATALOG_UNREADABLE',
    );
  });

  it('a --trust file without certificates is a usage error', async () => {
    assert.equal(await codeOf(verifyCabSignature(labSigned, { roots: ['not a pem'] })), 'TRUST_CERT_INVALID');
  });
});

describe('cross-check with osslsigncode', { skip: skipShared }, () => {
  it(
    'osslsigncode accepts our signature and removing it restores the original cabinet byte for byte',
    { skip: noOsslsigncode },
    async () => {
      const rootFile = join(dir, 'lab', 'lab-root.pem');
      const verified = await osslsigncode('verify', '-in', labSigned, '-CAfile', rootFile);
      assert.ok(verified.ok, verified.output);
      assert.match(verified.output, /Signature verification: ok/);
      const stripped = join(dir, 'stripped.cab');
      const removed = await osslsigncode('remove-signature', '-in', labSigned, '-out', stripped);
      assert.ok(removed.ok, removed.output);
      assert.deepEqual(await readFile(stripped), await readFile(UNSIGNED_MULTI));
    },
  );

  it('we accept a cabinet osslsigncode signed, and reject it once tampered', { skip: noOsslsigncode }, async () => {
    const certFile = join(dir, 'lab', 'lab-signing-cert.pem');
    const keyFile = join(dir, 'lab', 'lab-signing-key.pem');
    const out = join(dir, 'by-osslsigncode.cab');
    const signed = await osslsigncode(
      'sign',
      '-certs',
      certFile,
      '-key',
      keyFile,
      '-h',
      'sha256',
      '-in',
      UNSIGNED_MULTI,
      '-out',
      out,
    );
    assert.ok(signed.ok, signed.output);
    const info = await verifyCabSignature(out, { roots: [lab.rootPem] });
    assert.equal(info.signer.subject, 'CN=Patchline Lab Catalog Signing, O=Patchline Lab');

    const bytes = await readFile(out);
    bytes[200] = (bytes[200] as number) ^ 0xff;
    await writeFile(out, bytes);
    assert.equal(await codeOf(verifyCabSignature(out, { roots: [lab.rootPem] })), 'CATALOG_TAMPERED');
  });

  it('a signer certificate without the code-signing EKU → CATALOG_UNTRUSTED', { skip: noOpenssl }, async () => {
    // openssl makes a self-signed certificate with no EKU; osslsigncode signs with it.
    const key = join(dir, 'noeku.key');
    const cert = join(dir, 'noeku.pem');
    await run(
      OPENSSL,
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '30',
        '-subj',
        '/CN=No EKU Signer',
      ],
      { timeout: TOOL_TIMEOUT_MS },
    );
    const out = join(dir, 'noeku.cab');
    const signed = await osslsigncode('sign', '-certs', cert, '-key', key, '-in', UNSIGNED_SIMPLE, '-out', out);
    assert.ok(signed.ok, signed.output);
    const error = await verifyCabSignature(out, { roots: [await readFile(cert, 'utf8')] }).catch((e: unknown) => e);
    assert.ok(error instanceof PatchlineError);
    assert.equal(error.code, 'CATALOG_UNTRUSTED');
    assert.match(error.message, /not valid for code signing/);
  });
});

describe('timestamps (osslsigncode built-in RFC 3161 authority)', { skip: skipShared }, () => {
  const TIMESTAMP = new Date('2021-06-01T00:00:00Z');
  let tsaRootPem: string;
  let oldLabRootPem: string;
  let timestamped: string;

  before(async () => {
    if (noOsslsigncode) return;
    // A timestamp authority valid 2019–2035 and a code-signing leaf that expired in 2022.
    const root = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const leaf = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const window = { notBefore: new Date('2019-01-01T00:00:00Z'), notAfter: new Date('2035-01-01T00:00:00Z') };
    const byRoot = { issuer: 'Test TSA Root', issuerKey: root.privateKey, issuerPublicKey: root.publicKey };
    tsaRootPem = issueCertificate({
      ...window,
      ...byRoot,
      subject: 'Test TSA Root',
      publicKey: root.publicKey,
      ca: true,
    });
    const tsaPem = issueCertificate({
      ...window,
      ...byRoot,
      subject: 'Test TSA',
      publicKey: leaf.publicKey,
      ca: false,
      extendedKeyUsage: [OID.ekuTimeStamping],
      extendedKeyUsageCritical: true,
    });
    await writeFile(join(dir, 'tsa-chain.pem'), tsaPem + tsaRootPem);
    await writeFile(join(dir, 'tsa.key'), leaf.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    const oldLab = join(dir, 'old-lab'); // the expired lab CA of the validity test (made here if that test did not run)
    oldLabRootPem = (await createLabRoot({ dir: oldLab, now: new Date('2020-01-01T00:00:00Z') })).rootPem;
    timestamped = join(dir, 'timestamped.cab');
    const signed = await osslsigncode(
      'sign',
      '-certs',
      join(oldLab, 'lab-signing-cert.pem'),
      '-key',
      join(oldLab, 'lab-signing-key.pem'),
      '-TSA-certs',
      join(dir, 'tsa-chain.pem'),
      '-TSA-key',
      join(dir, 'tsa.key'),
      '-TSA-time',
      String(TIMESTAMP.getTime() / 1000),
      '-in',
      UNSIGNED_SIMPLE,
      '-out',
      timestamped,
    );
    assert.ok(signed.ok, signed.output);
  });

  it('a trusted timestamp makes a signer that has expired since valid', { skip: noOsslsigncode }, async () => {
    const info = await verifyCabSignature(timestamped, { roots: [oldLabRootPem, tsaRootPem] });
    assert.equal(info.timestamped, true);
    assert.equal(info.validatedAtSource, 'timestamp');
    assert.equal(info.signingTime?.toISOString(), TIMESTAMP.toISOString());
  });

  it(
    'an untrusted timestamp is ignored: the signing time (now) applies and the expired signer fails',
    { skip: noOsslsigncode },
    async () => {
      const error = await rejection(verifyCabSignature(timestamped, { roots: [oldLabRootPem] }));
      assert.equal(error.code, 'CATALOG_UNTRUSTED');
      assert.match(error.message, /its timestamp was ignored/);
    },
  );
});

describe('shipped roots', () => {
  it('defaultRoots() holds the two Microsoft roots', async () => {
    const { X509Certificate } = await import('node:crypto');
    const subjects = defaultRoots().map((pem) =>
      new X509Certificate(pem).subject.split('\n').find((l) => l.startsWith('CN=')),
    );
    assert.deepEqual(subjects.sort(), [
      'CN=Microsoft Root Certificate Authority 2010',
      'CN=Microsoft Root Certificate Authority 2011',
    ]);
  });
});
