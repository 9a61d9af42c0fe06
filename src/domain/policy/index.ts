/**
 * Public surface of the policy (src/domain/policy/): rules, rings, windows, promotion, the
 * per host × update decision and its derived WAPT/WSUS states, and the rule preview.
 */
export * from './types.ts';
export {
  validateRule,
  compileRule,
  evaluateRules,
  resolveRuleKbs,
  severityOf,
  type CompiledRule,
  type KbTarget,
  type RuleVerdict,
} from './rules.ts';
export {
  validateRing,
  validateRings,
  ringOfHost,
  DEFAULT_RING,
  MIN_SCAN_INTERVAL_MINUTES,
  MAX_INSTALL_DELAY_DAYS,
  MAX_WINDOW_MINUTES,
} from './rings.ts';
export {
  scheduleAt,
  currentWindow,
  nextWindow,
  zonedTimeToInstant,
  zoneOffsetMs,
  isValidTimeZone,
  type Schedule,
  type WindowOccurrence,
} from './windows.ts';
export { evaluatePromotion } from './promotion.ts';
export { deriveDelivery, waptState, wsusState } from './states.ts';
export { createPolicy, decide, type Policy, type PolicyInput } from './decide.ts';
export {
  previewRuleChange,
  PREVIEW_SAMPLE_LIMIT,
  type RulePreview,
  type PreviewCount,
  type PreviewChange,
} from './preview.ts';
export { hostMatches, normalizeKb } from './match.ts';
export { describeReason, describeDecision } from './describe.ts';
export { mayInstallNow, INSTALL_TRIGGERS, type InstallTrigger, type InstallVerdict } from './schedule.ts';
