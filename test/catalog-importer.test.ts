/**
 * The importer on a generated catalog streamed straight from its plan (no cab): every row the
 * plan defines arrives, across package.xml batch and shard transaction boundaries, and search
 * hides catalog plumbing (category entries, bundle-only leaves) unless asked for --all. Runs on
 * both stores: SQLite's prepared-statement writer and PostgreSQL's array-bound one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { importCatalog } from '../src/catalog/importer.ts';
import { searchCatalog } from '../src/catalog/query.ts';
import { showUpdate } from '../src/catalog/update-details.ts';
import { planCatalog } from '../src/lab/catalog-gen-model.ts';
import { planSource } from '../src/lab/catalog-gen-source.ts';
import { parseScenario } from '../src/lab/scenario.ts';
import { catalogWriterFor } from '../src/store/catalog-repo.ts';
import { openDatabase } from '../src/store/open.ts';
import { SCENARIO_YAML } from './catalog-helpers.ts';
import { freshLocation, STORE_KINDS, storeSkip } from './support/stores.ts';

const FILLERS = 3001;

for (const kind of STORE_KINDS)
  test(
    `a generated catalog imports completely across batch boundaries [${kind}]`,
    { skip: storeSkip(kind) },
    async () => {
      const scenario = parseScenario(SCENARIO_YAML, 'test');
      const plan = planCatalog(scenario, FILLERS, () => ({
        sha1: 'a9993e364706816aba3e25717850c26c9cd0d89d',
        sha256: '00'.repeat(32),
        size: 3,
        url: 'http://u/x.msu',
      }));
      const store = await openDatabase(await freshLocation(kind));
      try {
        const result = await importCatalog(planSource(plan, { shards: 7, packageId: 'p' }), catalogWriterFor(store), {
          batchSize: 500,
        });
        assert.equal(result.updates, plan.total);
        assert.equal(result.blobs, plan.total * 3);
        const all = Array.from({ length: plan.total }, (_, i) => plan.at(i));
        const count = async (query: string) =>
          (await sql<{ n: number }>`${sql.raw(query)}`.execute(store.db)).rows[0]!.n;
        assert.equal(
          await count('SELECT count(*) AS n FROM catalog_supersedence'),
          all.reduce((n, u) => n + u.supersededBy.length, 0),
        );
        assert.equal(
          await count('SELECT count(*) AS n FROM catalog_bundles'),
          all.reduce((n, u) => n + u.bundledBy.length, 0),
        );
        assert.equal(
          await count('SELECT count(*) AS n FROM catalog_update_categories'),
          all.reduce((n, u) => n + u.categories.length, 0),
        );
        assert.equal(
          await count('SELECT count(*) AS n FROM catalog_updates WHERE title IS NULL'),
          0,
          'every revision got its l/ blob',
        );
        assert.equal(
          await count(`SELECT count(*) AS n FROM catalog_categories WHERE name IS NULL`),
          0,
          'every category id resolved to a name',
        );

        // The last filler is a bundle without a leaf (odd count): still searchable by its KB.
        const last = plan.at(plan.total - 1);
        assert.deepEqual(
          (await searchCatalog(store.db, { kb: last.kb! })).map((h) => h.updateId),
          [last.updateId],
        );
        // A leaf shares its bundle's KB but only shows with --all; category entries likewise.
        const bundle = all.find((u) => u.bundles.length > 0)!;
        assert.deepEqual(
          (await searchCatalog(store.db, { kb: bundle.kb! })).map((h) => h.updateId),
          [bundle.updateId],
        );
        assert.equal((await searchCatalog(store.db, { kb: bundle.kb!, all: true })).length, 2);
        assert.deepEqual(
          await searchCatalog(store.db, { text: 'Windows Server 2022', limit: 500 }).then((h) =>
            h.filter((x) => x.updateType === 'Category'),
          ),
          [],
        );
        const [shown] = await showUpdate(store.db, bundle.updateId);
        assert.deepEqual(
          shown?.bundleMembers.map((m) => m.updateId),
          bundle.bundles,
        );
      } finally {
        await store.close();
      }
    },
  );
