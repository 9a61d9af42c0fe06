/**
 * Contract tests of the PowerShell WUA provider, which cannot run here (no Windows, no PowerShell):
 *
 * 1. every line of the hand-written transcripts in test/transcripts/ is a valid protocol line,
 *    and each session obeys the protocol's rules (hello first, one result per request …);
 * 2. the transcripts and wua.ps1 agree: every event type, request type, result code, field name
 *    and message the transcripts show is one the script can print;
 * 3. wua.ps1 uses the WUA calls DESIGN.md §4 requires, with the flags Microsoft documents for
 *    what Patchline needs, and its structure keeps the promises the protocol makes (one result per
 *    request, no StrictMode crash on bad input) — read from the text, since `pwsh` is not
 *    available from this machine's Debian packages (its C# half runs under Mono:
 *    powershell-helpers.test.ts; what the transcripts mean is checked in transcripts-meaning.test.ts);
 * 4. the replay provider plays every transcript back through the real WuaClient, as a process.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  OPERATION_RESULT_CODES,
  RequestSchema,
  UpdateRecordSchema,
  parseEvent,
  parseRequest,
  type ProgressEvent,
  type ProviderEvent,
  type ProviderRequest,
  type WarningEvent,
} from '../src/wua/protocol.ts';
import { isCommentRecord, parseTranscript, serveReplay, type Transcript } from '../src/wua/providers/replay.ts';
import { WuaClient, inMemoryChannel, spawnProvider, type RequestBody } from '../src/wua/client.ts';
import {
  ROOT as root,
  balanced,
  functionBody,
  numericConstant,
  requiredFieldsTable,
  scanPowerShell,
  scanned,
  script,
} from './powershell-script.ts';

const TRANSCRIPT_DIR = join(root, 'test', 'transcripts');
const REPLAY_PATH = join(root, 'src', 'wua', 'providers', 'replay.ts');
const transcriptFiles = readdirSync(TRANSCRIPT_DIR)
  .filter((f) => f.endsWith('.jsonl'))
  .sort();
const readTranscript = (file: string): string => readFileSync(join(TRANSCRIPT_DIR, file), 'utf8');
const protocolLines = (file: string): string[] =>
  readTranscript(file)
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(1);
/** Generous: each step of a replay is instant; this only bounds a hang. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Bounds a replay process's start (node + tsx), which is slow on a loaded machine. */
const HELLO_TIMEOUT_MS = 30_000;

const isRequestLine = (line: string): boolean => 'id' in (JSON.parse(line) as object);

// ── 1. the transcripts are protocol ─────────────────────────────────────────────────────────

test('there is a transcript for each session the brief names', () => {
  for (const name of [
    'normal-install-reboot',
    'installer-busy',
    'offline-scan',
    'failed-update',
    'abort',
    'no-network',
    'access-denied',
    'service-restart',
    'progress-unavailable',
    'not-found',
    'user-input',
    'reboot-pending',
    'post-reboot-failure',
    'stale-offline-registration',
  ]) {
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
    assert.deepEqual(
      [...requests.keys()].filter((id) => !answered.has(id)),
      [],
      `${file}: requests without a result`,
    );
  }
});

/** Every parsed event of every transcript. */
function allEvents(): ProviderEvent[] {
  return transcriptFiles.flatMap((f) =>
    protocolLines(f)
      .filter((l) => !isRequestLine(l))
      .map((l) => parseEvent(l)),
  );
}

