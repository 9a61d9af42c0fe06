/**
 * Tests run on any machine: none names a path of the machine it was written on, and the shared
 * third-party test data is reached only through test/testdata.ts (../shared/testdata beside the
 * repository, or $PATCHLINE_TESTDATA), which skips with a reason when it is absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const HELPER = join('test', 'testdata.ts');
/** This file, whose self-check spells such paths out. */
const SELF = join('test', 'test-paths.test.ts');

/** Test code: *.test.ts anywhere under src/ and test/, and every .ts under test/ (helpers, fakes). */
function testFiles(dir: string, underTest: boolean): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : testFiles(path, underTest);
    return /\.tsx?$/.test(e.name) && (underTest || /\.test\.tsx?$/.test(e.name)) ? [relative(ROOT, path)] : [];
  });
}

const files = [...testFiles(join(ROOT, 'src'), false), ...testFiles(join(ROOT, 'test'), true)].filter(
  (f) => f !== SELF,
);

/**
 * Absolute paths of a particular development machine (/work/…, /home/…, /Users/…, /root/…) in a
 * string. Windows paths are not on the list: tests use them as the simulated targets' own paths.
 */
const MACHINE_PATH = /['"`](?:\/work\/|\/home\/|\/Users\/|\/root\/)/;

test('no test names a path of the machine it was written on', () => {
  assert.ok(files.length > 50);
  const offenders = files.filter((f) => MACHINE_PATH.test(readFileSync(join(ROOT, f), 'utf8')));
  assert.deepEqual(offenders, []);
});

test('the shared test data is reached only through test/testdata.ts', () => {
  const direct = files.filter(
    (f) => f !== HELPER && /['"`][^'"`]*shared\/testdata/.test(readFileSync(join(ROOT, f), 'utf8')),
  );
  assert.deepEqual(direct, []);
  assert.ok(
    // The machine path is assembled so this file does not itself name one.
    MACHINE_PATH.test(`'${['', 'home', 'ci', 'shared', 'testdata'].join('/')}'`) &&
      !MACHINE_PATH.test("'../shared/testdata'"),
    'the check catches what it is for',
  );
});
