import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { fingerprint, hostPattern, keyTypeOf, knownHostsLine, parseKnownHosts, verifyHostKey } from './known-hosts.ts';

/** An SSH wire-format key blob: string type, string 32 bytes (the shape of ssh-ed25519). */
function blob(seed: number): Buffer {
  const type = Buffer.from('ssh-ed25519');
  const key = Buffer.alloc(32, seed);
  const out = Buffer.alloc(4 + type.length + 4 + key.length);
  out.writeUInt32BE(type.length, 0);
  type.copy(out, 4);
  out.writeUInt32BE(key.length, 4 + type.length);
  key.copy(out, 8 + type.length);
  return out;
}

describe('known_hosts', () => {
  const a = blob(1);
  const b = blob(2);

  it('names hosts as OpenSSH does: bare on port 22, [host]:port otherwise', () => {
    assert.equal(hostPattern('web01', 22), 'web01');
    assert.equal(hostPattern('10.0.0.5', 2222), '[10.0.0.5]:2222');
  });

  it('gives OpenSSH-style SHA256 fingerprints (unpadded base64) and the key type', () => {
    assert.match(fingerprint(a), /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.notEqual(fingerprint(a), fingerprint(b));
    assert.equal(keyTypeOf(a), 'ssh-ed25519');
  });

  it('knows a recorded key, calls a host without entries unknown, and a different key changed (with both fingerprints)', () => {
    const entries = parseKnownHosts(
      `# comment\n\n${knownHostsLine('[127.0.0.1]:2201', a)}\nweb02 ssh-ed25519 ${b.toString('base64')}\n`,
    );
    assert.equal(verifyHostKey(entries, '[127.0.0.1]:2201', a).status, 'known');
    const unknown = verifyHostKey(entries, '[127.0.0.1]:2202', a);
    assert.equal(unknown.status, 'unknown');
    const changed = verifyHostKey(entries, '[127.0.0.1]:2201', b);
    assert.equal(changed.status, 'changed');
    assert.ok(
      changed.status === 'changed' &&
        changed.expected.includes(fingerprint(a)) &&
        changed.fingerprint === fingerprint(b),
    );
  });

  it('reads hashed entries (HashKnownHosts yes) and comma lists of names', () => {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('web01').digest('base64');
    const entries = parseKnownHosts(
      `|1|${salt.toString('base64')}|${hash} ssh-ed25519 ${a.toString('base64')}\nweb03,10.0.0.3 ssh-ed25519 ${b.toString('base64')}\n`,
    );
    assert.equal(verifyHostKey(entries, 'web01', a).status, 'known');
    assert.equal(verifyHostKey(entries, 'web01', b).status, 'changed');
    assert.equal(verifyHostKey(entries, '10.0.0.3', b).status, 'known');
  });

  it('refuses a revoked key even where it is listed for the host', () => {
    const entries = parseKnownHosts(
      `@revoked * ssh-ed25519 ${a.toString('base64')}\nweb01 ssh-ed25519 ${a.toString('base64')}\n`,
    );
    assert.equal(verifyHostKey(entries, 'web01', a).status, 'revoked');
  });
});
