/**
 * The agent pins its server's certificate: enrollment over TLS works with the fingerprint from the
 * token and is refused (AGENT_TLS_PIN_MISMATCH) against any other certificate — a self-signed one
 * an attacker made, or a server whose certificate changed. Plain HTTP is refused off loopback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { encodeEnrollToken, tokenSecretHash } from '../../domain/agent-protocol.ts';
import { createAgentGateway } from '../../server/gateway/gateway.ts';
import { MemoryGatewayStore } from '../../server/gateway/store.ts';
import { ensureSelfSigned } from '../../server/tls.ts';
import { enrollAgent } from './enroll.ts';
import { AgentHttp } from './http.ts';
import { AgentState } from './state.ts';

const SECRET = 'pinning-secret-0123456789';

test('enrollment pins the certificate named in the token and refuses any other', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'patchline-pin-'));
  const real = await ensureSelfSigned(join(dir, 'real'), new Date());
  const other = await ensureSelfSigned(join(dir, 'other'), new Date());
  const store = new MemoryGatewayStore();
  store.addEnrollToken({ hash: tokenSecretHash(SECRET), ring: 'pilot', expiresAt: null, usesLeft: null });
  const gateway = createAgentGateway({
    store,
    now: () => new Date(),
    policyFor: async () => {
      throw new Error('unused');
    },
    catalog: async () => null,
    content: async () => null,
  });
  const app = Fastify({ https: { cert: real.certPem, key: real.keyPem } });
  await app.register(gateway.plugin);
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const enroll = (fingerprint: string, name: string) =>
      enrollAgent({
        serverUrl: url,
        token: encodeEnrollToken({ secret: SECRET, fingerprint }),
        hostName: name,
        agentVersion: 't',
        state: new AgentState(join(dir, name)),
        now: () => new Date(),
        signal: AbortSignal.timeout(10_000),
      });
    await assert.rejects(
      enroll(other.fingerprint, 'web02'),
      (e: Error & { code?: string }) => e.code === 'AGENT_TLS_PIN_MISMATCH',
    );
    assert.equal(store.hosts.size, 0, 'nothing reached the server');
    const ok = await enroll(real.fingerprint, 'web01');
    assert.equal(ok.fingerprint, real.fingerprint.replace(/:/g, '').toLowerCase());
    assert.equal(store.hosts.size, 1);
  } finally {
    gateway.close();
    await app.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('plain HTTP only to loopback; https needs a fingerprint', () => {
  assert.throws(
    () => new AgentHttp({ serverUrl: 'http://patch01:8443', fingerprint: null }),
    (e: Error & { code?: string }) => e.code === 'AGENT_INSECURE_SERVER',
  );
  assert.throws(
    () => new AgentHttp({ serverUrl: 'https://patch01:8443', fingerprint: null }),
    (e: Error & { code?: string }) => e.code === 'AGENT_TLS_PIN_MISSING',
  );
  assert.doesNotThrow(() => void new AgentHttp({ serverUrl: 'http://127.0.0.1:8443', fingerprint: null }).close());
});
