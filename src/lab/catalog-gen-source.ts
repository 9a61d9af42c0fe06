/**
 * A CatalogSource that renders a planned lab catalog on the fly, without writing any cab: the
 * importer reads exactly the bytes the generator would pack. Lets tests and the benchmark
 * measure parsing and the store separately from CAB compression.
 */
import { renderIndexXml } from '../catalog/index-xml.ts';
import type { CatalogSource } from '../catalog/source.ts';
import type { CatalogPlan } from './catalog-gen-model.ts';
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
import { shardRanges } from './catalog-gen.ts';

const PIECE_CHARS = 256 * 1024;

export function planSource(plan: CatalogPlan, options: { shards: number; packageId: string }): CatalogSource {
  const ranges = shardRanges(plan.total, options.shards);
  const shardName = (k: number) => `package${k + 2}.cab`;
  return {
    description: `generated:${options.packageId}`,
    async indexXml() {
      return renderIndexXml(
        ranges.map(([start], k) => ({ name: shardName(k), rangeStart: k === 0 ? 0 : plan.firstRevisionId + start })),
      );
    },
    async *packageXml(signal) {
      let piece = packageXmlHead({
        packageId: options.packageId,
        sourceId: options.packageId,
        creationDate: plan.creationDate,
      });
      const files = new Set<string>();
      for (let i = 0; i < plan.total; i++) {
        piece += updateXml(plan.at(i));
        if (piece.length >= PIECE_CHARS) {
          signal?.throwIfAborted();
          yield Buffer.from(piece);
          piece = '';
        }
      }
      piece += PACKAGE_XML_MIDDLE;
      for (let i = 0; i < plan.total; i++) {
        for (const f of plan.at(i).files) {
          if (files.has(f.id)) continue;
          files.add(f.id);
          piece += fileLocationXml(f);
        }
      }
      yield Buffer.from(piece + PACKAGE_XML_TAIL);
    },
    async *shardBlobs(name) {
      const k = ranges.findIndex((_, i) => shardName(i) === name);
      const [start, end] = ranges[k] ?? [0, 0];
      for (let i = start; i < end; i++) {
        const u = plan.at(i);
        yield { name: `c\\${u.revisionId}`, bytes: Buffer.from(coreBlob(u)) };
        yield { name: `x\\${u.revisionId}`, bytes: Buffer.from(extendedBlob(u)) };
        yield { name: `l\\en\\${u.revisionId}`, bytes: Buffer.from(localizedBlob(u)) };
      }
    },
    async close() {},
  };
}
