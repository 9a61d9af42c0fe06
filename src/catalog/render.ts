/**
 * Human-readable text for `patchline catalog …`: aligned tables and detail blocks. Pure
 * functions from query results to text, so the CLI only prints (and --json bypasses this).
 */
import type { CatalogHit, CatalogStatus, CatalogVersionInfo } from './query.ts';
import type { CatalogUpdateDetails, RelatedUpdate } from './update-details.ts';
import type { ImportProgress, ImportResult } from './importer.ts';

/**
 * Left-aligned columns separated by two spaces; the header row comes first.
 *
 * @example formatTable(['KB', 'TITLE'], [['5044444', 'Cumulative Update']])
 */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

const day = (iso: string | null): string => (iso ? iso.slice(0, 10) : '-');
const kbText = (kb: string | null): string => (kb ? `KB${kb}` : '-');

export function renderStatus(status: CatalogStatus): string {
  if (!status.current) {
    const lines = ['No catalog imported yet. Run `patchline catalog sync`, or `patchline catalog import FILE.cab`.'];
    if (status.importing)
      lines.push(
        `An import of ${status.importing.source} started ${status.importing.startedAt} is running or was interrupted.`,
      );
    return lines.join('\n');
  }
  const row = (label: string, v: CatalogVersionInfo | null): string[] =>
    v
      ? [
          label,
          String(v.id),
          day(v.creationDate),
          v.packageId ?? '-',
          String(v.updates),
          String(v.files),
          v.importedAt ?? v.startedAt,
          v.source,
        ]
      : [label, '-', '-', '-', '-', '-', '-', '-'];
  const out = [
    formatTable(
      ['', 'VERSION', 'CREATED', 'PACKAGE ID', 'UPDATES', 'FILES', 'IMPORTED', 'SOURCE'],
      [row('current', status.current), row('previous', status.previous)],
    ),
  ];
  if (status.current.signerSubject) out.push(`signed by: ${status.current.signerSubject}`);
  if (status.importing)
    out.push(`import in progress (or interrupted): ${status.importing.source}, started ${status.importing.startedAt}`);
  return out.join('\n');
}

export function renderHits(hits: readonly CatalogHit[], limit: number): string {
  if (hits.length === 0) return 'No updates match.';
  const table = formatTable(
    ['KB', 'RELEASED', 'SEVERITY', 'CLASSIFICATION', 'PRODUCTS', 'UPDATE ID', 'TITLE'],
    hits.map((h) => [
      kbText(h.kb),
      day(h.releaseDate),
      h.severity ?? '-',
      h.classification ?? '-',
      h.products.join(', ') || '-',
      h.updateId,
      h.title ?? '(no title)',
    ]),
  );
  return hits.length >= limit ? `${table}\n(first ${limit} shown; narrow the search or raise --limit)` : table;
}

const related = (u: RelatedUpdate): string =>
  `${u.kb ? `KB${u.kb} ` : ''}${u.title ?? '(not in catalog)'}  ${u.updateId || `revision ${u.revisionId}`}`;

export function renderDetails(d: CatalogUpdateDetails): string {
  const lines: string[] = [];
  lines.push(d.title ?? '(no title)');
  const fields: [string, string][] = [
    ['Update ID', `${d.updateId} (revision ${d.revisionNumber}, RevisionId ${d.revisionId})`],
    ['KB', kbText(d.kb)],
    ['Classification', d.classification ?? '-'],
    ['Products', d.products.join(', ') || '-'],
    ['Severity', d.severity ?? '-'],
    ['Released', d.releaseDate ?? '-'],
    ['Type', `${d.updateType ?? '-'}${d.isBundle ? ', bundle' : ''}${d.browseOnly ? ', optional' : ''}`],
    ['Reboot', d.rebootBehavior ?? '-'],
    ['Impact', d.impact ?? '-'],
    ['Max download', d.maxDownloadSize === null ? '-' : `${d.maxDownloadSize} bytes`],
    ['Support URL', d.supportUrl ?? '-'],
    ['CVEs', d.cveIds.join(', ') || '-'],
  ];
  const width = Math.max(...fields.map(([k]) => k.length));
  for (const [k, v] of fields) lines.push(`  ${k.padEnd(width)}  ${v}`);
  const section = (title: string, items: readonly string[]) => {
    if (items.length === 0) return;
    lines.push(`${title}:`);
    for (const i of items) lines.push(`  ${i}`);
  };
  section('More information', d.moreInfoUrls);
  section(
    'Prerequisites',
    d.prerequisites.flatMap((g) =>
      g.kind === 'all' ? g.updates.map(related) : [`one of: ${g.updates.map(related).join(' | ')}`],
    ),
  );
  section('Bundle members', d.bundleMembers.map(related));
  section('Bundled by', d.bundledBy.map(related));
  section(
    'Supersedes',
    d.supersedes.map((l) => `${'  '.repeat(l.depth - 1)}${related(l)}`),
  );
  section(
    'Superseded by',
    d.supersededBy.map((l) => `${'  '.repeat(l.depth - 1)}${related(l)}`),
  );
  section(
    'Files',
    d.files.map(
      (f) =>
        `${f.fileName ?? '(unnamed)'}  ${f.size ?? '?'} bytes  sha1 ${f.sha1}${f.sha256 ? `  sha256 ${f.sha256}` : ''}  ${f.url ?? '(no URL)'}`,
    ),
  );
  return lines.join('\n');
}

/** One progress line for a terminal (rewritten in place with \r). */
export function renderProgress(p: ImportProgress): string {
  if (p.phase === 'package') return `reading package.xml: ${p.updates} updates`;
  if (p.phase === 'shards') return `reading shards: ${p.shardsDone}/${p.shardsTotal} (${p.blobs} blobs)`;
  return `${p.phase}…`;
}

export function renderImportResult(r: ImportResult): string {
  const done = `Imported catalog version ${r.versionId}: ${r.updates} updates, ${r.files} files, ${r.shards} shards in ${r.seconds.toFixed(1)} s. It is now current.`;
  if (!r.blobsSkipped) return done;
  // Skipped blobs cost only their own fields (a title, a KB); say which, so a bad catalog is noticed.
  const examples = r.skippedExamples.map((e) => `\n  skipped ${e}`).join('');
  return `${done}\n${r.blobsSkipped} malformed shard blob(s) were skipped; their updates lack those details:${examples}`;
}
