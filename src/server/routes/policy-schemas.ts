/** Vocabulary lists of the policy, for the OpenAPI descriptions of rules and rings. */
export {
  CLASSIFICATIONS,
  WEEKDAYS as WEEKDAY_VALUES,
  RULE_SEVERITIES as RULE_SEVERITIES_LIST,
} from '../../domain/policy/index.ts';
export { REBOOT_POLICIES as REBOOT_POLICY_VALUES } from '../../domain/agent-log.ts';
