/**
 * `patchline run --transport windows` through the CLI, on this (Linux) machine: the options are
 * understood, and the run is refused before anything starts, saying the connector must run on
 * Windows and what to use instead. (On Windows the same options open the windows transport.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

function run(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', MAIN, 'run', ...args],
      { timeout: 60_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
  });
}

test(
  '--transport windows off Windows: exit 64, nothing started, what to use instead',
  { skip: process.platform === 'win32' ? 'this test is about a non-Windows connector' : false },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pl-winrun-cli-'));
    writeFileSync(join(dir, 'servers.yaml'), 'hosts:\n  web01: { address: 10.0.0.11 }\n');
    const state = join(dir, 'state.db');
    const refused = await run([
      'web01',
      '--transport',
      'windows',
      '--client-share',
      '\\\\files01\\patchline',
      '--inventory',
      join(dir, 'servers.yaml'),
      '--state',
      state,
    ]);
    assert.equal(refused.code, 64, refused.stderr);
    assert.match(
      refused.stderr,
      /error TRANSPORT_UNAVAILABLE: --transport windows .* the connector must run on Windows\. From Linux or macOS use --transport ssh/,
    );
    assert.ok(!existsSync(state), 'no state file was created');
  },
);
