/**
 * WuaClient against tiny fake provider processes (node scripts written to a temp dir): a good
 * one, one that crashes, prints garbage, stays silent, answers slowly, or speaks another version.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { PatchlineError } from '../domain/errors.ts';
import type { ProgressEvent, WarningEvent } from './protocol.ts';
import { WuaClient, inMemoryChannel, spawnProvider } from './client.ts';

const PRELUDE = `
import { createInterface } from 'node:readline';
const send = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const hello = (protocol = 1) => send({ type: 'hello', protocol, provider: 'fake', version: '0.0.1', computerName: 'web01' });
const status = (id) => ({ type: 'result', requestId: id, request: 'rebootStatus', resultCode: 'succeeded', hresult: null,
  data: { rebootRequired: false, installerBusy: false, lastBootUpTime: '2026-11-20T06:00:00Z' } });
const lines = createInterface({ input: process.stdin });
`;

let dir = '';
function fake(name: string, body: string): string[] {
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, PRELUDE + body);
  return [process.execPath, file];
}

async function rejectsWith(promise: Promise<unknown>, code: string, text?: RegExp): Promise<PatchlineError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof PatchlineError, `expected a PatchlineError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (text) assert.match(error.message, text);
    return error;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

describe('WuaClient', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'patchline-client-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('talks to a good provider: hello, progress routed to its request, typed result, clean close', async () => {
    const channel = spawnProvider(
      fake(
        'good',
        `
      hello();
      lines.on('line', (l) => {
        const r = JSON.parse(l);
        if (r.type === 'search') {
          send({ type: 'progress', requestId: r.id, phase: 'search', percent: 50 });
          send({ type: 'warning', requestId: r.id, message: 'search incomplete', hresult: '0x80240032' });
          send({ type: 'result', requestId: r.id, request: 'search', resultCode: 'succeededWithErrors', hresult: null, data: { updates: [] } });
        } else if (r.type === 'rebootStatus') send(status(r.id));
      });
    `,
      ),
    );
    const client = await WuaClient.start(channel, { helloTimeoutMs: 5_000 });
    assert.equal(client.hello.computerName, 'web01');
    const progress: ProgressEvent[] = [];
    const warnings: WarningEvent[] = [];
    const [search, reboot] = await Promise.all([
      client.request(
        { type: 'search', criteria: 'IsInstalled=0', serverSelection: 'default' },
        { timeoutMs: 5_000, onProgress: (e) => progress.push(e), onWarning: (e) => warnings.push(e) },
      ),
      client.request({ type: 'rebootStatus' }, { timeoutMs: 5_000 }),
    ]);
    assert.equal(search.resultCode, 'succeededWithErrors');
    assert.deepEqual(search.data?.updates, []);
    assert.equal(reboot.data?.lastBootUpTime, '2026-11-20T06:00:00Z');
    assert.deepEqual(
      progress.map((p) => p.percent),
      [50],
    );
    assert.equal(warnings[0]?.hresult, '0x80240032');
    await client.close();
    assert.equal((await channel.exited).code, 0);
  });

  it('reports a crash with its exit code and stderr, and rejects the running request', async () => {
    const channel = spawnProvider(
      fake(
        'crash',
        `
      hello();
      lines.on('line', () => { process.stderr.write('Exception: COM object 0x80070005 access denied\\n'); process.exit(3); });
    `,
      ),
    );
    const client = await WuaClient.start(channel, { helloTimeoutMs: 5_000 });
    await rejectsWith(
      client.request({ type: 'install', updateIds: ['a'] }, { timeoutMs: 5_000 }),
      'PROVIDER_CRASHED',
      /code 3 while install ran.*access denied/,
    );
    // Later requests fail at once with the same error instead of hanging.
    await rejectsWith(client.request({ type: 'rebootStatus' }, { timeoutMs: 5_000 }), 'PROVIDER_CRASHED');
    await client.close();
  });

  it('rejects a provider that prints garbage, quoting the line', async () => {
    const channel = spawnProvider(
      fake(
        'garbage',
        `
      process.stdout.write('DEBUG: starting WUA session\\n'); hello(); setInterval(() => {}, 1000);
    `,
      ),
    );
    await rejectsWith(
      WuaClient.start(channel, { helloTimeoutMs: 5_000 }),
      'PROVIDER_PROTOCOL',
      /DEBUG: starting WUA session/,
    );
    assert.equal((await channel.exited).signal, 'SIGKILL');
  });

  it('rejects an invalid result mid-conversation and fails the pending request', async () => {
    const channel = spawnProvider(
      fake(
        'invalid',
        `
      hello();
      lines.on('line', (l) => send({ type: 'result', requestId: JSON.parse(l).id, request: 'rebootStatus', resultCode: 'maybe' }));
      setInterval(() => {}, 1000);
    `,
      ),
    );
    const client = await WuaClient.start(channel, { helloTimeoutMs: 5_000 });
    await rejectsWith(
      client.request({ type: 'rebootStatus' }, { timeoutMs: 5_000 }),
      'PROVIDER_PROTOCOL',
      /resultCode/,
    );
    await client.close();
  });

  it('gives up on a silent provider with PROVIDER_NO_HELLO and kills it', async () => {
    const channel = spawnProvider(fake('silent', 'setInterval(() => {}, 1000);'));
    const started = Date.now();
    await rejectsWith(
      WuaClient.start(channel, { helloTimeoutMs: 300, closeTimeoutMs: 200 }),
      'PROVIDER_NO_HELLO',
      /300 ms/,
    );
    assert.ok(Date.now() - started < 3_000);
    assert.notEqual((await channel.exited).signal, null);
  });

  it('refuses another protocol version', async () => {
    const channel = spawnProvider(fake('v2', 'hello(2); setInterval(() => {}, 1000);'));
    await rejectsWith(
      WuaClient.start(channel, { helloTimeoutMs: 5_000 }),
      'PROVIDER_PROTOCOL_VERSION',
      /protocol 2.*speaks 1/,
    );
  });

  it('reports a provider that cannot be started', async () => {
    const channel = spawnProvider([join(dir, 'no-such-provider')]);
    await rejectsWith(
      WuaClient.start(channel, { helloTimeoutMs: 5_000 }),
      'PROVIDER_CRASHED',
      /failed \(.*no-such-provider.*ENOENT/,
    );
  });

  it('times out a slow request after sending abort for it', async () => {
    const warnings: WarningEvent[] = [];
    const channel = spawnProvider(
      fake(
        'slow',
        `
      hello();
      lines.on('line', (l) => {
        const r = JSON.parse(l);
        // Never answers the install; acknowledges the abort with a warning the test can see.
        if (r.type === 'abort') send({ type: 'warning', message: 'abort for ' + r.targetId });
      });
    `,
      ),
    );
    const client = await WuaClient.start(channel, { helloTimeoutMs: 5_000, onWarning: (w) => warnings.push(w) });
    await rejectsWith(
      client.request({ type: 'install', updateIds: ['a'] }, { timeoutMs: 200 }),
      'PROVIDER_TIMEOUT',
      /install .*200 ms.*abort was sent/,
    );
    await waitFor(() => warnings.length > 0);
    assert.equal(warnings[0]?.message, 'abort for 1');
    await client.close();
  });

  it('aborts a running install on the signal and resolves with the aborted result', async () => {
    const channel = spawnProvider(
      fake(
        'abortable',
        `
      hello();
      lines.on('line', (l) => {
        const r = JSON.parse(l);
        if (r.type === 'install') send({ type: 'progress', requestId: r.id, phase: 'install', updateId: 'a', percent: 10 });
        if (r.type === 'abort') {
          send({ type: 'result', requestId: r.targetId, request: 'install', resultCode: 'aborted', hresult: null, data: { rebootRequired: false, updates: [] } });
          send({ type: 'result', requestId: r.id, request: 'abort', resultCode: 'succeeded', hresult: null, data: { aborted: true } });
        }
      });
    `,
      ),
    );
    const client = await WuaClient.start(channel, { helloTimeoutMs: 5_000 });
    const controller = new AbortController();
    const result = await client.request(
      { type: 'install', updateIds: ['a'] },
      { timeoutMs: 10_000, signal: controller.signal, onProgress: () => controller.abort() },
    );
    assert.equal(result.resultCode, 'aborted');
    // The abort's own result was expected and dropped: the client is still usable.
    await client.close();
  });

  it('works the same over an in-memory channel', async () => {
    const channel = inMemoryChannel(async (input, output) => {
      output.write(
        `${JSON.stringify({ type: 'hello', protocol: 1, provider: 'mem', version: '0', computerName: 'lab01' })}\n`,
      );
      for await (const line of createInterface({ input })) {
        const r = JSON.parse(line) as { id: string };
        output.write(
          `${JSON.stringify({
            type: 'result',
            requestId: r.id,
            request: 'rebootStatus',
            resultCode: 'succeeded',
            hresult: null,
            data: { rebootRequired: true, installerBusy: false, lastBootUpTime: 'x' },
          })}\n`,
        );
      }
    });
    const client = await WuaClient.start(channel, { helloTimeoutMs: 1_000 });
    assert.equal(client.hello.provider, 'mem');
    assert.equal((await client.request({ type: 'rebootStatus' }, { timeoutMs: 1_000 })).data?.rebootRequired, true);
    await client.close();
    assert.equal((await channel.exited).code, 0);
  });

  it('reports an in-memory provider that throws as a crash', async () => {
    const channel = inMemoryChannel(async (input, output) => {
      output.write(
        `${JSON.stringify({ type: 'hello', protocol: 1, provider: 'mem', version: '0', computerName: 'lab01' })}\n`,
      );
      // Crash while a request is pending: on the first request line, not after a guessed delay.
      for await (const _line of createInterface({ input })) throw new Error('state.json is corrupt');
    });
    const client = await WuaClient.start(channel, { helloTimeoutMs: 1_000 });
    await rejectsWith(
      client.request({ type: 'rebootStatus' }, { timeoutMs: 5_000 }),
      'PROVIDER_CRASHED',
      /failed \(state.json is corrupt\)/,
    );
    await client.close();
  });
});

/** Polls a condition every few ms, bounded: the tests wait for an event, not for time. */
async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
