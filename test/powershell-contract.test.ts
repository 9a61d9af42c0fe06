/**
 * Contract tests of the PowerShell WUA provider, which cannot run here (no Windows, no PowerShell):
 *
 * 1. every line of the hand-written transcripts in test/transcripts/ is a valid protocol line,
 *    and each session obeys the protocol's rules (hello first, one result per request …);
 * 2. the transcripts and wua.ps1 agree: every event type, request type, result code, field name
 *    and message the transcripts show is one the script can print;
 * 3. wua.ps1 uses the WUA calls DESIGN.md §4 requires, and its brackets balance (a crude stand-in
 *    for a parser: `pwsh` is not available from this machine's Debian packages); where Mono is
 *    installed, its C# helpers are compiled as C# 5 and its stdin reader is run;
 * 4. the replay provider plays every transcript back through the real WuaClient, as a process.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import {
  OPERATION_RESULT_CODES, RequestSchema, UpdateRecordSchema, parseEvent, parseRequest,
  type ProgressEvent, type ProviderEvent, type ProviderRequest, type WarningEvent,
} from '../src/wua/protocol.ts';
import { isCommentRecord, parseTranscript, serveReplay, type Transcript } from '../src/wua/providers/replay.ts';
import { WuaClient, inMemoryChannel, spawnProvider, type RequestBody } from '../src/wua/client.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TRANSCRIPT_DIR = join(root, 'test', 'transcripts');
const SCRIPT_PATH = join(root, 'src', 'wua', 'providers', 'powershell', 'wua.ps1');
const REPLAY_PATH = join(root, 'src', 'wua', 'providers', 'replay.ts');
const script = readFileSync(SCRIPT_PATH, 'utf8');
const transcriptFiles = readdirSync(TRANSCRIPT_DIR).filter((f) => f.endsWith('.jsonl')).sort();
const readTranscript = (file: string): string => readFileSync(join(TRANSCRIPT_DIR, file), 'utf8');
const protocolLines = (file: string): string[] => readTranscript(file).split('\n').filter((l) => l.trim() !== '').slice(1);
/** Generous: each step of a replay is instant; this only bounds a hang. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Bounds a replay process's start (node + tsx), which is slow on a loaded machine. */
const HELLO_TIMEOUT_MS = 30_000;

const isRequestLine = (line: string): boolean => 'id' in (JSON.parse(line) as object);

// ── 1. the transcripts are protocol ─────────────────────────────────────────────────────────

test('there is a transcript for each session the brief names', () => {
  for (const name of ['normal-install-reboot', 'installer-busy', 'offline-scan', 'failed-update', 'abort', 'no-network', 'access-denied']) {
    assert.ok(transcriptFiles.includes(`${name}.jsonl`), name);
  }
});

test('each transcript says on its first line that it was written by hand, not recorded', () => {
  for (const file of transcriptFiles) {
    const first = JSON.parse(readTranscript(file).split('\n')[0] ?? '') as unknown;
    assert.ok(isCommentRecord(first), file);
    assert.match((first as { $comment: string }).$comment, /^HAND-WRITTEN .*not recorded on Windows/, file);
  }
});

test('every other transcript line is a valid request (parseRequest) or provider event (parseEvent)', () => {
  for (const file of transcriptFiles) {
    for (const line of protocolLines(file)) {
      if (isRequestLine(line)) assert.doesNotThrow(() => parseRequest(line), `${file}: ${line.slice(0, 80)}`);
      else assert.doesNotThrow(() => parseEvent(line), `${file}: ${line.slice(0, 80)}`);
    }
  }
});

test('each session follows the protocol: hello once and first, one result per request, of its type, after it', () => {
  for (const file of transcriptFiles) {
    const lines = protocolLines(file);
    assert.equal((JSON.parse(lines[0] ?? '{}') as { type?: string }).type, 'hello', file);
    const requests = new Map<string, ProviderRequest>();
    const answered = new Set<string>();
    lines.slice(1).forEach((line) => {
      if (isRequestLine(line)) {
        const r = parseRequest(line);
        assert.ok(!requests.has(r.id), `${file}: request id ${r.id} reused`);
        requests.set(r.id, r);
        return;
      }
      const e = parseEvent(line);
      assert.notEqual(e.type, 'hello', `${file}: a second hello`);
      if (e.type === 'hello') return;
      if (e.requestId === undefined) return;
      const owner = requests.get(e.requestId);
      assert.ok(owner, `${file}: ${e.type} for request ${e.requestId} before that request`);
      assert.ok(!answered.has(e.requestId), `${file}: ${e.type} for request ${e.requestId} after its result`);
      if (e.type === 'result') {
        assert.equal(e.request, owner.type, `${file}: result type for request ${e.requestId}`);
        answered.add(e.requestId);
      }
    });
    assert.deepEqual([...requests.keys()].filter((id) => !answered.has(id)), [], `${file}: requests without a result`);
  }
});

