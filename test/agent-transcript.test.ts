/**
 * Contract test: the agent that ships, run against what the PowerShell provider (wua.ps1) would
 * print on Windows. The transcript is HAND-WRITTEN from Microsoft's WUA documentation (see
 * test/transcripts/README.md), replayed by a separate provider process over stdio, exactly as the
 * agent talks to `powershell.exe -File wua.ps1`. It has not been recorded on Windows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../src/agent/clock.ts';
import { runCycle } from '../src/agent/cycle.ts';
import type { CycleRequest } from '../src/domain/agent-log.ts';
import { spawnProvider } from '../src/wua/client.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

test("a normal cycle against the PowerShell provider's transcript: preflight, scan, download, install, reboot required", async () => {
  const transcript = join(ROOT, 'test/transcripts/normal-install-reboot.jsonl');
  const request: CycleRequest = {
    runId: 'r-contract',
    host: 'WEB01',
    cycle: 1,
    mode: 'install',
    reboot: 'if-required',
    filters: {},
    exclude: [],
    installedEarlier: [],
    serverSelection: 'default',
    installerBusyTimeoutSeconds: 60,
    logHandoverTimeoutSeconds: 1,
  };
  const summary = await runCycle(request, {
    openProvider: () =>
      spawnProvider([process.execPath, '--import', 'tsx', join(ROOT, 'src/wua/providers/replay.ts'), transcript]),
    sinks: [],
    clock: systemClock,
    signal: new AbortController().signal,
  });
  const events = summary.log.events();
  assert.equal(summary.internalError, undefined);
  assert.deepEqual(
    [summary.outcome, summary.rebootRequired, summary.willReboot],
    ['reboot-required', true, true],
    summary.message ?? '',
  );
  const started = events.find((e) => e.kind === 'cycle-started');
  assert.match(started?.kind === 'cycle-started' ? started.provider : '', /^powershell/);
  const scan = events.find((e) => e.kind === 'scan-result');
  assert.ok(scan?.kind === 'scan-result' && scan.selected.length === 2, 'both security updates selected');
  const installs = events.filter((e) => e.kind === 'update-result' && e.phase === 'install');
  assert.equal(installs.length, 2);
  assert.ok(installs.every((e) => e.kind === 'update-result' && e.resultCode === 'succeeded'));
  assert.equal(summary.installed.length, 2);
  assert.ok(
    events.some((e) => e.kind === 'progress' && e.phase === 'install'),
    'install progress is relayed',
  );
});
