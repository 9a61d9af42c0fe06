/**
 * What the hand-written transcripts (test/transcripts/*.jsonl) say must be what Windows can say.
 * powershell-contract.test.ts checks that they are protocol and that wua.ps1 can print them; this
 * file checks them against the Windows Update Agent's documented behaviour
 * (../shared/reference/windows-update-agent.md, wua-provider-review.md): category ids and what
 * IUpdate.Categories holds, how an operation's result code follows from its updates' results,
 * which failures can appear where, and what a WSUS search returns. A transcript that contradicts
 * the documentation teaches the agent a Windows that does not exist.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTranscript, type Exchange, type Transcript } from '../src/wua/providers/replay.ts';
import type { ProviderEvent } from '../src/wua/protocol.ts';
import { ROOT } from './powershell-script.ts';

const DIR = join(ROOT, 'test', 'transcripts');
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.jsonl'))
  .sort();
const transcripts: readonly (readonly [string, Transcript, string])[] = files.map((f) => {
  const text = readFileSync(join(DIR, f), 'utf8');
  const comment = (JSON.parse(text.split('\n')[0] ?? '{}') as { $comment?: string }).$comment ?? '';
  return [f, parseTranscript(text, f), comment] as const;
});

type Result = Extract<ProviderEvent, { type: 'result' }>;
/** The events of one request, wherever they are in the transcript (an aborted request's result follows the abort). */
const eventsOf = (t: Transcript, id: string): ProviderEvent[] =>
  t.exchanges.flatMap((x) => x.events).filter((e) => 'requestId' in e && e.requestId === id);
const resultIn = (t: Transcript, x: Exchange): Result => {
  const r = eventsOf(t, x.request.id).find((e): e is Result => e.type === 'result');
  assert.ok(r, `request ${x.request.id} has a result`);
  return r;
};
interface Seen {
  file: string;
  x: Exchange;
  events: ProviderEvent[];
  result: Result;
  comment: string;
}
const exchanges = (): Seen[] =>
  transcripts.flatMap(([file, t, comment]) =>
    t.exchanges.map((x) => ({ file, x, events: eventsOf(t, x.request.id), result: resultIn(t, x), comment })),
  );
const updatesFound = () =>
  exchanges().flatMap(({ file, result }) =>
    result.request === 'search' && result.data ? result.data.updates.map((u) => ({ file, u })) : [],
  );

/**
 * Category ids Microsoft publishes, with their names: the classifications (WSUS, wsusscn2.cab; the
 * same table src/lab/update-record.ts uses), Windows Server 2022's product ("Microsoft Server
 * operating system-21H2", wsusoffline's XSLTs, reference §5.2) and Windows Defender's
 * (wua-provider-review.md).
 */
const KNOWN_CATEGORIES: Readonly<Record<string, { name: string; type: 'UpdateClassification' | 'Product' }>> = {
  '0fa1201d-4330-4fa8-8ae9-b877473b6441': { name: 'Security Updates', type: 'UpdateClassification' },
  'cd5ffd1e-e932-4e3a-bf74-18bf0b1bbd83': { name: 'Updates', type: 'UpdateClassification' },
  'e6cf1350-c01b-414d-a61f-263d14d133b4': { name: 'Critical Updates', type: 'UpdateClassification' },
  'e0789628-ce08-4437-be74-2495b842f43b': { name: 'Definition Updates', type: 'UpdateClassification' },
  '28bc880e-0592-4cbf-8f95-c79b17911d5f': { name: 'Update Rollups', type: 'UpdateClassification' },
  '71718f13-7324-4b0f-8f9e-2ca9dc978e53': { name: 'Microsoft Server operating system-21H2', type: 'Product' },
  '8c3fcc84-7410-4a95-8b89-a166a0190486': { name: 'Windows Defender', type: 'Product' },
};

test("every category id in the transcripts is Microsoft's, with Microsoft's name and type", () => {
  const wrong: string[] = [];
  for (const { file, u } of updatesFound()) {
    for (const c of u.categories) {
      const known = KNOWN_CATEGORIES[c.id];
      if (!known || known.name !== c.name || known.type !== c.type)
        wrong.push(`${file}: ${u.title}: ${c.id} ${c.type} "${c.name}"`);
    }
  }
  assert.deepEqual(wrong, []);
  assert.ok(updatesFound().length >= 5);
});

test("IUpdate.Categories holds the classification and the product(s), and the record's fields agree with it", () => {
  for (const { file, u } of updatesFound()) {
    const where = `${file}: ${u.title}`;
    const classifications = u.categories.filter((c) => c.type === 'UpdateClassification');
    const products = u.categories.filter((c) => c.type === 'Product');
    assert.equal(classifications.length, 1, `${where}: one classification`);
    assert.ok(products.length >= 1, `${where}: a product`);
    assert.equal(
      classifications.length + products.length,
      u.categories.length,
      `${where}: no company or product family`,
    );
    assert.equal(u.classification, classifications[0]?.name, where);
    assert.deepEqual(
      u.products,
      products.map((p) => p.name),
      where,
    );
  }
});

/** Updates a request named, lower-cased, in order. */
const named = (x: Exchange): string[] =>
  'updateIds' in x.request ? x.request.updateIds.map((id) => id.toLowerCase()) : [];

