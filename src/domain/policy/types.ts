/**
 * The policy's vocabulary: what the server knows about hosts and updates (facts), what an
 * administrator writes (rules, rings, overrides) and what the policy answers (per host × update
 * state). Three things are kept apart for every host × update, as DESIGN.md §8 asks:
 * applicability (does the host need it), decision (may it go there, and who said so) and
 * delivery (where are its bytes / how did the install go). WAPT's and WSUS's states are derived
 * from them in states.ts. Everything here is a readonly value; times are ISO-8601 UTC strings.
 */
import type { RebootPolicy } from '../agent-log.ts';
import type { Severity, SEVERITY_FILTERS } from '../update.ts';

/** Rules are checked against WUA's classifications and the MSRC severities plus `none`. */
export { CLASSIFICATIONS, SEVERITY_FILTERS as RULE_SEVERITIES } from '../update.ts';
export type RuleSeverity = (typeof SEVERITY_FILTERS)[number];

// ---------------------------------------------------------------- facts

export const APPLICABILITIES = ['needed', 'installed', 'not-applicable', 'superseded'] as const;
/** What the host's last scan said; `superseded`: needed by WUA's rules but replaced by a newer update the host needs or has. */
export type Applicability = (typeof APPLICABILITIES)[number];

export const HOST_DELIVERIES = ['none', 'downloaded', 'installed', 'installed-pending-reboot', 'failed'] as const;
/** What the host reported about the update's bytes and its last install attempt. */
export type HostDelivery = (typeof HOST_DELIVERIES)[number];

export interface HostUpdateFacts {
  readonly updateId: string;
  readonly applicability: Applicability;
  readonly delivery: HostDelivery;
  /** HRESULT of the last failed attempt ("0x80242016"), else null. */
  readonly hresult: string | null;
  /** Install attempts so far (failed ones included). */
  readonly attempts: number;
  /** When the host reported it installed (promotion counts soak time from here). */
  readonly installedAt: string | null;
}

export interface HostFacts {
  readonly name: string;
  /** Ring given at enrollment (enrollment token); when null the rings' membership patterns decide. */
  readonly ring: string | null;
  /** When the host last reported a scan; null: never scanned, every update's state is unknown. */
  readonly lastScanAt: string | null;
  readonly updates: readonly HostUpdateFacts[];
}

export const SERVER_CACHE_STATES = ['not-cached', 'downloading', 'cached'] as const;
export type ServerCacheState = (typeof SERVER_CACHE_STATES)[number];

/** What the catalog (and the content cache) say about one update. */
export interface UpdateFacts {
  readonly updateId: string;
  readonly kbs: readonly string[];
  readonly title: string;
  readonly classification: string | null;
  readonly products: readonly string[];
  readonly severity: Severity | null;
  /** Release date (package.xml Update/@CreationDate); installDelayDays count from here. */
  readonly releasedAt: string | null;
  /** The server's content cache for the update's files. */
  readonly cache: ServerCacheState;
}

export type CatalogFacts = ReadonlyMap<string, UpdateFacts>;

// ---------------------------------------------------------------- rules

export const RULE_ACTIONS = ['allow', 'forbid'] as const;
export type RuleAction = (typeof RULE_ACTIONS)[number];

/**
 * One rule. Selectors of different kinds must all match (classification AND product); values of
 * one kind are alternatives (any listed KB). Scope: when `rings` or `hosts` is given the rule
 * applies only to hosts in one of those rings or matching one of those names/patterns.
 */
export interface Rule {
  readonly id: string;
  readonly action: RuleAction;
  readonly updateIds?: readonly string[];
  /** Digits, "KB" prefix allowed. */
  readonly kbs?: readonly string[];
  readonly classifications?: readonly string[];
  readonly products?: readonly string[];
  readonly severities?: readonly string[];
  /** A regular expression matched case-insensitively against the title. */
  readonly titlePattern?: string;
  readonly rings?: readonly string[];
  /** Host names or `*` patterns, case-insensitive. */
  readonly hosts?: readonly string[];
}

// ---------------------------------------------------------------- rings

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface MaintenanceWindow {
  readonly weekdays: readonly Weekday[];
  /** Local wall-clock start "HH:MM" in `timeZone`. */
  readonly start: string;
  readonly durationMinutes: number;
  /** An IANA zone ("Europe/Paris"); always explicit: the server's own zone is never assumed. */
  readonly timeZone: string;
}

/** What the previous ring must show before an update reaches this ring. */
export interface PromotionCriteria {
  /** Hosts of the previous ring with the update installed successfully. */
  readonly minHosts: number;
  /** installed / (installed + failed), in percent. */
  readonly minSuccessPercent: number;
  /** Hours the criteria must have held (counted from the install that met minHosts). */
  readonly soakHours: number;
  /** failed / (installed + failed) above this halts the promotion. */
  readonly maxFailurePercent: number;
}

