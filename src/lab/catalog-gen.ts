/**
 * `patchline lab catalog`: writes a structurally faithful, signed wsusscn2.cab for a scenario —
 * outer cab with index.xml, package.cab (package.xml) and package2…N.cab shards (c/x/l blobs),
 * signed with a lab root whose certificate lands beside the cab as FILE.root.pem.
 *
 * Streamed: package.xml is written piece by piece to a temp file, and each shard's members are
 * built in memory one shard at a time (a few MB), so 350 000 updates fit in bounded memory.
 * CAB writing and signing are other modules, reached through CatalogPacker.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderIndexXml } from '../catalog/index-xml.ts';
import { nameUuid } from './name-uuid.ts';
import { createPayloadStore } from './payloads.ts';
import type { Scenario } from './scenario.ts';
import { DEFAULT_UPSTREAM_URL, planCatalog, type CatalogPlan } from './catalog-gen-model.ts';
import {
  coreBlob,
  extendedBlob,
  fileLocationXml,
  localizedBlob,
  PACKAGE_XML_MIDDLE,
  PACKAGE_XML_TAIL,
  packageXmlHead,
  updateXml,
} from './catalog-gen-xml.ts';

/** Revisions per shard when the caller does not fix the shard count (Microsoft: ~1 800–5 000). */
export const REVISIONS_PER_SHARD = 5000;
/** package.xml is written in pieces of about this size. */
const WRITE_PIECE_BYTES = 1024 * 1024;

export interface CabMemberInput {
  readonly name: string;
  /** A buffer, or a file to stream from. */
  readonly data: Buffer | { readonly path: string };
}

/** CAB writing and signing (src/catalog/cab/, src/catalog/authenticode/), behind one narrow seam. */
export interface CatalogPacker {
  /** `compress: false` stores the members as they are (the outer cab: its members are cabs already). */
  writeCab(out: string, members: readonly CabMemberInput[], options: { readonly compress: boolean }): Promise<void>;
  /** Creates (or reuses) a lab root in `dir` and signs `input` into `output`; returns the root's PEM. */
  sign(input: string, output: string, dir: string): Promise<{ rootPem: string }>;
}

export interface GenerateOptions {
  readonly out: string;
  readonly extraUpdates?: number;
  /** Number of shard cabs; default: one per REVISIONS_PER_SHARD revisions. */
  readonly shards?: number;
  /** Base URL of payload files (the lab upstream); default Microsoft's host. */
  readonly upstreamUrl?: string;
  readonly tempDir?: string;
  /** Where the lab root and signing key live (created when missing); default: a temp dir. */
  readonly rootDir?: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: { phase: 'package-xml' | 'shards' | 'pack' | 'sign'; done: number; total: number }) => void;
}

export interface GenerateResult {
  readonly out: string;
  readonly rootPemFile: string;
  readonly updates: number;
  readonly packageXmlBytes: number;
  readonly shards: number;
}

/** Splits `total` revisions into `count` contiguous shards: [startIndex, endIndex) pairs. */
export function shardRanges(total: number, count: number): [number, number][] {
  const n = Math.max(1, Math.min(count, total));
  const per = Math.ceil(total / n);
  const out: [number, number][] = [];
  for (let start = 0; start < total; start += per) out.push([start, Math.min(total, start + per)]);
  return out;
}

/**
 * Generates and signs a lab catalog.
 *
 * @example await generateCatalog(scenario, { out: 'wsusscn2.cab', extraUpdates: 1000 }, packer)
 */