/** Every parsed event of every transcript. */
function allEvents(): ProviderEvent[] {
  return transcriptFiles.flatMap((f) => protocolLines(f).filter((l) => !isRequestLine(l)).map((l) => parseEvent(l)));
}

test('together the transcripts cover every request type and the failures admins meet', () => {
  const requestTypes = new Set(transcriptFiles.flatMap((f) => protocolLines(f).filter(isRequestLine).map((l) => parseRequest(l).type)));
  const allTypes = RequestSchema.anyOf.map((s) => s.properties.type.const as string);
  assert.deepEqual(allTypes.filter((t) => !requestTypes.has(t as ProviderRequest['type'])), []);
  const results = allEvents().filter((e) => e.type === 'result');
  const hresults = new Set(results.flatMap((r) => [r.hresult, ...((r.data && 'updates' in r.data ? r.data.updates : []) as { hresult?: string | null }[]).map((u) => u.hresult ?? null)]));
  for (const code of ['0x80240016', '0x80242016', '0x8024402C', '0x80070005']) assert.ok(hresults.has(code), code);
  assert.ok(results.some((r) => r.resultCode === 'aborted'), 'an aborted result');
  assert.ok(results.some((r) => r.request === 'install' && r.data?.rebootRequired === true), 'an install that needs a reboot');
  const offline = transcriptFiles.flatMap((f) => protocolLines(f).filter(isRequestLine).map((l) => parseRequest(l)))
    .filter((r) => r.type === 'search' && r.serverSelection === 'offline');
  assert.ok(offline.length > 0, 'an offline scan');
});

// ── 2. the transcripts and wua.ps1 agree ────────────────────────────────────────────────────

/** Every object key used anywhere in a value. */
function keysOf(value: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) value.forEach((v) => keysOf(v, into));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) { into.add(k); keysOf(v, into); }
  }
  return into;
}

const quotedInScript = (value: string): boolean => script.includes(`'${value}'`) || script.includes(`"${value}"`);
/** A hashtable key (`name = …`, `name=…`) or a property set on one (`$x.name = …`). */
const keyInScript = (key: string): boolean => new RegExp(`(^|[\\s{;.])${key}\\s*=`, 'm').test(script);

test('every event type, result request, phase and result code the transcripts use is printed by wua.ps1', () => {
  const missing: string[] = [];
  for (const e of allEvents()) {
    const values = [e.type, ...(e.type === 'result' ? [e.request, e.resultCode] : []), ...(e.type === 'progress' ? [e.phase] : [])];
    for (const v of values) if (!quotedInScript(v)) missing.push(v);
  }
  assert.deepEqual([...new Set(missing)], []);
  // And the script can name every OperationResultCode (it maps WUA's enum by value).
  assert.deepEqual(OPERATION_RESULT_CODES.filter((c) => !quotedInScript(c)), []);
});

test('every field name in the transcripts is one wua.ps1 sets', () => {
  const keys = keysOf(allEvents());
  assert.deepEqual([...keys].filter((k) => !keyInScript(k)), []);
});

test('every request field the transcripts send is one wua.ps1 reads', () => {
  const requests = transcriptFiles.flatMap((f) => protocolLines(f).filter(isRequestLine).map((l) => parseRequest(l)));
  const keys = keysOf(requests);
  assert.ok(keys.has('offlineCabPath') && keys.has('targetId'));
  assert.deepEqual([...keys].filter((k) => !new RegExp(`\\.${k}\\b`).test(script)), []);
});

test('wua.ps1 maps every field of the update record', () => {
  assert.deepEqual(Object.keys(UpdateRecordSchema.properties).filter((k) => !keyInScript(k)), []);
});

test('wua.ps1 handles every request type of the protocol', () => {
  const types = RequestSchema.anyOf.map((s) => s.properties.type.const as string);
  // `abort` is handled as lines arrive, the others in the request switch: 'search' { … }.
  assert.deepEqual(types.filter((t) => t !== 'abort' && !new RegExp(`'${t}'\\s*\\{`).test(script)), []);
  assert.match(script, /\.type -eq 'abort'/);
});

