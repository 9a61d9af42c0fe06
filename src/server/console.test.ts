// The console's files: served without a credential (they hold no data) under a strict CSP, while
// the API beside them still refuses anonymous callers; a missing build says how to make it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { consoleRoutes, CONTENT_SECURITY_POLICY } from './console.ts';
import { errorHandler } from './errors.ts';

function builtConsole(): string {
  const dir = mkdtempSync(join(tmpdir(), 'patchline-console-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><script type="module" src="/assets/app-1.js"></script>');
  writeFileSync(join(dir, 'assets', 'app-1.js'), 'console.log(1)');
  return dir;
}

async function app(dir: string) {
  const a = Fastify({ logger: false });
  a.setErrorHandler(errorHandler);
  await consoleRoutes(a, dir);
  await a.ready();
  return a;
}

describe('console files', () => {
  it('serves index.html with a CSP that allows no inline script and no framing', async () => {
    const a = await app(builtConsole());
    const res = await a.inject({ url: '/' });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /app-1\.js/);
    const csp = String(res.headers['content-security-policy']);
    assert.equal(csp, CONTENT_SECURITY_POLICY);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['cache-control'], 'no-cache');
    await a.close();
  });

  it('serves hashed assets as immutable and refuses paths outside the build', async () => {
    const a = await app(builtConsole());
    const res = await a.inject({ url: '/assets/app-1.js' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['cache-control']), /immutable/);
    const escape = await a.inject({ url: '/assets/..%2f..%2fetc%2fpasswd' });
    assert.notEqual(escape.statusCode, 200);
    await a.close();
  });

  it('answers 503 CONSOLE_NOT_BUILT with the command to run when the build is missing', async () => {
    const a = await app(mkdtempSync(join(tmpdir(), 'patchline-noconsole-')));
    const res = await a.inject({ url: '/' });
    assert.equal(res.statusCode, 503);
    const body = res.json() as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'CONSOLE_NOT_BUILT');
    assert.match(body.error.message, /npm run build:web/);
    await a.close();
  });
});