export interface Ring {
  readonly name: string;
  /** Host names or `*` patterns, case-insensitive. A host belongs to the first ring that matches. */
  readonly members: readonly string[];
  readonly defaultAllow: boolean;
  /** Null: every severity; otherwise only these (for allows that are not by UpdateID or KB). */
  readonly allowedSeverities: readonly RuleSeverity[] | null;
  readonly installDelayDays: number;
  readonly scanIntervalMinutes: number;
  /** Empty: unattended installs at any time. */
  readonly maintenanceWindows: readonly MaintenanceWindow[];
  readonly rebootPolicy: RebootPolicy;
  readonly installAtShutdown: boolean;
  readonly directDownload: boolean;
  /**
   * The gate from the previous ring. Null: no gate (the first ring, or a ring that takes what its
   * rules allow at once). Ignored on the first ring.
   */
  readonly promotion: PromotionCriteria | null;
}

export interface PromotionOverride {
  readonly updateId: string;
  /** The ring the update is promoted into (or halted before). */
  readonly ring: string;
  readonly action: 'promote' | 'halt';
  readonly by: string;
  readonly at: string;
}

// ---------------------------------------------------------------- answers

export interface PromotionEvidence {
  readonly fromRing: string;
  readonly toRing: string;
  /** Hosts of the previous ring where the update applies (needed, installed or failed). */
  readonly hosts: number;
  readonly installed: number;
  readonly failed: number;
  /** Percent, one decimal; null when nothing was attempted. */
  readonly successPercent: number | null;
  readonly failurePercent: number | null;
  /** When minHosts successful installs was reached (the soak starts). */
  readonly since: string | null;
  /** When the soak ends (since + soakHours). */
  readonly eligibleAt: string | null;
}

export type PromotionStatus = 'met' | 'pending' | 'halted';

export interface PromotionResult {
  readonly status: PromotionStatus;
  readonly reason: string;
  readonly evidence: PromotionEvidence;
  readonly override: PromotionOverride | null;
}

/** Which rule or setting decided. */
export type DecisionReason =
  | { readonly kind: 'rule'; readonly ruleId: string; readonly action: RuleAction }
  | { readonly kind: 'default-allow'; readonly ring: string }
  | { readonly kind: 'default-deny'; readonly ring: string | null }
  | { readonly kind: 'severity'; readonly ring: string; readonly severity: RuleSeverity }
  | { readonly kind: 'install-delay'; readonly ring: string; readonly days: number }
  | {
      readonly kind: 'promotion';
      readonly ring: string;
      readonly status: PromotionStatus;
      readonly evidence: PromotionEvidence;
    }
  | { readonly kind: 'override'; readonly ring: string; readonly action: 'promote' | 'halt'; readonly by: string };

export interface Decision {
  readonly kind: 'allowed' | 'forbidden' | 'deferred';
  /** For `deferred`: when it becomes allowed, if a date is known (null: waiting on promotion evidence). */
  readonly until: string | null;
  readonly by: DecisionReason;
  /** Every rule that matched this host × update (forbid and allow), for the console's "why". */
  readonly matchedRules: readonly string[];
}

export const DELIVERY_STATES = [
  'not-cached',
  'downloading-on-server',
  'cached',
  'downloaded-on-host',
  'installed',
  'installed-pending-reboot',
  'failed',
] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

export interface Delivery {
  readonly state: DeliveryState;
  readonly hresult: string | null;
  readonly attempts: number;
}

export const WAPT_STATES = ['OK', 'MISSING', 'PENDING', 'DISCARDED'] as const;
export type WaptState = (typeof WAPT_STATES)[number];

/** WSUS's UpdateInstallationState (MS-WSUSAR), in lower-case kebab form. */
export const WSUS_STATES = [
  'unknown',
  'not-applicable',
  'needed',
  'downloaded',
  'installed',
  'failed',
  'installed-pending-reboot',
] as const;
export type WsusState = (typeof WSUS_STATES)[number];

export interface HostUpdateState {
  readonly host: string;
  readonly ring: string | null;
  readonly updateId: string;
  readonly applicability: Applicability | 'unknown';
  readonly decision: Decision;
  readonly delivery: Delivery;
  /** Null when the update is not applicable or superseded (WAPT does not list those). */
  readonly wapt: WaptState | null;
  readonly wsus: WsusState;
}

/** A problem found by validateRule / validateRings; the server answers 400 with these codes. */
export interface PolicyProblem {
  readonly code: string;
  /** Where: "kbs[2]", "maintenanceWindows[0].timeZone". */
  readonly path: string;
  readonly message: string;
}
