/**
 * `run --product` without a lab scenario (real servers): the names are checked against the
 * catalog imported into the state file, so a typo is refused instead of patching nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PatchlineError } from '../src/domain/errors.ts';
import { defaultCabToolkit } from '../src/catalog/cab-toolkit.ts';
import { importCatalogFile } from '../src/catalog/import-file.ts';
import { sqliteCatalogWriter } from '../src/store/catalog-repo.ts';
import { openStore } from '../src/store/db.ts';
import { makeLabCatalog } from './catalog-helpers.ts';
import { checkCatalogProducts } from '../src/cli/catalog-products.ts';

test('run --product is checked against the catalog imported into the state file, when there is one', async (t) => {
  const lab = await makeLabCatalog();
  t.after(() => rm(lab.dir, { recursive: true, force: true }));
  const state = join(lab.dir, 'state.sqlite');
  assert.deepEqual(
    await checkCatalogProducts(state, ['Windows Server 2002']),
    ['Windows Server 2002'],
    'no state file: nothing to check against',
  );

  const store = await openStore(state);
  await importCatalogFile(lab.cab.out, sqliteCatalogWriter(store.sqlite), defaultCabToolkit(), {
    trustPems: [await readFile(lab.cab.rootPemFile, 'utf8')],
  });
  await store.close();

  assert.deepEqual(await checkCatalogProducts(state, ['windows server 2022']), ['Windows Server 2022']);
  await assert.rejects(
    checkCatalogProducts(state, ['Windows Server 2002']),
    (e: unknown) =>
      e instanceof PatchlineError &&
      e.exitCode === 64 &&
      /"Windows Server 2002" is not a product of the catalog imported into .*Did you mean: .*Windows Server 2022/.test(
        e.message,
      ),
  );
});
