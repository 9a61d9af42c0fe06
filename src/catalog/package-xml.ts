/**
 * Streams package.xml (the update graph inside package.cab) into batches of records.
 *
 * The real file is one line of ~115 MB, so it is never held whole: chunks are fed to a saxes
 * parser as they are read, and the caller pulls batches (`for await`), which is also the
 * back-pressure — no more input is read until the caller asked for the next batch.
 *
 * Namespace-aware without saxes' namespace mode (which costs ~10% of the parse for a file with
 * one namespace): the root's `xmlns` (or `xmlns:p` for a prefixed root) must be OFFLINE_SYNC_NS
 * or absent — the vuls fixture has none — and that prefix is then stripped from every element.
 * Anything else is rejected as not a catalog.
 * Reference spaces (SCHEMA-NOTES.md §3): Prerequisites and Categories name UpdateId GUIDs,
 * SupersededBy and BundledBy name RevisionId integers.
 */
import { StringDecoder } from 'node:string_decoder';
import { SaxesParser, type SaxesTagPlain } from 'saxes';

export const OFFLINE_SYNC_NS = 'http://schemas.microsoft.com/msus/2004/02/OfflineSync';

/** Updates per batch: big enough to amortise a transaction, small enough to bound memory. */
export const DEFAULT_BATCH_SIZE = 2000;

export interface PackageHeader {
  readonly packageId: string | null;
  readonly creationDate: string | null;
  readonly packageVersion: string | null;
  readonly protocolVersion: string | null;
  readonly minimumClientVersion: string | null;
  readonly sourceId: string | null;
}

export interface PackagePrerequisite {
  readonly updateId: string;
  /** null: required on its own; n: member of the n-th "Or" group of this update (1-based). */
  readonly orGroup: number | null;
}

export interface PackageUpdate {
  readonly updateId: string;
  readonly revisionId: number;
  readonly revisionNumber: number;
  readonly creationDate: string | null;
  readonly defaultLanguage: string | null;
  readonly isBundle: boolean;
  readonly isLeaf: boolean;
  readonly isSoftware: boolean | null;
  readonly deploymentAction: string | null;
  readonly categories: { readonly id: string; readonly type: string }[];
  readonly prerequisites: PackagePrerequisite[];
  /** RevisionIds of the bundles containing this update. */
  readonly bundledBy: number[];
  /** RevisionIds of the revisions that supersede this one. */
  readonly supersededBy: number[];
  /** base64 SHA-1 ids, joining FileLocation/@Id. */
  readonly payloadFiles: string[];
  readonly languages: string[];
}

export interface FileLocation {
  readonly id: string;
  readonly url: string;
  readonly isIncluded: boolean;
}

export interface PackageBatch {
  /** Present in the first batch once the root element was read. */
  readonly header: PackageHeader | null;
  readonly updates: readonly PackageUpdate[];
  readonly fileLocations: readonly FileLocation[];
}

export class PackageXmlError extends Error {
  override readonly name = 'PackageXmlError';
}

type Attrs = Record<string, string>;
const attr = (attrs: Attrs, name: string): string | null => attrs[name] ?? null;
const bool = (value: string | null): boolean => value === 'true' || value === '1';

/** Pure: maps an <Update> element's attributes to the record's scalar fields. */
export function mapUpdateAttributes(
  a: (name: string) => string | null,
): Omit<PackageUpdate, 'categories' | 'prerequisites' | 'bundledBy' | 'supersededBy' | 'payloadFiles' | 'languages'> {
  const updateId = a('UpdateId');
  const revisionId = Number(a('RevisionId'));
  if (!updateId || !Number.isInteger(revisionId))
    throw new PackageXmlError(`an Update element lacks UpdateId or a numeric RevisionId (UpdateId=${updateId ?? '?'})`);
  const software = a('IsSoftware');
  return {
    updateId: updateId.toLowerCase(),
    revisionId,
    revisionNumber: Number(a('RevisionNumber') ?? 0) || 0,
    creationDate: a('CreationDate'),
    defaultLanguage: a('DefaultLanguage'),
    isBundle: bool(a('IsBundle')),
    isLeaf: bool(a('IsLeaf')),
    isSoftware: software === null ? null : bool(software),
    deploymentAction: a('DeploymentAction'),
  };
}

interface MutableUpdate extends PackageUpdate {
  orGroups: number;
}

/**
 * Reads package.xml from a stream of chunks and yields batches of updates and file locations.
 *
 * @example
 *   for await (const batch of readPackageXml(createReadStream('package.xml'))) store(batch);
 */
