/** The engine's public surface. */
export {
  startRun,
  resumeRun,
  loadRunReport,
  loadRunOptions,
  listRuns,
  newRunId,
  type ResumeOverrides,
  type RunSummary,
} from './run.ts';
export { formatRunLogEvent, leftOut } from './log-format.ts';
export { systemClock, type Clock } from './clock.ts';
export {
  DEFAULT_MAX_CYCLES,
  DEFAULT_PARALLEL,
  DEFAULT_REBOOT_TIMEOUT_MS,
  DEFAULT_RETRIES,
  DEFAULT_TIMING,
  labRebootTimeoutMs,
  type EngineDeps,
  type EngineTiming,
  type RunLogEvent,
  type RunLogKind,
  type RunOptions,
  type RunResult,
} from './types.ts';
