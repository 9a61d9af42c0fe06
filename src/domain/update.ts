/**
 * The update record: what Windows Update tells us about one update, in WUA's own vocabulary.
 *
 * This is the shape every provider (the PowerShell one on Windows, the lab's simulated one)
 * reports for a search, and what filters, policy and reports work on. It mirrors IUpdate
 * (see shared/reference/windows-update-agent.md §1.6); field names follow DESIGN.md §4.
 */

export const REBOOT_BEHAVIORS = ['never', 'always', 'canRequest'] as const;
/** InstallationBehavior.RebootBehavior: irbNeverReboots, irbAlwaysRequiresReboot, irbCanRequestReboot. */
export type RebootBehavior = (typeof REBOOT_BEHAVIORS)[number];

export const IMPACTS = ['normal', 'minor', 'exclusive'] as const;
/** InstallationBehavior.Impact; `exclusive` (RequiresExclusiveHandling) must be installed alone. */
export type Impact = (typeof IMPACTS)[number];

export const UPDATE_TYPES = ['software', 'driver'] as const;
export type UpdateType = (typeof UPDATE_TYPES)[number];

export const SEVERITIES = ['Critical', 'Important', 'Moderate', 'Low'] as const;
/** MSRC severity; `null` for updates that carry none (non-security updates). */
export type Severity = (typeof SEVERITIES)[number];

/** WUA's update classifications (the UpdateClassification category names). */
export const CLASSIFICATIONS = [
  'Critical Updates',
  'Security Updates',
  'Definition Updates',
  'Update Rollups',
  'Service Packs',
  'Feature Packs',
  'Tools',
  'Updates',
  'Upgrades',
  'Drivers',
] as const;

/** MSRC severities plus `none` for updates that carry none: what a filter or rule may name. */
export const SEVERITY_FILTERS = [...SEVERITIES, 'none'] as const;

export const CATEGORY_TYPES = ['Company', 'ProductFamily', 'Product', 'UpdateClassification'] as const;
export type CategoryType = (typeof CATEGORY_TYPES)[number];

export interface Category {
  readonly id: string;
  readonly name: string;
  readonly type: CategoryType;
}

export interface UpdateRecord {
  /** Identity.UpdateID, a GUID in lower case. */
  readonly updateId: string;
  readonly revisionNumber: number;
  readonly title: string;
  /** KBArticleIDs, digits only ("5044444"). */
  readonly kbs: readonly string[];
  readonly msrcSeverity: Severity | null;
  /** The UpdateClassification category's name, e.g. "Security Updates". */
  readonly classification: string;
  /** Names of the Product categories. */
  readonly products: readonly string[];
  readonly categories: readonly Category[];
  readonly isDownloaded: boolean;
  readonly isHidden: boolean;
  readonly isMandatory: boolean;
  /** BrowseOnly: an optional update, not offered by default. */
  readonly browseOnly: boolean;
  readonly type: UpdateType;
  readonly rebootBehavior: RebootBehavior;
  readonly impact: Impact;
  readonly eulaAccepted: boolean;
  /** SupersededUpdateIDs: the updates that this one supersedes. */
  readonly supersededUpdateIds: readonly string[];
  /** Bytes. */
  readonly maxDownloadSize: number;
  /** LastDeploymentChangeTime as an ISO-8601 UTC string. */
  readonly lastDeploymentChangeTime: string;
  readonly supportUrl: string | null;
  readonly downloadUrls: readonly string[];
}

/**
 * A short human label for logs: "KB5044444 2026-11 Cumulative Update …", or the title alone when
 * there is no KB or the title already names it (Microsoft's titles usually end "(KB5044444)").
 */
export function updateLabel(u: Pick<UpdateRecord, 'kbs' | 'title'>): string {
  const kb = u.kbs[0];
  if (!kb || u.title.includes(`KB${kb}`)) return u.title;
  return `KB${kb} ${u.title}`;
}