export async function* readPackageXml(
  input: AsyncIterable<string | Buffer>,
  options: { batchSize?: number } = {},
): AsyncGenerator<PackageBatch> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const parser = new SaxesParser({ xmlns: false, position: false });
  // "p:" when the root element is prefixed; elements must then carry it.
  let prefix = '';
  let header: PackageHeader | null = null;
  let headerSent = false;
  let updates: PackageUpdate[] = [];
  let files: FileLocation[] = [];
  let current: MutableUpdate | null = null;
  // Which collection inside <Update> we are in (Categories, Prerequisites, Or, …).
  const path: string[] = [];
  let failure: Error | null = null;
  let sawRoot = false;

  parser.on('error', (error) => {
    failure ??= new PackageXmlError(`package.xml is not well-formed: ${error.message}`);
  });
  parser.on('opentag', (tag: SaxesTagPlain) => {
    const attrs = tag.attributes as Attrs;
    if (!sawRoot) {
      sawRoot = true;
      const colon = tag.name.indexOf(':');
      prefix = colon < 0 ? '' : tag.name.slice(0, colon + 1);
      const ns = attrs[prefix ? `xmlns:${prefix.slice(0, -1)}` : 'xmlns'] ?? '';
      if (ns !== OFFLINE_SYNC_NS && ns !== '')
        failure ??= new PackageXmlError(`unexpected namespace ${ns} on <${tag.name}>; expected ${OFFLINE_SYNC_NS}`);
    }
    if (prefix && !tag.name.startsWith(prefix)) {
      failure ??= new PackageXmlError(`<${tag.name}> is outside the ${OFFLINE_SYNC_NS} namespace`);
      return;
    }
    const name = prefix ? tag.name.slice(prefix.length) : tag.name;
    if (path.length === 0) {
      if (name !== 'OfflineSyncPackage')
        failure ??= new PackageXmlError(
          `the root element is <${name}>, not <OfflineSyncPackage>: this is not a wsusscn2 package.xml`,
        );
      header = {
        packageId: attr(attrs, 'PackageId'),
        creationDate: attr(attrs, 'CreationDate'),
        packageVersion: attr(attrs, 'PackageVersion'),
        protocolVersion: attr(attrs, 'ProtocolVersion'),
        minimumClientVersion: attr(attrs, 'MinimumClientVersion'),
        sourceId: attr(attrs, 'SourceId'),
      };
      path.push(name);
      return;
    }
    const parent = path[path.length - 1];
    path.push(name);
    if (name === 'Update' && parent === 'Updates') {
      try {
        current = {
          ...mapUpdateAttributes((n) => attr(attrs, n)),
          categories: [],
          prerequisites: [],
          bundledBy: [],
          supersededBy: [],
          payloadFiles: [],
          languages: [],
          orGroups: 0,
        };
      } catch (error) {
        failure ??= error as Error;
      }
      return;
    }
    if (name === 'FileLocation') {
      const id = attr(attrs, 'Id');
      if (id) files.push({ id, url: attr(attrs, 'Url') ?? '', isIncluded: bool(attr(attrs, 'IsIncluded')) });
      return;
    }
    if (!current) return;
    switch (name) {
      case 'Category': {
        const id = attr(attrs, 'Id');
        if (id) current.categories.push({ id: id.toLowerCase(), type: attr(attrs, 'Type') ?? '' });
        break;
      }
      case 'Or':
        current.orGroups += 1;
        break;
      case 'UpdateId': {
        const id = attr(attrs, 'Id');
        if (!id) break;
        if (parent === 'Or') current.prerequisites.push({ updateId: id.toLowerCase(), orGroup: current.orGroups });
        else if (parent === 'Prerequisites') current.prerequisites.push({ updateId: id.toLowerCase(), orGroup: null });
        break;
      }
      case 'Revision': {
        const id = Number(attr(attrs, 'Id'));
        if (!Number.isInteger(id)) break;
        if (parent === 'SupersededBy') current.supersededBy.push(id);
        else if (parent === 'BundledBy') current.bundledBy.push(id);
        break;
      }
      case 'File': {
        const id = attr(attrs, 'Id');
        if (id && parent === 'PayloadFiles') current.payloadFiles.push(id);
        break;
      }
      case 'Language': {
        const lang = attr(attrs, 'Name');
        if (lang && parent === 'Languages') current.languages.push(lang);
        break;
      }
    }
  });
  parser.on('closetag', () => {
    const name = path.pop();
    if (name === 'Update' && current && path[path.length - 1] === 'Updates') {
      const { orGroups: _orGroups, ...update } = current;
      updates.push(update);
      current = null;
    }
  });

  const decoder = new StringDecoder('utf8');
  const take = (): PackageBatch => {
    const batch: PackageBatch = { header: headerSent ? null : header, updates, fileLocations: files };
    if (header) headerSent = true;
    updates = [];
    files = [];
    return batch;
  };
  let first = true;
  for await (const chunk of input) {
    let text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    if (first && text.length > 0) {
      // A UTF-8 byte-order mark is legal before the declaration; saxes would call it text.
      text = text.replace(/^\uFEFF/, '');
      first = false;
    }
    parser.write(text);
    if (failure) throw failure;
    if (updates.length >= batchSize || files.length >= batchSize) yield take();
  }
  parser.write(decoder.end());
  parser.close();
  if (failure) throw failure;
  if (!sawRoot) throw new PackageXmlError('package.xml is empty');
  yield take();
}
