/**
 * The agent's outputs against real endpoints on 127.0.0.1: the HTTP callback (acks, 401, retry
 * after a dropped connection, partial acks), the end-of-cycle pipe read by a real net client,
 * and the log-file fallback when nobody takes the log.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AgentEvent } from '../src/domain/agent-log.ts';
import { EventLog } from '../src/agent/event-log.ts';
import { fallbackLogPath, waitUntilLogSafe } from '../src/agent/log-handover.ts';
import { HttpCallbackSink } from '../src/agent/sinks/http-sink.ts';

const TOKEN = 'secret-token-123';
const REQUEST = { runId: 'r-20261121-0200-abcd', host: 'web01', cycle: 2 };

interface Received {
  readonly auth: string | undefined;
  readonly type: string | undefined;
  readonly seqs: number[];
}

/** A callback server whose answer to each POST is decided by the test. */
async function callbackServer(answer: (req: IncomingMessage, res: ServerResponse, seqs: number[], n: number) => void) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seqs = Buffer.concat(chunks)
        .toString('utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => (JSON.parse(l) as AgentEvent).seq);
      received.push({ auth: req.headers.authorization, type: req.headers['content-type'], seqs });
      answer(req, res, seqs, received.length);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    url: `http://127.0.0.1:${address.port}/cycles/r1/web01/2/events`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Acknowledges contiguously from 1, like the connector does. */
function acker() {
  const have = new Set<number>();
  return (_req: IncomingMessage, res: ServerResponse, seqs: number[]) => {
    for (const s of seqs) have.add(s);
    let ack = 0;
    while (have.has(ack + 1)) ack++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ackSeq: ack }));
  };
}

function emitSome(log: EventLog, n: number): void {
  for (let i = 0; i < n; i++) log.emit({ kind: 'warning', message: `event ${i + 1}`, hresult: null });
}

const timeoutSignal = () => AbortSignal.timeout(10_000);

describe('HTTP callback sink', () => {
  it('posts NDJSON with the bearer token and tracks the acknowledged seq', async () => {
    const server = await callbackServer(acker());
    const sink = new HttpCallbackSink({ url: server.url, token: TOKEN });
    try {
      const log = new EventLog([sink], () => new Date());
      emitSome(log, 5);
      assert.equal(await sink.waitForAck(5, timeoutSignal()), true);
      assert.equal(sink.ackSeq, 5);
      assert.deepEqual(
        [...new Set(server.received.flatMap((r) => r.seqs))].sort((a, b) => a - b),
        [1, 2, 3, 4, 5],
      );
      assert.ok(server.received.every((r) => r.auth === `Bearer ${TOKEN}` && r.type === 'application/x-ndjson'));
    } finally {
      sink.close();
      await server.close();
    }
  });

  it('stops streaming on 401 without ever printing the token', async () => {
    const server = await callbackServer((_q, res) => res.writeHead(401).end());
    const reports: string[] = [];
    const sink = new HttpCallbackSink({ url: server.url, token: TOKEN, report: (m) => reports.push(m) });
    try {
      sink.write({ seq: 1, at: new Date().toISOString(), kind: 'rebooting' });
      assert.equal(await sink.waitForAck(1, timeoutSignal()), false);
      assert.match(sink.stopReason ?? '', /401/);
      assert.equal(server.received.length, 1, 'a refused token is not retried');
      assert.ok(reports.length > 0 && reports.every((m) => !m.includes(TOKEN)));
    } finally {
      sink.close();
      await server.close();
    }
  });

  it('retries after a dropped connection and a 503, then delivers everything', async () => {
    const ack = acker();
    const server = await callbackServer((req, res, seqs, n) => {
      if (n === 1) req.socket.destroy();
      else if (n === 2) res.writeHead(503).end();
      else ack(req, res, seqs);
    });
    const reports: string[] = [];
    const sink = new HttpCallbackSink({
      url: server.url,
      token: TOKEN,
      random: () => 0,
      report: (m) => reports.push(m),
    });
    try {
      const log = new EventLog([sink], () => new Date());
      emitSome(log, 3);
      assert.equal(await sink.waitForAck(3, timeoutSignal()), true);
      assert.ok(server.received.length >= 3);
      assert.ok(reports.some((m) => /retrying/.test(m)));
      assert.ok(reports.every((m) => !m.includes(TOKEN)));
    } finally {
      sink.close();
      await server.close();
    }
  });

  it('resends what the connector did not acknowledge', async () => {
    let first = true;
    const ack = acker();
    const server = await callbackServer((req, res, seqs) => {
      // The first batch "loses" everything after seq 1.
      if (first) {
        first = false;
        res.writeHead(200).end(JSON.stringify({ ackSeq: 1 }));
      } else ack(req, res, [1, ...seqs]);
    });
    const sink = new HttpCallbackSink({ url: server.url, token: TOKEN, random: () => 0 });
    try {
      const log = new EventLog([], () => new Date());
      emitSome(log, 3);
      for (const e of log.events()) sink.write(e);
      assert.equal(await sink.waitForAck(3, timeoutSignal()), true);
      assert.deepEqual(server.received[1]?.seqs.slice(0, 2), [2, 3]);
    } finally {
      sink.close();
      await server.close();
    }
  });
});