/** The script's string literals as patterns: "$x" and "$(…)" interpolations match anything. */
function scriptTemplates(): RegExp[] {
  const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const { doubleQuoted, singleQuoted } = scanPowerShell(script);
  const templates: RegExp[] = [];
  for (const text of doubleQuoted) {
    const parts = text.split(/\$\((?:[^()]|\([^()]*\))*\)|\$[A-Za-z_][\w:]*/);
    if (parts.join('').trim().length >= 8) templates.push(new RegExp(`^${parts.map(escape).join('.*')}$`, 's'));
  }
  // A single-quoted literal may be the start of a message built with + (e.g. 'reboot pending: ' + …).
  for (const text of singleQuoted) if (text.length >= 8) templates.push(new RegExp(`^${escape(text)}`));
  return templates;
}

test('every message in the transcripts is one wua.ps1 writes, or a COM exception\'s own text', () => {
  const templates = scriptTemplates();
  const messages = allEvents().flatMap((e) => ('message' in e && e.message !== undefined ? [e.message] : []));
  assert.ok(messages.length >= 5);
  const comText = /\(?Exception from HRESULT: 0x[0-9A-F]{8}/;
  const unknown = messages.filter((m) => !comText.test(m) && !templates.some((t) => t.test(m)));
  assert.deepEqual(unknown, []);
  // The reboot signals a rebootStatus message lists are the script's own names.
  for (const m of messages.filter((x) => x.startsWith('reboot pending: '))) {
    for (const signal of m.slice('reboot pending: '.length).split(', ')) assert.ok(quotedInScript(signal), signal);
  }
});

// ── 3. wua.ps1 itself ───────────────────────────────────────────────────────────────────────

test('wua.ps1 makes the WUA calls the design requires', () => {
  const required: readonly (readonly [string, RegExp])[] = [
    ['ssOthers + Microsoft Update service id', /7971f918-a847-4430-9279-4a52d1efe18d/],
    ['AddService2 when Microsoft Update is missing', /AddService2\(\$MicrosoftUpdateServiceId/],
    ['offline scan package', /AddScanPackageService\(\$OfflineServiceName, \$path, \$ScanPackageServiceOption\)/],
    ['the scan package service is removed', /RemoveService\(\$State\.scanServiceId\)/],
    ['async search', /BeginSearch\(/], ['async download', /BeginDownload\(/], ['async install', /BeginInstall\(/],
    ['progress is polled', /\.GetProgress\(\)/],
    ['EULA accepted', /\.AcceptEula\(\)/],
    ['no source prompts', /AllowSourcePrompts = \$false/],
    ['client application id', /\$ClientApplicationId = 'Patchline'/],
    ['keep awake', /SetThreadExecutionState\(ES_CONTINUOUS \| ES_SYSTEM_REQUIRED\)/],
    ['installer busy', /\.IsBusy/],
    ['CBS RebootPending key', /Component Based Servicing\\RebootPending/],
    ['WindowsUpdate RebootRequired key', /WindowsUpdate\\Auto Update\\RebootRequired/],
    ['WUA SystemInfo', /Microsoft\.Update\.SystemInfo/],
    ['boot time', /Win32_OperatingSystem -Property LastBootUpTime/],
    ['hide', /\.IsHidden = \$Hidden/], ['history', /\.QueryHistory\(/], ['cache', /\.CopyToCache\(/],
    ['abort', /\.RequestAbort\(\)/],
    ['HRESULT text', /'0x\{0:X8\}'/],
    ['UTF-8 without BOM, flushed', /UTF8Encoding\(\$false\)[\s\S]*AutoFlush = \$true/],
  ];
  assert.deepEqual(required.filter(([, pattern]) => !pattern.test(script)).map(([what]) => what), []);
});

test('wua.ps1 never writes to stdout except through its JSON writer', () => {
  assert.doesNotMatch(script, /\bWrite-(Host|Output|Information)\b|\becho\b|\[Console\]::(Write|Out)/i);
  // Exactly one place writes: Send-Event.
  assert.equal(script.match(/\$Out\.WriteLine\(/g)?.length, 1);
});

/**
 * Splits PowerShell text into its brackets (outside comments and strings), its string literals and
 * its here-strings (the C#). Not a parser: enough to catch an unbalanced brace or parenthesis and
 * to list the strings the script can print.
 */
function scanPowerShell(text: string): { brackets: string; singleQuoted: string[]; doubleQuoted: string[]; hereStrings: string[] } {
  let brackets = '';
  const singleQuoted: string[] = [];
  const doubleQuoted: string[] = [];
  const hereStrings: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    const two = text.slice(i, i + 2);
    if (two === '<#') { i = text.indexOf('#>', i + 2) + 2; continue; }
    if (c === '#') { const nl = text.indexOf('\n', i); i = nl < 0 ? text.length : nl; continue; }
    if (two === '@"' || two === "@'") {
      const end = text.indexOf(`\n${two[1]}@`, i);
      hereStrings.push(text.slice(i + 2, end));
      i = end + 3;
      continue;
    }
    if (c === "'") {
      let j = i + 1;
      while (j < text.length && !(text[j] === "'" && text[j + 1] !== "'")) j += text[j] === "'" ? 2 : 1;
      singleQuoted.push(text.slice(i + 1, j).replace(/''/g, "'"));
      i = j + 1;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '`' ? 2 : 1;
      doubleQuoted.push(text.slice(i + 1, j));
      i = j + 1;
      continue;
    }
    if ('(){}[]'.includes(c)) brackets += c;
    i += 1;
  }
  return { brackets, singleQuoted, doubleQuoted, hereStrings };
}

function balanced(brackets: string): boolean {
  const pairs: Record<string, string> = { ')': '(', '}': '{', ']': '[' };
  const stack: string[] = [];
  for (const c of brackets) {
    if ('({['.includes(c)) stack.push(c);
    else if (stack.pop() !== pairs[c]) return false;
  }
  return stack.length === 0;
}

test('wua.ps1 brackets balance, in the PowerShell and in its C# (a stand-in for a parser, which is not available here)', () => {
  const { brackets, hereStrings } = scanPowerShell(script);
  assert.ok(brackets.length > 100);
  assert.ok(balanced(brackets), 'PowerShell brackets');
  assert.equal(hereStrings.length, 1, 'one C# here-string');
  const csharp = (hereStrings[0] ?? '').replace(/\/\/.*$/gm, '').replace(/"(?:[^"\\]|\\.)*"/g, '""');
  assert.ok(balanced(csharp.replace(/[^(){}[\]]/g, '')), 'C# brackets');
  assert.ok(!balanced('{(})'), 'the checker itself catches crossed brackets');
});

/** Finds a program on PATH, or null (for checks that need an optional tool). */
function onPath(program: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, program))) return join(dir, program);
  }
  return null;
}

/** Runs the LineReader and JobCallback of wua.ps1 on Mono: reads stdin lines with a timeout until EOF. */
const CSHARP_HARNESS = `
public static class Harness {
  public static int Main() {
    Patchline.Wua.LineReader reader = new Patchline.Wua.LineReader(System.Console.OpenStandardInput());
    Patchline.Wua.JobCallback callback = new Patchline.Wua.JobCallback();
    ((Patchline.Wua.IDownloadCompletedCallback)callback).Invoke(null, null);
    while (true) {
      string line = reader.Next(100);
      if (line != null) System.Console.WriteLine("line:" + line);
      else if (reader.IsFinished) break;
    }
    System.Console.WriteLine("calls:" + callback.Calls);
    return 0;
  }
}`;
/** Bounds each Mono step; compiling takes about a second. */
const MONO_STEP_TIMEOUT_MS = 60_000;

test('the C# helpers of wua.ps1 compile as C# 5 (what Add-Type\'s csc accepts) and read stdin lines until EOF', {
  skip: onPath('mcs') && onPath('mono') ? false : 'needs Mono (apt-get install mono-mcs) to compile the Add-Type block',
}, () => {
  const { hereStrings } = scanPowerShell(script);
  const dir = mkdtempSync(join(tmpdir(), 'patchline-csharp-'));
  try {
    writeFileSync(join(dir, 'helpers.cs'), hereStrings[0] ?? '');
    writeFileSync(join(dir, 'harness.cs'), CSHARP_HARNESS);
    execFileSync('mcs', ['-langversion:5', `-out:${join(dir, 'harness.exe')}`, join(dir, 'helpers.cs'), join(dir, 'harness.cs')], { timeout: MONO_STEP_TIMEOUT_MS, stdio: 'pipe' });
    const out = execFileSync('mono', [join(dir, 'harness.exe')], { input: 'first\n{"id":"1","type":"rebootStatus","note":"é"}\n', timeout: MONO_STEP_TIMEOUT_MS, encoding: 'utf8' });
    assert.equal(out, 'line:first\nline:{"id":"1","type":"rebootStatus","note":"é"}\ncalls:1\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ── 4. replay through the real client ───────────────────────────────────────────────────────

/**
 * Starts the replay provider on a transcript: as a process, exactly as the agent would start it, or
 * in memory (the same serveReplay over streams) where starting one process per transcript would
 * only add seconds of node + tsx start-up.
 */
async function startReplay(file: string, how: 'process' | 'memory'): Promise<WuaClient> {
  const channel = how === 'process'
    ? spawnProvider([process.execPath, '--import', 'tsx', REPLAY_PATH, join(TRANSCRIPT_DIR, file)], { cwd: root })
    : inMemoryChannel((input, output) => serveReplay(parseTranscript(readTranscript(file), file), input, output, () => undefined));
  return WuaClient.start(channel, { helloTimeoutMs: HELLO_TIMEOUT_MS, closeTimeoutMs: 5_000, abortGraceMs: 5_000 });
}

const withoutId = (r: ProviderRequest): RequestBody => {
  const { id: _id, ...body } = r;
  return body as RequestBody;
};

/** The recorded events of an exchange, as a live session with the client's ids would see them. */
function expectedFor(transcript: Transcript, index: number, liveId: string): { result: ProviderEvent; progress: number; warnings: number } {
  const exchange = transcript.exchanges[index];
  assert.ok(exchange);
  const own = exchange.events.filter((e) => 'requestId' in e && e.requestId === exchange.request.id);
  const result = own.find((e) => e.type === 'result');
  assert.ok(result, `exchange ${index} has a result`);
  return {
    result: { ...result, requestId: liveId },
    progress: own.filter((e) => e.type === 'progress').length,
    warnings: own.filter((e) => e.type === 'warning').length,
  };
}

describe('replay provider through the WUA client', () => {
  for (const file of ['normal-install-reboot.jsonl', 'installer-busy.jsonl', 'offline-scan.jsonl', 'failed-update.jsonl', 'no-network.jsonl', 'access-denied.jsonl', 'maintenance.jsonl']) {
    // One transcript runs as a real process; the rest in memory (same code, no start-up cost).
    const how = file === 'normal-install-reboot.jsonl' ? 'process' : 'memory';
    test(`replaying ${file} (${how}) through WuaClient gives the recorded results, progress and warnings`, async () => {
      const transcript = parseTranscript(readTranscript(file), file);
      const client = await startReplay(file, how);
      try {
        assert.deepEqual(client.hello, transcript.preamble[0]);
        for (const [index, exchange] of transcript.exchanges.entries()) {
          if (exchange.request.type === 'abort') continue; // the client sends aborts itself (see the abort test)
          const progress: ProgressEvent[] = [];
          const warnings: WarningEvent[] = [];
          const result = await client.request(withoutId(exchange.request), {
            timeoutMs: REQUEST_TIMEOUT_MS, onProgress: (e) => progress.push(e), onWarning: (e) => warnings.push(e),
          });
          const expected = expectedFor(transcript, index, result.requestId);
          assert.deepEqual(result, expected.result, `${file} ${exchange.request.type}`);
          assert.equal(progress.length, expected.progress, `${file} ${exchange.request.type} progress events`);
          assert.equal(warnings.length, expected.warnings, `${file} ${exchange.request.type} warnings`);
          assert.ok(progress.every((p) => p.requestId === result.requestId), 'progress carries the live request id');
        }
      } finally {
        await client.close();
      }
    });
  }

  test('aborting a replayed download through the client ends it aborted, after the recorded progress', async () => {
    const client = await startReplay('abort.jsonl', 'process');
    try {
      const found = await client.request({ type: 'search', criteria: 'IsInstalled=0 and IsHidden=0', serverSelection: 'default' }, { timeoutMs: REQUEST_TIMEOUT_MS });
      assert.equal(found.resultCode, 'succeeded');
      const ids = (found.data?.updates ?? []).map((u) => u.updateId);
      const controller = new AbortController();
      const percents: number[] = [];
      const result = await client.request({ type: 'download', updateIds: ids }, {
        timeoutMs: REQUEST_TIMEOUT_MS,
        signal: controller.signal,
        // Abort once the download is under way, as an operator's cancel would.
        onProgress: (e) => { percents.push(e.percent); if (e.percent > 0) controller.abort(); },
      });
      assert.equal(result.resultCode, 'aborted');
      assert.deepEqual(result.data?.updates.map((u) => u.resultCode), ['aborted']);
      assert.deepEqual(percents, [0, 12]);
    } finally {
      await client.close();
    }
  });

  test('a session that leaves the recording fails loudly: the client reports a provider crash naming the request', async () => {
    const client = await startReplay('installer-busy.jsonl', 'process');
    try {
      await assert.rejects(
        client.request({ type: 'history' }, { timeoutMs: REQUEST_TIMEOUT_MS }),
        (error: Error & { code?: string }) => error.code === 'PROVIDER_CRASHED' && /no unplayed history request/.test(error.message) && /code 3/.test(error.message),
      );
    } finally {
      await client.close();
    }
  });
});