test('together the transcripts cover every request type and the failures admins meet', () => {
  const requestTypes = new Set(
    transcriptFiles.flatMap((f) =>
      protocolLines(f)
        .filter(isRequestLine)
        .map((l) => parseRequest(l).type),
    ),
  );
  const allTypes = RequestSchema.anyOf.map((s) => s.properties.type.const as string);
  assert.deepEqual(
    allTypes.filter((t) => !requestTypes.has(t as ProviderRequest['type'])),
    [],
  );
  const results = allEvents().filter((e) => e.type === 'result');
  const inData = (r: (typeof results)[number]): { hresult?: string | null }[] =>
    (r.data && 'updates' in r.data ? r.data.updates : r.data && 'entries' in r.data ? r.data.entries : []) as {
      hresult?: string | null;
    }[];
  const hresults = new Set(results.flatMap((r) => [r.hresult, ...inData(r).map((u) => u.hresult ?? null)]));
  // Installer busy, post-reboot failure (history), no network, remote token, install failure,
  // the WU service restarting mid-job, an update that needs a user, an update not found.
  for (const code of [
    '0x80240016',
    '0x80242016',
    '0x8024402C',
    '0x80070005',
    '0x80070643',
    '0x800706BE',
    '0x80240020',
    '0x80240017',
  ])
    assert.ok(hresults.has(code), code);
  assert.ok(
    results.some((r) => r.resultCode === 'aborted'),
    'an aborted result',
  );
  assert.ok(
    results.some((r) => r.request === 'install' && r.data?.rebootRequired === true),
    'an install that needs a reboot',
  );
  const offline = transcriptFiles
    .flatMap((f) =>
      protocolLines(f)
        .filter(isRequestLine)
        .map((l) => parseRequest(l)),
    )
    .filter((r) => r.type === 'search' && r.serverSelection === 'offline');
  assert.ok(offline.length > 0, 'an offline scan');
});

// ── 2. the transcripts and wua.ps1 agree ────────────────────────────────────────────────────

/** Every object key used anywhere in a value. */
function keysOf(value: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) value.forEach((v) => keysOf(v, into));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      into.add(k);
      keysOf(v, into);
    }
  }
  return into;
}

const quotedInScript = (value: string): boolean => script.includes(`'${value}'`) || script.includes(`"${value}"`);
/** A hashtable key (`name = …`, `name=…`) or a property set on one (`$x.name = …`). */
const keyInScript = (key: string): boolean => new RegExp(`(^|[\\s{;.])${key}\\s*=`, 'm').test(script);

test('every event type, result request, phase and result code the transcripts use is printed by wua.ps1', () => {
  const missing: string[] = [];
  for (const e of allEvents()) {
    const values = [
      e.type,
      ...(e.type === 'result' ? [e.request, e.resultCode] : []),
      ...(e.type === 'progress' ? [e.phase] : []),
    ];
    for (const v of values) if (!quotedInScript(v)) missing.push(v);
  }
  assert.deepEqual([...new Set(missing)], []);
  // And the script can name every OperationResultCode (it maps WUA's enum by value).
  assert.deepEqual(
    OPERATION_RESULT_CODES.filter((c) => !quotedInScript(c)),
    [],
  );
});

test('every field name in the transcripts is one wua.ps1 sets', () => {
  const keys = keysOf(allEvents());
  assert.deepEqual(
    [...keys].filter((k) => !keyInScript(k)),
    [],
  );
});

test('every request field the transcripts send is one wua.ps1 reads', () => {
  const requests = transcriptFiles.flatMap((f) =>
    protocolLines(f)
      .filter(isRequestLine)
      .map((l) => parseRequest(l)),
  );
  const keys = keysOf(requests);
  assert.ok(keys.has('offlineCabPath') && keys.has('targetId'));
  const reads = (k: string): boolean =>
    new RegExp(`\\.${k}\\b|Get-Field \\$\\w+ '${k}'|Properties\\['${k}'\\]`).test(script);
  assert.deepEqual(
    [...keys].filter((k) => !reads(k)),
    [],
  );
});

test('wua.ps1 maps every field of the update record', () => {
  assert.deepEqual(
    Object.keys(UpdateRecordSchema.properties).filter((k) => !keyInScript(k)),
    [],
  );
});

