/**
 * Chain building on certificates issued for the test: what makes a path acceptable for code
 * signing (validity at a time, CA flags, path length, EKU nesting) and that a hostile pile of
 * cross-signed certificates cannot make the search run away.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { issueCertificate, type CertificateSpec } from './certificate-builder.ts';
import { certsFromPem, type CertInfo } from './certificate.ts';
import { buildChain, MAX_CHAIN_SEARCH_STEPS } from './chain.ts';
import { OID } from './oids.ts';

const VALID = { notBefore: new Date('2024-01-01T00:00:00Z'), notAfter: new Date('2030-01-01T00:00:00Z') };
const AT = new Date('2026-06-01T00:00:00Z');
// RSA key generation dominates this file's run time; 1024-bit keys are plenty for path logic.
const TEST_KEY_BITS = 1024;

interface Party {
  readonly name: string;
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

function party(name: string): Party {
  return { name, ...generateKeyPairSync('rsa', { modulusLength: TEST_KEY_BITS }) };
}

function issue(subject: Party, issuer: Party, extra: Partial<CertificateSpec> & { ca: boolean }): CertInfo {
  const pem = issueCertificate({
    ...VALID,
    subject: subject.name,
    issuer: issuer.name,
    publicKey: subject.publicKey,
    issuerKey: issuer.privateKey,
    issuerPublicKey: issuer.publicKey,
    ...extra,
  });
  return certsFromPem(pem)[0] as CertInfo;
}

const root = party('Root');
const mid = party('Intermediate');
const signer = party('Signer');
const rootCert = issue(root, root, { ca: true, pathLen: 1 });
const midCert = issue(mid, root, { ca: true });
const leafCert = issue(signer, mid, { ca: false, extendedKeyUsage: [OID.ekuCodeSigning] });

describe('buildChain', () => {
  it('builds leaf → intermediate → root and names each subject', () => {
    const result = buildChain(leafCert, [midCert], [rootCert], AT, OID.ekuCodeSigning);
    assert.ok(result.ok, result.ok ? '' : result.reason);
    assert.deepEqual(
      result.chain.map((c) => c.subject),
      ['CN=Signer, O=Patchline Lab', 'CN=Intermediate, O=Patchline Lab', 'CN=Root, O=Patchline Lab'],
    );
  });

  it('fails without the intermediate, outside the validity window, or for another purpose', () => {
    const missing = buildChain(leafCert, [], [rootCert], AT, OID.ekuCodeSigning);
    assert.ok(!missing.ok && /no trusted root certificate issued/.test(missing.reason));
    const late = buildChain(leafCert, [midCert], [rootCert], new Date('2031-01-01T00:00:00Z'), OID.ekuCodeSigning);
    assert.ok(!late.ok && /was not valid at 2031/.test(late.reason));
    const tsa = buildChain(leafCert, [midCert], [rootCert], AT, OID.ekuTimeStamping);
    assert.ok(!tsa.ok && /not valid for time stamping/.test(tsa.reason));
  });

  it('enforces the root path length and an intermediate restricted to TLS', () => {
    const strictRoot = issue(root, root, { ca: true, pathLen: 0 });
    const tooLong = buildChain(leafCert, [midCert], [strictRoot], AT, OID.ekuCodeSigning);
    assert.ok(!tooLong.ok && /path length of 0/.test(tooLong.reason));

    const tlsMid = issue(mid, root, { ca: true, extendedKeyUsage: ['1.3.6.1.5.5.7.3.1'] });
    const tls = buildChain(leafCert, [tlsMid], [rootCert], AT, OID.ekuCodeSigning);
    assert.ok(!tls.ok && /not allowed to issue certificates for code signing/.test(tls.reason));
  });

  it('refuses a non-CA as issuer', () => {
    const notCa = issue(mid, root, { ca: false, extendedKeyUsage: [OID.ekuCodeSigning] });
    const result = buildChain(leafCert, [notCa], [rootCert], AT, OID.ekuCodeSigning);
    assert.ok(!result.ok);
  });

  it('gives up within its step budget on a ring of cross-signed certificates', () => {
    // Eight CAs that all cross-sign each other: without a budget, 8^7 paths.
    const ring = Array.from({ length: 8 }, (_, i) => party(`Ring ${i}`));
    const crossCerts = ring.flatMap((a) =>
      ring.filter((b) => b !== a).map((b) => issue(a, b, { ca: true, pathLen: 9 })),
    );
    const victim = issue(signer, ring[0] as Party, { ca: false, extendedKeyUsage: [OID.ekuCodeSigning] });
    const started = performance.now();
    const result = buildChain(victim, crossCerts, [rootCert], AT, OID.ekuCodeSigning);
    assert.ok(!result.ok && result.reason.includes(String(MAX_CHAIN_SEARCH_STEPS)));
    assert.ok(performance.now() - started < 10_000);
  });
});
