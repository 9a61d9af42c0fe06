/**
 * The C# half of wua.ps1, run. The script's Add-Type block is compiled here with Mono's C# 5
 * compiler (what Windows PowerShell's csc accepts) and its pieces are driven through a small
 * harness: the stdin reader (no spinning once stdin closes), the warning gate (a failing
 * GetProgress is not a warning every 500 ms) and the result-code rules (a request where nothing
 * was done fails). The COM half cannot run anywhere but Windows; nothing here claims it did.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { csharp, onPath } from './powershell-script.ts';

/** Drives the helpers: `reader` echoes stdin lines then times waits after EOF; `gate` and `outcome` evaluate one input per line. */
const HARNESS = `
using System;
using System.Diagnostics;
using Patchline.Wua;
public static class Harness {
  public static int Main(string[] args) {
    if (args[0] == "reader") {
      LineReader reader = new LineReader(Console.OpenStandardInput());
      JobCallback callback = new JobCallback();
      ((IDownloadCompletedCallback)callback).Invoke(null, null);
      while (true) {
        string line = reader.Next(100);
        if (line != null) Console.WriteLine("line:" + line);
        else if (reader.IsFinished) break;
      }
      int polls = int.Parse(args[1]);
      int timeoutMs = int.Parse(args[2]);
      Stopwatch clock = Stopwatch.StartNew();
      for (int i = 0; i < polls; i++) if (reader.Next(timeoutMs) != null) Console.WriteLine("unexpected line");
      Console.WriteLine("calls:" + callback.Calls);
      Console.WriteLine("waitedMs:" + clock.ElapsedMilliseconds);
      return 0;
    }
    string input;
    WarningGate gate = null;
    while ((input = Console.ReadLine()) != null) {
      string[] f = input.Split(' ');
      if (args[0] == "gate") {
        if (gate == null) { gate = new WarningGate(long.Parse(f[0])); continue; }
        Console.WriteLine(gate.Admit(input.Substring(f[0].Length + 1), long.Parse(f[0])));
      } else if (f[0] == "merge") {
        Console.WriteLine(Outcome.Merge(f[1], int.Parse(f[2]), int.Parse(f[3])));
      } else {
        Console.WriteLine(Outcome.OfCounts(int.Parse(f[1]), int.Parse(f[2])));
      }
    }
    return 0;
  }
}`;
/** Bounds each Mono step; compiling takes about a second, more on a loaded machine. */
const MONO_STEP_TIMEOUT_MS = 60_000;
const haveMono = onPath('mcs') !== null && onPath('mono') !== null;

describe(
  'the C# helpers of wua.ps1 under Mono',
  { skip: haveMono ? false : 'needs Mono (apt-get install mono-mcs mono-runtime) to compile the Add-Type block' },
  () => {
    let dir = '';
    let exe = '';
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'patchline-csharp-'));
      exe = join(dir, 'harness.exe');
      writeFileSync(join(dir, 'helpers.cs'), csharp);
      writeFileSync(join(dir, 'harness.cs'), HARNESS);
      // -langversion:5: Windows PowerShell 5.1's Add-Type compiles with the .NET Framework's C# 5 csc.
      execFileSync('mcs', ['-langversion:5', `-out:${exe}`, join(dir, 'helpers.cs'), join(dir, 'harness.cs')], {
        timeout: MONO_STEP_TIMEOUT_MS,
        stdio: 'pipe',
      });
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    const run = (args: string[], input: string): string =>
      execFileSync('mono', [exe, ...args], { input, timeout: MONO_STEP_TIMEOUT_MS, encoding: 'utf8' });

    test('the reader hands over stdin lines as UTF-8 until EOF', () => {
      const out = run(['reader', '0', '0'], 'first\n{"id":"1","type":"rebootStatus","note":"é"}\n');
      assert.match(out, /^line:first\nline:\{"id":"1","type":"rebootStatus","note":"é"\}\ncalls:1\n/);
    });

    test('once stdin is closed, a read waits its whole timeout instead of returning at once (the job poll does not spin)', () => {
      // The main loop polls a running job with Next(500) and goes on after stdin closes: with
      // TryTake alone each call returned at once on the completed collection — 100 % CPU.
      const polls = 5;
      const timeoutMs = 100;
      const waited = Number(/waitedMs:(\d+)/.exec(run(['reader', String(polls), String(timeoutMs)], 'only\n'))?.[1]);
      // Allow for timer granularity (a Sleep can end a millisecond early), never for a spin.
      assert.ok(waited >= polls * timeoutMs - polls * 5, `${polls} reads after EOF took ${waited} ms`);
    });

    test('a warning repeated on every poll is reported once, then once per quiet period with the count held back', () => {
      const quietMs = 60_000;
      const polls = Array.from({ length: 130 }, (_, i) => `${i * 500} 0x80004005 Unspecified error`);
      const lines = [
        String(quietMs),
        ...polls,
        '65500 0x800706BE The remote procedure call failed.',
        '66000 0x80004005 Unspecified error',
      ];
      const admitted = run(['gate'], `${lines.join('\n')}\n`)
        .trim()
        .split('\n')
        .map(Number);
      const reported = admitted.map((held, i) => ({ held, i })).filter((x) => x.held >= 0);
      // t=0 reported; t=500…59500 held back (119); t=60000 reported saying 119 were held back;
      // a different text at once; the first text again at once since it is no longer the last one.
      assert.deepEqual(reported.map((x) => [x.i * 500, x.held]).slice(0, 2), [
        [0, 0],
        [60_000, 119],
      ]);
      assert.deepEqual(
        admitted.slice(-2),
        [9, 0],
        'a new text is reported at once with what was held back; then the old text again is new',
      );
      assert.equal(reported.length, 4);
    });

    test('result codes over several updates follow WUA: nothing done fails; a success that left some out has errors', () => {
      const cases: readonly (readonly [string, string])[] = [
        // merge <WUA's code> <updates done> <updates not handed to WUA (not found, skipped)>
        ['merge succeeded 0 1', 'failed'], // download/install where no id was found: failed, not succeededWithErrors
        ['merge succeeded 2 0', 'succeeded'],
        ['merge succeeded 1 1', 'succeededWithErrors'],
        ['merge succeededWithErrors 1 1', 'succeededWithErrors'],
        ['merge failed 1 1', 'failed'],
        ['merge aborted 2 1', 'aborted'],
        // counts <succeeded> <failed>: hide/unhide answered update by update
        ['counts 0 2', 'failed'], // every update failed: failed, not succeededWithErrors
        ['counts 2 0', 'succeeded'],
        ['counts 1 1', 'succeededWithErrors'],
      ];
      const out = run(['outcome'], `${cases.map(([input]) => input).join('\n')}\n`)
        .trim()
        .split('\n');
      assert.deepEqual(
        out,
        cases.map(([, expected]) => expected),
      );
    });
  },
);