test('wua.ps1 handles every request type of the protocol', () => {
  const types = RequestSchema.anyOf.map((s) => s.properties.type.const as string);
  // `abort` is handled as lines arrive, the others in the request switch: 'search' { … }.
  const dispatch = functionBody('Start-Request');
  assert.deepEqual(
    types.filter((t) => t !== 'abort' && !new RegExp(`'${t}'\\s*\\{`).test(dispatch)),
    [],
  );
  assert.match(functionBody('Receive-Line'), /-eq 'abort'\) \{ Invoke-Abort/);
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

test("every message in the transcripts is one wua.ps1 writes, or a COM exception's own text", () => {
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
    ['async search', /BeginSearch\(/],
    ['async download', /BeginDownload\(/],
    ['async install', /BeginInstall\(/],
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
    ['hide', /\.IsHidden = \$Hidden/],
    ['history', /\.QueryHistory\(/],
    ['cache', /\.CopyToCache\(/],
    ['abort', /\.RequestAbort\(\)/],
    ['HRESULT text', /'0x\{0:X8\}'/],
    ['UTF-8 without BOM, flushed', /UTF8Encoding\(\$false\)[\s\S]*AutoFlush = \$true/],
  ];
  assert.deepEqual(
    required.filter(([, pattern]) => !pattern.test(script)).map(([what]) => what),
    [],
  );
});

test('wua.ps1 never writes to stdout except through its JSON writer', () => {
  assert.doesNotMatch(script, /\bWrite-(Host|Output|Information)\b|\becho\b|\[Console\]::(Write|Out)/i);
  // Exactly one place writes: Send-Event.
  assert.equal(script.match(/\$Out\.WriteLine\(/g)?.length, 1);
});

test('wua.ps1 brackets balance, in the PowerShell and in its C# (a stand-in for a parser, which is not available here)', () => {
  const { brackets, hereStrings } = scanned;
  assert.ok(brackets.length > 100);
  assert.ok(balanced(brackets), 'PowerShell brackets');
  assert.equal(hereStrings.length, 1, 'one C# here-string');
  const csharp = (hereStrings[0] ?? '').replace(/\/\/.*$/gm, '').replace(/"(?:[^"\\]|\\.)*"/g, '""');
  assert.ok(balanced(csharp.replace(/[^(){}[\]]/g, '')), 'C# brackets');
  assert.ok(!balanced('{(})'), 'the checker itself catches crossed brackets');
});

// AddServiceFlag and UpdateServiceOption (wuapi.h), reference/windows-update-agent.md §1.
const ASF_ALLOW_ONLINE_REGISTRATION = 2;
const ASF_REGISTER_SERVICE_WITH_AU = 4;
const USO_NON_VOLATILE_SERVICE = 1;

test("Microsoft Update is registered for online use only, never as the machine's Automatic Updates service", () => {
  const flags = numericConstant('AddServiceFlags');
  // asfRegisterServiceWithAU changes how the host patches itself, for good; PSWindowsUpdate passes 2.
  assert.equal(flags & ASF_REGISTER_SERVICE_WITH_AU, 0, `AddService2 flags ${flags} include asfRegisterServiceWithAU`);
  assert.equal(flags & ASF_ALLOW_ONLINE_REGISTRATION, ASF_ALLOW_ONLINE_REGISTRATION);
  assert.match(functionBody('Set-ServerSelection'), /AddService2\(\$MicrosoftUpdateServiceId, \$AddServiceFlags, ''\)/);
});

test('an offline-scan registration cannot outlive a crashed provider: volatile, kept while used, and stale ones removed at start', () => {
  assert.equal(
    numericConstant('ScanPackageServiceOption') & USO_NON_VOLATILE_SERVICE,
    0,
    'usoNonVolatileService leaks the registration when the provider dies',
  );
  assert.match(
    functionBody('Start-Search'),
    /\$state\.scanService = \$ServiceManager\.AddScanPackageService\(\$OfflineServiceName, \$path, \$ScanPackageServiceOption\)/,
  );
  const stale = functionBody('Remove-StaleScanServices');
  assert.match(
    stale,
    /\.Name -eq \$OfflineServiceName -and \[bool\]\$s\.IsScanPackageService/,
    "only Patchline's own scan packages are removed",
  );
  assert.match(stale, /RemoveService\(\$serviceId\)/);
  // Run once, after hello (its warnings are protocol lines), inside the loop's try.
  const code = scanned.code;
  const hello = code.indexOf("type = 'hello'");
  const call = code.indexOf('Remove-StaleScanServices\n', code.indexOf('try {', hello));
  assert.ok(
    hello > 0 && call > hello && call < code.indexOf('while ($true)'),
    'Remove-StaleScanServices runs after hello, before the loop',
  );
});

test('the fields wua.ps1 requires of each request are the ones protocol.ts requires', () => {
  const table = requiredFieldsTable();
  const expected = Object.fromEntries(
    RequestSchema.anyOf.map((s) => [
      s.properties.type.const as string,
      (s.required ?? []).filter((f: string) => f !== 'id' && f !== 'type').sort(),
    ]),
  );
  assert.deepEqual(Object.fromEntries(Object.entries(table).map(([t, f]) => [t, [...f].sort()])), expected);
});

test('before a request is checked, wua.ps1 reads it only through Get-Field (StrictMode throws on a missing property or $null)', () => {
  for (const name of ['Receive-Line', 'Invoke-Abort']) {
    const direct = functionBody(name).match(/\$request\.\w+/gi) ?? [];
    assert.deepEqual(direct, [], `${name} reads a request field directly`);
  }
  const getField = functionBody('Get-Field');
  assert.ok(getField.indexOf('$null -eq $Object') < getField.indexOf('.PSObject'), 'Get-Field checks for $null first');
  // A `null` line, a number or an array is not a request: refused before Get-Field.
  assert.match(
    functionBody('Receive-Line'),
    /\$null -eq \$request -or \$request -isnot \[System\.Management\.Automation\.PSCustomObject\]/,
  );
  assert.match(
    functionBody('Invoke-Abort'),
    /if \(-not \$target\) \{\s*Send-Result \$Request 'failed' \$HResultInvalidArg/,
  );
});

test('every request gets exactly one result: a job is cleaned up (never throwing) before its one answer is sent', () => {
  assert.equal(scanned.code.match(/\.CleanUp\(\)/g)?.length, 1, 'CleanUp is called in one place');
  assert.match(functionBody('Close-Job'), /try \{ \$State\.job\.CleanUp\(\) \}\s*catch \{ Send-Warning/);
  for (const name of ['Complete-Running', 'Complete-LostJob']) {
    const body = functionBody(name);
    assert.equal(body.match(/Send-(Answer|Result)/g)?.length, 1, `${name} answers once`);
    assert.ok(
      body.indexOf('Close-Job $State') >= 0 && body.indexOf('Close-Job $State') < body.indexOf('Send-Answer'),
      `${name} cleans up before it answers`,
    );
  }
  // The Get-*Answer functions only say what to answer; they send no result themselves.
  for (const name of ['Get-SearchAnswer', 'Get-DownloadAnswer', 'Get-InstallAnswer'])
    assert.doesNotMatch(functionBody(name), /Send-Result|Send-Answer|CleanUp/, name);
});

test('an unknown request type is answered (E_NOTIMPL), not only warned about', () => {
  const dispatch = functionBody('Start-Request');
  assert.doesNotMatch(dispatch, /default \{ Send-Warning/);
  assert.match(
    dispatch,
    /if \(-not \$RequiredFields\.ContainsKey\(\$type\)\) \{[^}]*Send-Result \$Request 'failed' \$HResultNotImplemented/,
  );
  assert.match(script, /^\$HResultNotImplemented = '0x80004001'/m);
});

test('the job poll survives the Windows Update service going away, and a failing GetProgress is rate-limited', () => {
  const loop = scanned.code.slice(scanned.code.indexOf('while ($true)'));
  assert.match(
    loop,
    /try \{\s*\$completed = \[bool\]\$Running\.job\.IsCompleted\s*\} catch \{[^}]*Complete-LostJob \$lost \$_\.Exception/,
  );
  assert.match(
    loop,
    /try \{ Send-JobProgress \$Running \}\s*catch \{ Send-ProgressFailure \$Running \$_\.Exception \}/,
  );
  assert.match(
    functionBody('Send-ProgressFailure'),
    /\$held = \$State\.warnings\.Admit\([^)]*\)\s*if \(\$held -lt 0\) \{ return \}/,
  );
});

test('install refuses when a restart must come first and skips updates that can ask for user input, before WUA is called', () => {
  const install = functionBody('Start-Install');
  const at = (s: string): number => {
    const i = install.indexOf(s);
    assert.ok(i >= 0, s);
    return i;
  };
  assert.ok(at('.RebootRequiredBeforeInstallation') < at('Find-Updates'));
  assert.ok(at('.InstallationBehavior.CanRequestUserInput') < at('New-UpdateCollection'));
  assert.ok(at('New-UpdateCollection') < at('BeginInstall('));
});

test('history is read one entry at a time, so one unreadable entry costs a warning, not the whole history', () => {
  const history = functionBody('Invoke-History');
  assert.match(
    history,
    /for \(\$i = 0; \$i -lt \$count; \$i\+\+\) \{\s*try \{[\s\S]*\.QueryHistory\(\$i, 1\)[\s\S]*\} catch \{\s*Send-Warning/,
  );
  assert.doesNotMatch(history, /QueryHistory\(0,/);
});

test('a search asks WUA for a searcher before it reports progress (E_ACCESSDENIED comes from CreateUpdateSearcher, before any progress)', () => {
  const search = functionBody('Start-Search');
  assert.ok(search.indexOf('CreateUpdateSearcher()') < search.indexOf('Send-Progress'));
});

// ── 4. replay through the real client ───────────────────────────────────────────────────────

/**
 * Starts the replay provider on a transcript: as a process, exactly as the agent would start it, or
 * in memory (the same serveReplay over streams) where starting one process per transcript would
 * only add seconds of node + tsx start-up.
 */
async function startReplay(file: string, how: 'process' | 'memory'): Promise<WuaClient> {
  const channel =
    how === 'process'
      ? spawnProvider([process.execPath, '--import', 'tsx', REPLAY_PATH, join(TRANSCRIPT_DIR, file)], { cwd: root })
      : inMemoryChannel((input, output) =>
          serveReplay(parseTranscript(readTranscript(file), file), input, output, () => undefined),
        );
  return WuaClient.start(channel, { helloTimeoutMs: HELLO_TIMEOUT_MS, closeTimeoutMs: 5_000, abortGraceMs: 5_000 });
}

const withoutId = (r: ProviderRequest): RequestBody => {
  const { id: _id, ...body } = r;
  return body as RequestBody;
};

/** The recorded events of an exchange, as a live session with the client's ids would see them. */
function expectedFor(
  transcript: Transcript,
  index: number,
  liveId: string,
): { result: ProviderEvent; progress: number; warnings: number } {
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
  for (const file of transcriptFiles.filter((f) => f !== 'abort.jsonl')) {
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
            timeoutMs: REQUEST_TIMEOUT_MS,
            onProgress: (e) => progress.push(e),
            onWarning: (e) => warnings.push(e),
          });
          const expected = expectedFor(transcript, index, result.requestId);
          assert.deepEqual(result, expected.result, `${file} ${exchange.request.type}`);
          assert.equal(progress.length, expected.progress, `${file} ${exchange.request.type} progress events`);
          assert.equal(warnings.length, expected.warnings, `${file} ${exchange.request.type} warnings`);
          assert.ok(
            progress.every((p) => p.requestId === result.requestId),
            'progress carries the live request id',
          );
        }
      } finally {
        await client.close();
      }
    });
  }

  test('aborting a replayed download through the client ends it aborted, after the recorded progress', async () => {
    const client = await startReplay('abort.jsonl', 'process');
    try {
      const found = await client.request(
        { type: 'search', criteria: 'IsInstalled=0 and IsHidden=0', serverSelection: 'default' },
        { timeoutMs: REQUEST_TIMEOUT_MS },
      );
      assert.equal(found.resultCode, 'succeeded');
      const ids = (found.data?.updates ?? []).map((u) => u.updateId);
      const controller = new AbortController();
      const percents: number[] = [];
      const result = await client.request(
        { type: 'download', updateIds: ids },
        {
          timeoutMs: REQUEST_TIMEOUT_MS,
          signal: controller.signal,
          // Abort once the download is under way, as an operator's cancel would.
          onProgress: (e) => {
            percents.push(e.percent);
            if (e.percent > 0) controller.abort();
          },
        },
      );
      assert.equal(result.resultCode, 'aborted');
      assert.deepEqual(
        result.data?.updates.map((u) => u.resultCode),
        ['aborted'],
      );
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
        (error: Error & { code?: string }) =>
          error.code === 'PROVIDER_CRASHED' &&
          /no unplayed history request/.test(error.message) &&
          /code 3/.test(error.message),
      );
    } finally {
      await client.close();
    }
  });
});