describe('log hand-over', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'patchline-handover-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is safe once the callback acknowledged the last event', async () => {
    const server = await callbackServer(acker());
    const http = new HttpCallbackSink({ url: server.url, token: TOKEN });
    try {
      const log = new EventLog([http], () => new Date());
      emitSome(log, 4);
      const logDir = join(dir, 'cb');
      const result = await waitUntilLogSafe({
        request: REQUEST,
        events: () => log.events(),
        http,
        logDir,
        timeoutMs: 10_000,
      });
      assert.deepEqual(result, { via: 'callback' });
      assert.equal(existsSync(logDir), false, 'no file when the connector has the log');
    } finally {
      http.close();
      await server.close();
    }
  });

  it('serves the whole log on the pipe to a real reader', async () => {
    const log = new EventLog([], () => new Date());
    emitSome(log, 3);
    const pipePath = join(dir, 'agent.sock');
    const logDir = join(dir, 'pipe');
    const safe = waitUntilLogSafe({
      request: { ...REQUEST, pipePath },
      events: () => log.events(),
      logDir,
      timeoutMs: 10_000,
    });
    const text = await readWhenListening(pipePath);
    assert.deepEqual(
      text
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as AgentEvent).seq),
      [1, 2, 3],
    );
    assert.deepEqual(await safe, { via: 'pipe' });
    assert.equal(existsSync(pipePath), false, 'the socket is removed after the hand-over');
    assert.equal(existsSync(logDir), false);
  });

  it('writes the log to the fallback file when nobody reads it in time', async () => {
    const log = new EventLog([], () => new Date());
    emitSome(log, 2);
    const pipePath = join(dir, 'unread.sock');
    const logDir = join(dir, 'fallback');
    const started = Date.now();
    const result = await waitUntilLogSafe({
      request: { ...REQUEST, pipePath },
      events: () => log.events(),
      logDir,
      timeoutMs: 200,
    });
    assert.ok(Date.now() - started < 5_000);
    const path = fallbackLogPath(logDir, REQUEST);
    assert.deepEqual(result, { via: 'file', path });
    assert.equal(path, join(logDir, 'r-20261121-0200-abcd-web01-2.jsonl'));
    assert.deepEqual(
      readFileSync(path, 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as AgentEvent).kind),
      ['warning', 'warning'],
    );
    assert.equal(existsSync(pipePath), false);
  });

  it('falls back to the file at once when the callback refused the token and there is no pipe', async () => {
    const server = await callbackServer((_q, res) => res.writeHead(410).end());
    const http = new HttpCallbackSink({ url: server.url, token: TOKEN });
    try {
      const log = new EventLog([http], () => new Date());
      emitSome(log, 1);
      const started = Date.now();
      const result = await waitUntilLogSafe({
        request: REQUEST,
        events: () => log.events(),
        http,
        logDir: join(dir, 'gone'),
        timeoutMs: 60_000,
      });
      assert.equal(result.via, 'file');
      assert.ok(Date.now() - started < 5_000, 'did not wait out the hand-over timeout');
    } finally {
      http.close();
      await server.close();
    }
  });
});

/** Connects to the agent's socket as soon as it listens (bounded) and reads it to EOF. */
async function readWhenListening(path: string, timeoutMs = 5_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<string>((resolve, reject) => {
        const chunks: Buffer[] = [];
        const socket = connect(path);
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        socket.on('error', reject);
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}
