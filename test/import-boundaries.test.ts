/**
 * The layering of DESIGN.md §3, enforced rather than remembered:
 *
 *   cli → server / engine / agent / catalog / content → transports / wua / store → domain
 *
 * A module may import its own folder and the tiers below its own; `domain` imports nothing of ours;
 * `lab` (the test bed) may import anything, but only `cli` and tests import `lab`; code under src/
 * never imports tests. Imports are read with TypeScript's own pre-processor (static, type-only,
 * re-exports and dynamic import() alike). Exceptions are listed below, each with its reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');

/** Tier of each folder under src/: a module may import from its own folder and lower tiers. */
const TIERS: Readonly<Record<string, number>> = {
  domain: 0,
  transports: 1,
  wua: 1,
  store: 1,
  server: 2,
  engine: 2,
  agent: 2,
  catalog: 2,
  content: 2,
  cli: 3,
};
/** The test bed: imports anything, imported only by these folders (and tests). */
const LAB = 'lab';
const MAY_IMPORT_LAB: ReadonlySet<string> = new Set(['cli']);

/**
 * Known crossings, each with why it stays for now. Keyed `from-folder -> to-folder: file`.
 * Remove an entry when its import goes; the test fails on entries that no longer match anything.
 */
const EXCEPTIONS: Readonly<Record<string, string>> = {
  'server -> catalog: src/server/tls.ts':
    "the server's self-signed TLS certificate is made with catalog/authenticode's X.509 builder; moving that builder down (to domain or a crypto folder) is the catalog owner's change",
};

export interface Edge {
  readonly file: string;
  readonly from: string;
  readonly to: string;
}

/** Why an import from folder `from` to folder `to` breaks the layering, or null when it does not. */
export function crossing(from: string, to: string): string | null {
  if (from === to) return null;
  if (to === 'test') return 'src/ imports a test';
  if (from === LAB) return null;
  if (to === LAB)
    return MAY_IMPORT_LAB.has(from) ? null : `only ${[...MAY_IMPORT_LAB].join(', ')} and tests import lab`;
  const a = TIERS[from];
  const b = TIERS[to];
  if (a === undefined) return `src/${from} is not in DESIGN.md §3's layout (add it to TIERS)`;
  if (b === undefined) return `src/${to} is not in DESIGN.md §3's layout (add it to TIERS)`;
  if (from === 'domain') return 'domain imports nothing of ours';
  return b < a ? null : `${from} (tier ${a}) may import only lower tiers; ${to} is tier ${b}`;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return /\.tsx?$/.test(e.name) && !/\.test\.tsx?$/.test(e.name) ? [path] : [];
  });
}

/** Every import between top-level folders by a non-test module under src/. */
function edges(): Edge[] {
  const out: Edge[] = [];
  for (const path of sourceFiles(SRC)) {
    const info = ts.preProcessFile(readFileSync(path, 'utf8'), true, true);
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const target = relative(SRC, resolve(dirname(path), fileName));
      const from = relative(SRC, path).split(sep)[0] as string;
      const to = target.startsWith('..')
        ? (relative(ROOT, resolve(dirname(path), fileName)).split(sep)[0] as string)
        : (target.split(sep)[0] as string);
      if (from !== to) out.push({ file: relative(ROOT, path), from, to });
    }
  }
  return out;
}

test('the layering rule itself: down the tiers, lab only from cli, domain alone', () => {
  const cases: readonly (readonly [string, string, boolean])[] = [
    ['cli', 'engine', true],
    ['engine', 'transports', true],
    ['wua', 'domain', true],
    ['lab', 'engine', true],
    ['cli', 'lab', true],
    ['domain', 'wua', false],
    ['transports', 'engine', false],
    ['engine', 'lab', false],
    ['server', 'cli', false],
    ['engine', 'agent', false],
    ['store', 'wua', false],
    ['agent', 'test', false],
  ];
  assert.deepEqual(
    cases.map(([from, to]) => [from, to, crossing(from, to) === null]),
    cases,
  );
});

test('src/ follows DESIGN.md §3: no import crosses the layering except the listed exceptions', () => {
  const all = edges();
  assert.ok(all.length > 100, 'the imports were found');
  const folders = new Set(
    readdirSync(SRC, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name),
  );
  assert.deepEqual(
    [...folders].filter((f) => f !== LAB && TIERS[f] === undefined),
    [],
    'every folder of src/ has a tier',
  );
  const used = new Set<string>();
  const wrong: string[] = [];
  for (const e of all) {
    const why = crossing(e.from, e.to);
    if (why === null) continue;
    const key = `${e.from} -> ${e.to}: ${e.file}`;
    if (key in EXCEPTIONS) {
      used.add(key);
      continue;
    }
    wrong.push(`${e.file} imports ${e.to}: ${why}`);
  }
  assert.deepEqual([...new Set(wrong)], []);
  assert.deepEqual(
    Object.keys(EXCEPTIONS).filter((k) => !used.has(k)),
    [],
    'exceptions that no longer happen: remove them',
  );
});
