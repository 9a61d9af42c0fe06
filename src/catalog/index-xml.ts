/**
 * index.xml of wsusscn2.cab: the list of inner cabinets and which RevisionIds each shard holds.
 *
 *   <INDEX VERSION="1"><CABLIST XOR="0"><CAB NAME="package.cab"/>
 *     <CAB NAME="package2.cab" RANGESTART="0" FILESDIR="1"/><CAB NAME="package3.cab" RANGESTART="234568"/>…
 *
 * The shard for RevisionId R is the CAB with the largest RANGESTART ≤ R (SCHEMA-NOTES.md §2).
 */
import { childrenNamed, findFirst, parseFragment } from './xml-tree.ts';

export interface IndexCab {
  readonly name: string;
  /** null for package.cab (the update graph), a number for the shards. */
  readonly rangeStart: number | null;
  readonly filesDir: boolean;
}

export interface CatalogIndex {
  readonly version: string | null;
  /** Every CAB in document order. */
  readonly cabs: readonly IndexCab[];
  /** The shards (CABs with RANGESTART), sorted by rangeStart. */
  readonly shards: readonly (IndexCab & { readonly rangeStart: number })[];
}

/** Parses index.xml text. Throws when it has no CABLIST. */
export function parseIndexXml(text: string): CatalogIndex {
  const root = parseFragment(text);
  const index = findFirst(root, 'INDEX');
  const list = index ? findFirst(index, 'CABLIST') : undefined;
  if (!list) throw new Error('index.xml has no INDEX/CABLIST element');
  const cabs = childrenNamed(list, 'CAB').map((cab): IndexCab => {
    const start = cab.attrs.RANGESTART;
    return {
      name: cab.attrs.NAME ?? '',
      rangeStart: start === undefined ? null : Number(start),
      filesDir: cab.attrs.FILESDIR === '1',
    };
  });
  const shards = cabs
    .filter((c): c is IndexCab & { rangeStart: number } => c.rangeStart !== null && Number.isFinite(c.rangeStart))
    .sort((a, b) => a.rangeStart - b.rangeStart);
  return { version: index?.attrs.VERSION ?? null, cabs, shards };
}

/** The shard holding RevisionId `revisionId`, or null when it is below every RANGESTART. */
export function shardFor(index: CatalogIndex, revisionId: number): string | null {
  let found: string | null = null;
  for (const shard of index.shards) {
    if (shard.rangeStart <= revisionId) found = shard.name;
    else break;
  }
  return found;
}

/**
 * Builds index.xml text for a list of shards (the lab generator uses it).
 *
 * @example renderIndexXml([{ name: 'package2.cab', rangeStart: 0 }])
 */
export function renderIndexXml(shards: readonly { readonly name: string; readonly rangeStart: number }[]): string {
  const lines = shards.map(
    (s, i) => `<CAB NAME="${s.name}" RANGESTART="${s.rangeStart}"${i === 0 ? ' FILESDIR="1"' : ''}/>`,
  );
  return `<INDEX VERSION="1"><CABLIST XOR="0"><CAB NAME="package.cab"/>${lines.join('')}</CABLIST></INDEX>`;
}
