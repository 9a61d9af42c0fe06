/** Options the agent gateway's routes share (gateway.ts, checkin.ts). */

/** The longest a check-in is held: under common proxies' 60 s idle timeouts. */
export const MAX_CHECKIN_WAIT_SECONDS = 50;
/** Enrollment and check-in bodies are small; a report may be large (MAX_REPORT_BYTES). */
export const SMALL_BODY_BYTES = 16 * 1024;

/**
 * The routes every agent calls all the time (check-in, policy, report, progress) log only warnings
 * and errors: at 10,000 agents, Fastify's two info lines per request would be some 40,000 lines per
 * action and cost the server more CPU than the reports. Enrollment and downloads still log each
 * request; `patchline_http_request_duration_seconds` at /metrics counts all of them.
 */
export const AGENT_TRAFFIC = { logLevel: 'warn' } as const;