export async function generateCatalog(
  scenario: Scenario,
  options: GenerateOptions,
  packer: CatalogPacker,
): Promise<GenerateResult> {
  const upstreamUrl = (options.upstreamUrl ?? DEFAULT_UPSTREAM_URL).replace(/\/+$/, '');
  const payloads = createPayloadStore(scenario);
  const plan = planCatalog(
    scenario,
    options.extraUpdates ?? 0,
    (entry) => {
      const info = payloads.info(entry);
      return { sha1: info.sha1, sha256: info.sha256, size: info.size, url: `${upstreamUrl}${info.path}` };
    },
    upstreamUrl,
  );
  const work = await mkdtemp(join(options.tempDir ?? tmpdir(), 'patchline-catalog-gen-'));
  try {
    const packageXml = join(work, 'package.xml');
    const packageXmlBytes = await writePackageXml(plan, packageXml, scenario, options);
    const ranges = shardRanges(plan.total, options.shards ?? Math.ceil(plan.total / REVISIONS_PER_SHARD));
    const shardFiles: { name: string; rangeStart: number; path: string }[] = [];
    for (const [k, [start, end]] of ranges.entries()) {
      options.signal?.throwIfAborted();
      const name = `package${k + 2}.cab`;
      const members: CabMemberInput[] = [];
      for (let i = start; i < end; i++) {
        const u = plan.at(i);
        members.push({ name: `c\\${u.revisionId}`, data: Buffer.from(coreBlob(u)) });
        members.push({ name: `x\\${u.revisionId}`, data: Buffer.from(extendedBlob(u)) });
        members.push({ name: `l\\en\\${u.revisionId}`, data: Buffer.from(localizedBlob(u)) });
      }
      const path = join(work, name);
      await packer.writeCab(path, members, { compress: true });
      // Microsoft's first shard starts at 0 so every RevisionId has a shard.
      shardFiles.push({ name, rangeStart: k === 0 ? 0 : plan.firstRevisionId + start, path });
      options.onProgress?.({ phase: 'shards', done: k + 1, total: ranges.length });
    }
    options.onProgress?.({ phase: 'pack', done: 0, total: 1 });
    const packageCab = join(work, 'package.cab');
    await packer.writeCab(packageCab, [{ name: 'package.xml', data: { path: packageXml } }], { compress: true });
    await rm(packageXml);
    const indexXml = Buffer.from(renderIndexXml(shardFiles));
    const unsigned = join(work, 'wsusscn2.unsigned.cab');
    await packer.writeCab(
      unsigned,
      [
        { name: 'index.xml', data: indexXml },
        { name: 'package.cab', data: { path: packageCab } },
        ...shardFiles.map((s) => ({ name: s.name, data: { path: s.path } })),
        // Stored, not compressed again: the inner cabs are compressed already, and inflating them
        // twice would only cost the importer time (Microsoft's outer cab is LZX; ours is a lab's).
      ],
      { compress: false },
    );
    options.onProgress?.({ phase: 'sign', done: 0, total: 1 });
    const { rootPem } = await packer.sign(unsigned, options.out, options.rootDir ?? join(work, 'root'));
    const rootPemFile = `${options.out}.root.pem`;
    await writeFile(rootPemFile, rootPem);
    return { out: options.out, rootPemFile, updates: plan.total, packageXmlBytes, shards: shardFiles.length };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function writePackageXml(
  plan: CatalogPlan,
  file: string,
  scenario: Scenario,
  options: GenerateOptions,
): Promise<number> {
  const out = createWriteStream(file);
  let bytes = 0;
  let piece = '';
  const emit = async (text: string): Promise<void> => {
    piece += text;
    if (piece.length < WRITE_PIECE_BYTES) return;
    bytes += Buffer.byteLength(piece);
    const ok = out.write(piece);
    piece = '';
    if (!ok) await once(out, 'drain', { signal: options.signal });
  };
  try {
    await emit(
      packageXmlHead({
        packageId: nameUuid(`package:${scenario.source}:${plan.total}`),
        sourceId: nameUuid('source:patchline-lab'),
        creationDate: plan.creationDate.replace(/\.\d{3}Z$/, 'Z'),
      }),
    );
    for (let i = 0; i < plan.total; i++) {
      await emit(updateXml(plan.at(i)));
      if (i % 50_000 === 0) options.onProgress?.({ phase: 'package-xml', done: i, total: plan.total });
    }
    await emit(PACKAGE_XML_MIDDLE);
    const seen = new Set<string>();
    for (let i = 0; i < plan.total; i++) {
      for (const f of plan.at(i).files) {
        if (seen.has(f.id)) continue;
        seen.add(f.id);
        await emit(fileLocationXml(f));
      }
    }
    await emit(PACKAGE_XML_TAIL);
    bytes += Buffer.byteLength(piece);
    out.end(piece);
    await once(out, 'finish');
    return bytes;
  } catch (error) {
    out.destroy();
    throw error;
  }
}
