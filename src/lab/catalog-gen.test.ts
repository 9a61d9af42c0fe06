/**
 * The lab catalog generator's pure parts: the plan's relationships agree in both reference
 * spaces (package.xml by RevisionId, c/ blobs by UpdateId), and what it renders parses back
 * through the importer's own parsers to the same facts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { readPackageXml } from '../catalog/package-xml.ts';
import { parseCoreBlob, parseExtendedBlob, parseLocalizedBlob } from '../catalog/shards.ts';
import { planCatalog, type CatalogPlan } from './catalog-gen-model.ts';
import {
  coreBlob,
  extendedBlob,
  localizedBlob,
  PACKAGE_XML_MIDDLE,
  PACKAGE_XML_TAIL,
  packageXmlHead,
  updateXml,
} from './catalog-gen-xml.ts';
import { shardRanges } from './catalog-gen.ts';
import { parseScenario } from './scenario.ts';

const scenario = parseScenario(
  `
catalog:
  - { key: old, kb: 5000001, title: "Old CU (KB5000001)", classification: Security Updates, severity: Important, products: [Windows Server 2022], released: 2026-09-01 }
  - { key: new, kb: 5000002, title: "New CU & more (KB5000002)", classification: Security Updates, severity: Critical, products: [Windows Server 2022], released: 2026-10-01, supersedes: [old], requires: [old], reboot: always }
hosts:
  - { name: h1, product: Windows Server 2022 }
`,
  'test',
);

const payload = () => ({
  sha1: 'a9993e364706816aba3e25717850c26c9cd0d89d',
  sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  size: 3,
  url: 'http://upstream/d/x_a9993e364706816aba3e25717850c26c9cd0d89d.msu',
});

function byUpdateId(plan: CatalogPlan) {
  const all = Array.from({ length: plan.total }, (_, i) => plan.at(i));
  return {
    all,
    id: (updateId: string) => all.find((u) => u.updateId === updateId)!,
    rev: (r: number) => all.find((u) => u.revisionId === r)!,
  };
}

test('scenario updates: supersedence and prerequisites agree in both reference spaces', () => {
  const plan = planCatalog(scenario, 0, payload);
  const { id, all } = byUpdateId(plan);
  const oldU = id(scenario.byKey.get('old')!.updateId);
  const newU = id(scenario.byKey.get('new')!.updateId);
  assert.deepEqual(oldU.supersededBy, [newU.revisionId]);
  assert.deepEqual(newU.supersedes, [oldU.updateId]);
  assert.deepEqual(newU.prerequisites, [oldU.updateId]);
  assert.equal(newU.rebootBehavior, 'AlwaysRequiresReboot');
  assert.equal(newU.files[0]?.id, Buffer.from(payload().sha1, 'hex').toString('base64'));
  // Every category an update names exists as a Category update with that name.
  const categories = all.filter((u) => u.updateType === 'Category');
  for (const c of newU.categories)
    assert.ok(
      categories.some((k) => k.updateId === c.id),
      c.id,
    );
  assert.deepEqual(new Set(all.map((u) => u.revisionId)).size, plan.total, 'RevisionIds are unique');
});

test('fillers: bundles with one leaf each, and a supersedence chain between bundles', () => {
  const plan = planCatalog(scenario, 200, payload);
  const { all, id, rev } = byUpdateId(plan);
  const fillers = all.filter((u) => u.kb?.startsWith('9'));
  assert.equal(fillers.length, 200);
  const bundle = fillers[0]!;
  const leaf = fillers[1]!;
  assert.equal(bundle.isBundle, true);
  assert.deepEqual(leaf.bundledBy, [bundle.revisionId]);
  assert.deepEqual(bundle.bundles, [leaf.updateId]);
  assert.equal(leaf.files.length, 1);
  const newer = rev(bundle.supersededBy[0]!);
  assert.deepEqual(newer.supersedes, [bundle.updateId]);
  assert.equal(id(newer.updateId).kb, newer.kb);
  // Fillers never use a scenario's products, so searches by product stay exact.
  const scenarioProducts = new Set(
    all
      .filter((u) => u.kb === '5000001')
      .flatMap((u) => u.categories.filter((c) => c.type === 'Product').map((c) => c.id)),
  );
  assert.equal(scenarioProducts.size, 1);
  assert.ok(!fillers.some((f) => f.categories.some((c) => scenarioProducts.has(c.id))));
});

test('rendered XML parses back to the same facts', async () => {
  const plan = planCatalog(scenario, 4, payload);
  const xml =
    packageXmlHead({ packageId: 'p', sourceId: 's', creationDate: plan.creationDate }) +
    Array.from({ length: plan.total }, (_, i) => updateXml(plan.at(i))).join('') +
    PACKAGE_XML_MIDDLE +
    PACKAGE_XML_TAIL;
  const parsed = [];
  for await (const b of readPackageXml(Readable.from([xml]))) parsed.push(...b.updates);
  assert.equal(parsed.length, plan.total);
  const newU = plan.at(parsed.findIndex((u) => u.updateId === scenario.byKey.get('new')!.updateId));
  const back = parsed.find((u) => u.updateId === newU.updateId)!;
  assert.deepEqual(back.categories, newU.categories);
  assert.deepEqual(back.prerequisites, [
    { updateId: newU.prerequisites[0], orGroup: null },
    ...newU.orPrerequisites[0]!.map((p) => ({ updateId: p, orGroup: 1 })),
  ]);
  assert.doesNotMatch(
    extendedBlob(newU),
    /CreationDate=/,
    'real x/ blobs carry no CreationDate; the lab writes none either',
  );
  const x = parseExtendedBlob(extendedBlob(newU));
  assert.deepEqual(
    [x.kb, x.msrcSeverity, x.rebootBehavior, x.files[0]?.digest],
    ['5000002', 'Critical', 'AlwaysRequiresReboot', newU.files[0]?.id],
  );
  assert.equal(
    parseLocalizedBlob(localizedBlob(newU)).title,
    'New CU & more (KB5000002)',
    'XML special characters survive',
  );
  assert.deepEqual(parseCoreBlob(coreBlob(newU)).supersededUpdateIds, newU.supersedes);
});

test('shard ranges cover every revision once, in order', () => {
  assert.deepEqual(shardRanges(10, 3), [
    [0, 4],
    [4, 8],
    [8, 10],
  ]);
  assert.deepEqual(shardRanges(2, 70), [
    [0, 1],
    [1, 2],
  ]);
  assert.deepEqual(shardRanges(350_033, 70).at(-1)?.[1], 350_033);
});
