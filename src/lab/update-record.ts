/**
 * Turns a scenario's catalog entry into the UpdateRecord a provider reports (src/domain/update.ts),
 * for one host's view of it (downloaded, hidden, EULA accepted) and its payload URLs.
 *
 * Category ids: the classifications Microsoft publishes use their real, well-known GUIDs (so a
 * filter written against real WSUS data works in the lab); products, the company and the
 * product family use name-based UUIDs (stable, but not Microsoft's).
 */
import type { Category, UpdateRecord } from '../domain/update.ts';
import type { HostState } from './host-state.ts';
import { nameUuid } from './name-uuid.ts';
import type { CatalogEntry } from './scenario.ts';

export const COMPANY_NAME = 'Microsoft Corporation';
export const PRODUCT_FAMILY_NAME = 'Windows';

/** UpdateClassification category ids as Microsoft publishes them (WSUS, wsusscn2.cab). */
const KNOWN_CLASSIFICATION_IDS: Readonly<Record<string, string>> = {
  'critical updates': 'e6cf1350-c01b-414d-a61f-263d14d133b4',
  'definition updates': 'e0789628-ce08-4437-be74-2495b842f43b',
  drivers: 'ebfc1fc5-71a4-4f7b-9aca-3b9a503104a0',
  'feature packs': 'b54e7d24-7add-428f-8b75-90a396fa584f',
  'security updates': '0fa1201d-4330-4fa8-8ae9-b877473b6441',
  'service packs': '68c5b0a3-d1a6-4553-ae49-01d3a7827828',
  tools: 'b4832bd8-e735-4761-8daf-37f882276dab',
  'update rollups': '28bc880e-0592-4cbf-8f95-c79b17911d5f',
  updates: 'cd5ffd1e-e932-4e3a-bf74-18bf0b1bbd83',
  upgrades: '3689bdc8-b205-4af4-8d4a-a63924c5e9d5',
};

/** The categories of an update: its classification, its products, the company, the family. */
export function categoriesOf(entry: Pick<CatalogEntry, 'classification' | 'products'>): Category[] {
  const classificationId =
    KNOWN_CLASSIFICATION_IDS[entry.classification.toLowerCase()] ?? nameUuid(`classification:${entry.classification}`);
  return [
    { id: classificationId, name: entry.classification, type: 'UpdateClassification' },
    ...entry.products.map((name): Category => ({ id: nameUuid(`product:${name}`), name, type: 'Product' })),
    { id: nameUuid(`company:${COMPANY_NAME}`), name: COMPANY_NAME, type: 'Company' },
    { id: nameUuid(`family:${PRODUCT_FAMILY_NAME}`), name: PRODUCT_FAMILY_NAME, type: 'ProductFamily' },
  ];
}

export interface HostView {
  readonly isDownloaded: boolean;
  readonly isHidden: boolean;
  readonly eulaAccepted: boolean;
}

/** How one host sees an update, from its state on disk. Pure. */
export function hostViewOf(
  entry: Pick<CatalogEntry, 'key' | 'eula'>,
  state: Pick<HostState, 'downloaded' | 'hidden' | 'eulasAccepted'>,
): HostView {
  return {
    isDownloaded: state.downloaded.includes(entry.key),
    isHidden: state.hidden.includes(entry.key),
    eulaAccepted: !entry.eula || state.eulasAccepted.includes(entry.key),
  };
}

export interface PayloadView {
  /** Bytes the upstream serves for this update. */
  readonly size: number;
  readonly downloadUrls: readonly string[];
}

/**
 * The record a search reports for `entry`, as seen by one host.
 *
 * @example toUpdateRecord(scenario.byKey.get('lcu-2026-11')!, { isDownloaded: false, isHidden: false, eulaAccepted: true }, { size: 4096, downloadUrls: [] }, scenario.byKey)
 */
export function toUpdateRecord(
  entry: CatalogEntry,
  view: HostView,
  payload: PayloadView,
  byKey: ReadonlyMap<string, CatalogEntry>,
): UpdateRecord {
  return {
    updateId: entry.updateId,
    revisionNumber: entry.revisionNumber,
    title: entry.title,
    kbs: entry.kb ? [entry.kb] : [],
    msrcSeverity: entry.severity,
    classification: entry.classification,
    products: [...entry.products],
    categories: categoriesOf(entry),
    isDownloaded: view.isDownloaded,
    isHidden: view.isHidden,
    isMandatory: false,
    browseOnly: entry.optional,
    type: entry.type,
    rebootBehavior: entry.reboot,
    impact: entry.impact,
    eulaAccepted: view.eulaAccepted,
    supersededUpdateIds: entry.supersedes.map((key) => byKey.get(key)?.updateId ?? key),
    maxDownloadSize: payload.size,
    lastDeploymentChangeTime: entry.released,
    supportUrl: entry.kb ? `https://support.microsoft.com/help/${entry.kb}` : null,
    downloadUrls: [...payload.downloadUrls],
  };
}