test("an operation's result code follows from its updates' results as WUA defines it (orcSucceededWithErrors = some, not all)", () => {
  for (const { file, x, result } of exchanges()) {
    if (!result.data || result.resultCode === 'aborted') continue;
    let succeeded: number;
    let total: number;
    if ((result.request === 'download' || result.request === 'install') && 'updates' in result.data) {
      const updates = result.data.updates as readonly { resultCode: string }[];
      succeeded = updates.filter((u) => u.resultCode === 'succeeded' || u.resultCode === 'succeededWithErrors').length;
      total = named(x).length;
    } else if ((result.request === 'hide' || result.request === 'unhide') && 'updates' in result.data) {
      // Only updates whose flag was set are listed.
      succeeded = result.data.updates.length;
      total = named(x).length;
    } else {
      continue;
    }
    const expected = succeeded === 0 ? 'failed' : succeeded === total ? 'succeeded' : 'succeededWithErrors';
    assert.equal(
      result.resultCode,
      expected,
      `${file}: ${result.request} ${x.request.id} (${succeeded} of ${total} succeeded)`,
    );
  }
});

test('per-update results name each requested update once, in the order of the request', () => {
  for (const { file, x, result } of exchanges()) {
    if (
      (result.request !== 'download' && result.request !== 'install') ||
      !result.data ||
      result.data.updates.length === 0
    )
      continue;
    assert.deepEqual(
      result.data.updates.map((u) => u.updateId),
      named(x),
      `${file}: ${result.request} ${x.request.id}`,
    );
  }
});

test('an install needs a restart when any of its updates does', () => {
  for (const { file, result } of exchanges()) {
    if (result.request !== 'install' || !result.data) continue;
    if (result.data.updates.some((u) => u.rebootRequired === true))
      assert.equal(result.data.rebootRequired, true, file);
  }
});

test("a post-reboot failure (0x80242016) is never an install's answer: only history after the restart reports it", () => {
  let seen = 0;
  for (const [file, transcript] of transcripts) {
    const results = transcript.exchanges.map((x) => resultIn(transcript, x));
    for (const r of results) {
      if (r.request === 'install' || r.request === 'download') {
        assert.ok(
          r.hresult !== '0x80242016' && !(r.data?.updates ?? []).some((u) => u.hresult === '0x80242016'),
          `${file}: ${r.request} reports a post-reboot failure with no reboot in between`,
        );
      }
      if (r.request !== 'history' || !r.data) continue;
      for (const entry of r.data.entries.filter((e) => e.hresult === '0x80242016')) {
        seen++;
        const boots = results.flatMap((b) =>
          b.request === 'rebootStatus' && b.data ? [Date.parse(b.data.lastBootUpTime)] : [],
        );
        assert.ok(boots.length > 0, `${file}: a post-reboot failure in a session that does not show its boot`);
        assert.ok(
          boots.every((boot) => Date.parse(entry.date) >= boot),
          `${file}: ${entry.date} is before the restart it failed after`,
        );
      }
    }
  }
  assert.ok(seen > 0, 'the transcripts show a post-reboot failure');
});

test('E_ACCESSDENIED from a remote token comes before any progress (at CreateUpdateSearcher)', () => {
  let seen = 0;
  for (const { file, events, result } of exchanges()) {
    if (result.hresult !== '0x80070005') continue;
    seen++;
    assert.deepEqual(
      events.filter((e) => e.type === 'progress'),
      [],
      `${file}: progress before E_ACCESSDENIED`,
    );
  }
  assert.ok(seen > 0);
});

test('an update skipped for needing user input (0x80240020) is skipped with a warning naming it, before WUA installs the rest', () => {
  let seen = 0;
  for (const { file, events, result } of exchanges()) {
    if (result.request !== 'install' || !result.data) continue;
    for (const u of result.data.updates.filter((r) => r.hresult === '0x80240020')) {
      seen++;
      const warning = events.findIndex((e) => e.type === 'warning' && e.message.includes(u.updateId));
      const progress = events.findIndex((e) => e.type === 'progress');
      assert.ok(warning >= 0 && (progress < 0 || warning < progress), `${file}: ${u.updateId}`);
      assert.equal(u.resultCode, 'failed', 'as WUA itself would answer it for SYSTEM');
    }
  }
  assert.ok(seen > 0);
});

test('progress only grows, names requested updates, and never counts more bytes than the total', () => {
  for (const { file, x, events } of exchanges()) {
    const progress = events.filter((e) => e.type === 'progress') as Extract<ProviderEvent, { type: 'progress' }>[];
    progress.forEach((p, i) => {
      const where = `${file}: request ${x.request.id} progress ${i}`;
      if (i > 0) assert.ok(p.percent >= (progress[i - 1]?.percent ?? 0), where);
      if (p.updateId) assert.ok(named(x).includes(p.updateId), where);
      if (p.bytes !== undefined && p.totalBytes !== undefined) assert.ok(p.bytes <= p.totalBytes, where);
    });
  }
});

test('a WSUS (managedServer) search returns URLs on the WSUS server unless the transcript says WSUS does not store content', () => {
  let seen = 0;
  for (const { file, x, result, comment } of exchanges()) {
    if (
      x.request.type !== 'search' ||
      x.request.serverSelection !== 'managedServer' ||
      result.request !== 'search' ||
      !result.data
    )
      continue;
    seen++;
    const microsoft = result.data.updates
      .flatMap((u) => u.downloadUrls)
      .filter((url) => /(^|\.)windowsupdate\.com$/.test(new URL(url).hostname));
    if (!/does not store content/.test(comment)) assert.deepEqual(microsoft, [], file);
  }
  assert.ok(seen > 0);
});
