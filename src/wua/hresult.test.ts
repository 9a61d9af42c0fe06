/**
 * HRESULT descriptions. The tests of the generated table read ../shared/testdata/wua/error-codes.json
 * (Microsoft's SDK table, outside the repository; or $PATCHLINE_TESTDATA) at run time, so that the
 * committed table is checked against the source it was made from, not against a copy of itself;
 * they skip, saying where they looked, when it is absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { ADVISED_NAMES, describeHResult, formatHResultForUser, hresultByName, parseHResult } from './hresult.ts';
import { renderHResultTable, type SourceEntry } from '../../scripts/gen-hresult-table.ts';
import { skipWithoutTestdata, testdata } from '../../test/testdata.ts';

const here = dirname(fileURLToPath(import.meta.url));
const SOURCE_PATH = testdata('wua', 'error-codes.json');
const skip = skipWithoutTestdata('wua', 'error-codes.json');
const TABLE_PATH = resolve(here, 'hresult-table.ts');
const source = existsSync(SOURCE_PATH) ? (JSON.parse(readFileSync(SOURCE_PATH, 'utf8')) as SourceEntry[]) : [];

test('the shared table has the 474 codes SOURCES.md describes', { skip }, () => {
  assert.equal(source.length, 474);
});

test("every WUA code in Microsoft's table maps to the same name and message", { skip }, () => {
  const wrong: string[] = [];
  for (const e of source) {
    const d = describeHResult(e.hresult);
    if (d.name !== e.name || d.hresult !== e.hresult || !d.meaning.startsWith(e.message.replace(/\.$/, ''))) {
      wrong.push(`${e.hresult}: got ${d.name}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test("the alternative values Microsoft's sources give map to the same name", { skip }, () => {
  const alts = source.filter((e) => e.alt_hresult !== undefined);
  assert.ok(alts.length >= 1);
  for (const e of alts) {
    const d = describeHResult(e.alt_hresult as string);
    assert.equal(d.name, e.name);
    assert.equal(d.hresult, e.alt_hresult, 'the code shown is the one reported, not the canonical one');
  }
});

test('a value an older SDK named differently mentions the older name', () => {
  const d = describeHResult('0x80240047');
  assert.equal(d.name, 'WU_E_REVERT_NOT_ALLOWED');
  assert.match(d.meaning, /WU_E_NOTSUPPORTED/);
});

test('the committed generated table is what the generator makes from the shared JSON', { skip }, () => {
  assert.equal(
    readFileSync(TABLE_PATH, 'utf8'),
    renderHResultTable(source),
    'src/wua/hresult-table.ts is stale: run node --import tsx scripts/gen-hresult-table.ts',
  );
});

test('every code in the format users see', () => {
  assert.equal(
    formatHResultForUser('0x80240016'),
    `0x80240016 WU_E_INSTALL_NOT_ALLOWED: Operation tried to install while another installation was in progress or the system was pending a mandatory restart. ${describeHResult('0x80240016').advice}`,
  );
  assert.match(
    formatHResultForUser(0x80240016),
    /^0x80240016 WU_E_INSTALL_NOT_ALLOWED: .+\. Another installation is running/,
  );
});

test('numbers are read signed (.NET HResult) or unsigned, text with or without 0x, any case', () => {
  const forms: (string | number)[] = [
    -2145124330,
    0x80240016,
    '0x80240016',
    '0x80240016'.toLowerCase(),
    '80240016',
    ' -2145124330 ',
    '2149842966',
  ];
  for (const form of forms) assert.equal(describeHResult(form).hresult, '0x80240016', String(form));
  assert.equal(parseHResult('0x5'), 5);
  for (const bad of ['', 'nope', '0x123456789', '1e9', 2 ** 32, 1.5, Number.NaN])
    assert.equal(parseHResult(bad), null, String(bad));
});

test('text that is not an HRESULT is a usage error, and the user format says so instead of throwing', () => {
  assert.throws(
    () => describeHResult('KB5044444'),
    (e: unknown) => (e as { code?: string }).code === 'HRESULT_INVALID',
  );
  assert.equal(formatHResultForUser('KB5044444'), 'KB5044444 (not an HRESULT)');
});

// The Win32/COM/servicing codes administrators meet around Windows Update, with what to try.
const COMMON: readonly (readonly [string, string, RegExp])[] = [
  ['0x80070005', 'E_ACCESSDENIED', /remote logon/],
  ['0x8007045B', 'ERROR_SHUTDOWN_IN_PROGRESS', /shutdown/],
  ['0x800706BE', 'RPC_S_CALL_FAILED', /remote procedure call failed/],
  ['0x800706BA', 'RPC_S_SERVER_UNAVAILABLE', /RPC server is unavailable/],
  ['0x80072EE2', 'ERROR_INTERNET_TIMEOUT', /timed out/],
  ['0x800F0922', 'CBS_E_INSTALLERS_FAILED', /Servicing failed/],
  ['0x800F081F', 'CBS_E_SOURCE_MISSING', /source files/],
  ['0x80073712', 'ERROR_SXS_COMPONENT_STORE_CORRUPT', /component store/],
  ['0x00041325', 'SCHED_S_TASK_QUEUED', /asked the task to run/],
  ['0x8004131F', 'SCHED_E_ALREADY_RUNNING', /already running/],
  ['0x80041315', 'SCHED_E_SERVICE_NOT_RUNNING', /not running/],
];

test('common Win32, COM, CBS and Task Scheduler codes have their names and meanings', () => {
  for (const [code, name, meaning] of COMMON) {
    const d = describeHResult(code);
    assert.equal(d.name, name, code);
    assert.match(d.meaning, meaning, code);
  }
});

test('the codes admins commonly meet say what to try', () => {
  const cases: readonly (readonly [string, RegExp])[] = [
    ['0x80240016', /wait for the other installation|reboot/i], // installer busy
    ['0x00240005', /Reboot/], // reboot pending
    ['0x8024402C', /proxy/], // network
    ['0x8024402C', /ssOthers=3/], // offline scan without ServerSelection=3
    ['0x80070005', /SYSTEM.*Task Scheduler/], // remote logon
    ['0x80070070', /Free space/], // disk space
    ['0x80242017', /servicing stack/], // SSU needed
    ['0x80246002', /digest/], // download hash
    ['0x800F0922', /System Reserved\/EFI partition is too small.*CBS\.log/],
    ['0x80072EE2', /netsh winhttp show proxy/],
  ];
  for (const [code, advice] of cases) assert.match(describeHResult(code).advice ?? '', advice, code);
});

test('names resolve to their values, and every name with advice exists (no misspelt advice that never shows)', () => {
  assert.equal(hresultByName('WU_E_INSTALL_NOT_ALLOWED'), '0x80240016');
  assert.equal(hresultByName('sched_s_task_queued'), '0x00041325');
  assert.equal(hresultByName('WU_E_NOTSUPPORTED'), '0x80240047');
  assert.equal(hresultByName('WU_E_NO_SUCH_THING'), null);
  assert.deepEqual(
    ADVISED_NAMES.filter((name) => hresultByName(name) === null),
    [],
  );
  assert.ok(ADVISED_NAMES.length >= 40);
});

test('unknown codes still decode severity, facility and the Win32 error number', () => {
  const win32 = describeHResult('0x80070426');
  assert.equal(win32.name, null);
  assert.match(win32.meaning, /^0x80070426 is a Win32 error 1062 \(0x426\)/);
  assert.match(win32.meaning, /net helpmsg 1062/);
  assert.equal(formatHResultForUser('0x80070426'), `${win32.meaning}.`, 'the code is not repeated');

  const winhttp = describeHResult('0x80072F76');
  assert.match(winhttp.meaning, /Win32 error 12150 .*WinHTTP/);
  assert.match(winhttp.advice ?? '', /proxy/);

  const wua = describeHResult('0x80244FF0');
  assert.match(wua.meaning, /unlisted Windows Update Agent error \(component: protocol talker/);

  const other = describeHResult('0x80310000');
  assert.match(other.meaning, /unlisted error: facility FVE \(BitLocker\) \(49\), code 0/);

  const success = describeHResult('0x00090312');
  assert.match(success.meaning, /unlisted success code: facility SECURITY/);

  assert.match(describeHResult('0xD0000022').meaning, /NTSTATUS 0xC0000022 wrapped/);
});
