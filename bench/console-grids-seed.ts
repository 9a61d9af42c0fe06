/**
 * A fleet written straight into a store for the console-grid benchmark and tests: a current
 * catalog of N updates (classification, product, severity, release dates spread over months so
 * install delays and promotion soaks are live), H enrolled hosts in two rings, and per host
 * 30–150 host × update rows (needed, installed, failed with an HRESULT, not applicable), as the
 * agents' reports leave them. Deterministic (a seeded PRNG), dialect-neutral (Kysely only).
 */
import type { Kysely } from 'kysely';
import type { Database } from '../src/store/schema.ts';

export interface SeedOptions {
  readonly hosts: number;
  readonly updates: number;
  readonly minPerHost: number;
  readonly maxPerHost: number;
  /** "now" of the fleet: reports and installs happen in the weeks before it. */
  readonly now: Date;
  readonly seed?: number;
}

const CLASSES = ['Security Updates', 'Critical Updates', 'Updates', 'Update Rollups', 'Definition Updates'];
const PRODUCTS = ['Windows Server 2022', 'Windows Server 2019', 'Windows 11', '.NET Framework', 'SQL Server 2019'];
const SEVERITIES = ['Critical', 'Important', 'Moderate', 'Low', null];
const HRESULTS = ['0x80070643', '0x800f0922', '0x80240022', '0x8024200d'];
const DAY_MS = 86_400_000;

/** mulberry32: small, fast, reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const seedUpdateId = (i: number): string =>
  `${(0x10000000 + i).toString(16)}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
export const seedHostName = (i: number): string => `host${String(i).padStart(5, '0')}`;

/** Writes the catalog, the hosts and their rows; returns the number of host × update rows. */
export async function seedFleet(db: Kysely<Database>, o: SeedOptions): Promise<number> {
  const rand = prng(o.seed ?? 42);
  const nowMs = o.now.getTime();
  const iso = (ms: number) => new Date(ms).toISOString();
  const version = await db
    .insertInto('catalog_versions')
    .values({
      state: 'current',
      package_id: 'bench',
      creation_date: iso(nowMs - DAY_MS),
      source: 'bench',
      signer_subject: null,
      importer: 'bench',
      started_at: iso(nowMs - DAY_MS),
      imported_at: iso(nowMs - DAY_MS),
      updates_count: o.updates,
      files_count: 0,
      shards_count: 0,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const vid = version.id;
  await db
    .insertInto('catalog_categories')
    .values([
      ...CLASSES.map((name, i) => ({ version_id: vid, category_id: `class-${i}`, type: 'UpdateClassification', name })),
      ...PRODUCTS.map((name, i) => ({ version_id: vid, category_id: `product-${i}`, type: 'Product', name })),
    ])
    .execute();
  const updates = Array.from({ length: o.updates }, (_, i) => ({
    i,
    // The newest updates were released in the last days (deferred by installDelayDays).
    released: iso(nowMs - Math.floor((i / o.updates) * 180 * DAY_MS) - DAY_MS / 2),
  }));
  for (let i = 0; i < updates.length; i += 200) {
    const chunk = updates.slice(i, i + 200);
    await db
      .insertInto('catalog_updates')
      .values(
        chunk.map((u) => ({
          version_id: vid,
          revision_id: 100_000 + u.i,
          update_id: seedUpdateId(u.i),
          revision_number: 200,
          creation_date: u.released,
          default_language: 'en',
          is_bundle: 1,
          is_leaf: 0,
          deployment_action: 'Installation',
          update_type: 'Software',
          title: `Update ${u.i} for ${PRODUCTS[u.i % PRODUCTS.length]} (KB${5_000_000 + u.i})`,
          description: null,
          kb: String(5_000_000 + u.i),
          msrc_severity: SEVERITIES[u.i % SEVERITIES.length] ?? null,
          security_bulletin_id: null,
          reboot_behavior: 'canRequest',
          impact: 'normal',
          release_date: u.released,
          support_url: null,
          more_info_url: null,
          more_info_urls: null,
          cve_ids: null,
          max_download_size: 1000,
          browse_only: 0,
        })),
      )
      .execute();
    await db
      .insertInto('catalog_update_categories')
      .values(
        chunk.flatMap((u) => [
          {
            version_id: vid,
            revision_id: 100_000 + u.i,
            category_id: `class-${u.i % CLASSES.length}`,
            type: 'UpdateClassification',
          },
          {
            version_id: vid,
            revision_id: 100_000 + u.i,
            category_id: `product-${u.i % PRODUCTS.length}`,
            type: 'Product',
          },
        ]),
      )
      .execute();
  }

  let rows = 0;
  const hostChunk = 200;
  for (let h0 = 0; h0 < o.hosts; h0 += hostChunk) {
    await db.transaction().execute(async (trx) => {
      const hosts = [];
      const hostRows = [];
      for (let h = h0; h < Math.min(o.hosts, h0 + hostChunk); h++) {
        const name = seedHostName(h);
        const seen = nowMs - Math.floor(rand() * 20 * 60_000);
        hosts.push({
          key: name,
          id: `hid-${h}`,
          name,
          // One host in ten is in the pilot ring; the rest in broad.
          ring: h % 10 === 0 ? 'pilot' : 'broad',
          credential_hash: null,
          agent_version: 'bench',
          boot_id: null,
          enrolled_at: iso(nowMs - 90 * DAY_MS),
          enroll_token_id: null,
          revoked_at: null,
          last_seen_at: iso(seen),
          online_until: iso(seen + 10 * 60_000),
          last_scan_at: iso(nowMs - Math.floor(rand() * 3 * DAY_MS)),
          reboot_pending: rand() < 0.05 ? 1 : 0,
          facts_json: '{}',
          report_seq: 1,
        });
        const count = o.minPerHost + Math.floor(rand() * (o.maxPerHost - o.minPerHost + 1));
        const picked = new Set<number>();
        while (picked.size < Math.min(count, o.updates)) picked.add(Math.floor(rand() * o.updates));
        for (const u of picked) {
          const r = rand();
          const applicability =
            r < 0.45 ? 'needed' : r < 0.9 ? 'installed' : r < 0.97 ? 'not-applicable' : 'superseded';
          const failed = applicability === 'needed' && rand() < 0.08;
          const at = iso(nowMs - Math.floor(rand() * 30 * DAY_MS));
          hostRows.push({
            host_key: name,
            update_id: seedUpdateId(u),
            revision: 200,
            kb: String(5_000_000 + u),
            title: `Update ${u}`,
            applicability,
            delivery: failed ? 'failed' : applicability === 'installed' ? 'installed' : 'none',
            decision: null,
            decided_by: null,
            deferred_until: null,
            hresult: failed ? HRESULTS[u % HRESULTS.length]! : null,
            attempts: failed ? 1 + (u % 3) : 0,
            last_attempt_at: failed ? at : null,
            installed_at: applicability === 'installed' ? at : null,
            reported_at: at,
            report_json: '{}',
          });
        }
      }
      await trx.insertInto('hosts').values(hosts).execute();
      for (let i = 0; i < hostRows.length; i += 1000)
        await trx
          .insertInto('host_updates')
          .values(hostRows.slice(i, i + 1000))
          .execute();
      rows += hostRows.length;
    });
  }
  return rows;
}
