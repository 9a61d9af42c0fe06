/**
 * Every error code the code can throw has a line in docs/errors.md (STYLE.md §6: each user-facing
 * error has a stable code and a line in the docs). Codes are found as UPPER_SNAKE string literals
 * on lines that construct an error, and in the errors.ts modules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Tables of Windows' own codes (WU_E_…), not ours (nor are Fastify's FST_ERR_… the gateway matches on). */
const NOT_OURS = new Set(['hresult-table.ts', 'wua-codes.ts']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !NOT_OURS.has(e.name) ? [p] : [];
  });
}

test('every error code used in src/ is documented in docs/errors.md', () => {
  const documented = new Set(
    [...readFileSync(join(ROOT, 'docs/errors.md'), 'utf8').matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]),
  );
  const used = new Map<string, string>();
  for (const file of sourceFiles(join(ROOT, 'src'))) {
    const isErrorsModule = file.endsWith('errors.ts');
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!isErrorsModule && !/Error\(|error\(|code:/.test(line)) continue;
      for (const m of line.matchAll(/'([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)'/g))
        if (!/^WU_|^E_|^S_|^FST_/.test(m[1]!)) used.set(m[1]!, file); // Windows' and Fastify's codes: not ours
    }
  }
  assert.ok(used.size > 40, `found ${used.size} codes: the scan itself works`);
  const missing = [...used]
    .filter(([code]) => !documented.has(code))
    .map(([code, file]) => `${code} (${file.slice(ROOT.length)})`);
  assert.deepEqual(missing, [], 'add these codes to docs/errors.md');
});
