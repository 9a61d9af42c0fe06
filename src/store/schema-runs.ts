/**
 * Tables of connector runs (engine), as Kysely types. Created by migrations/0001-runs.ts.
 *
 * A run's options and every host's cycle state are JSON text so resume needs only the run id; the
 * per-update rows and the event log are plain columns so reports and queries need no JSON parsing.
 */
export interface RunsTable {
  id: string;
  /** RunOptions as JSON. */
  options_json: string;
  /** ISO-8601 UTC. */
  started_at: string;
  finished_at: string | null;
  /** RunOutcome; 'running' until finished. */
  outcome: string;
  exit_code: number | null;
}

export interface RunHostsTable {
  run_id: string;
  host: string;
  /** Position in the run's target list (reports keep the user's order). */
  ordinal: number;
  /** HostPhase: the state machine's phase. */
  phase: string;
  /** The whole HostState as JSON (write-ahead: saved before its commands run). */
  state_json: string;
  cycles: number;
  reboots: number;
  message: string | null;
  updated_at: string;
}

export interface RunHostUpdatesTable {
  run_id: string;
  host: string;
  update_id: string;
  kb: string | null;
  title: string;
  /** UpdateResult. */
  result: string;
  hresult: string | null;
  attempts: number;
  cycle: number;
  message: string | null;
}

export interface RunEventsTable {
  run_id: string;
  /** 1, 2, 3 … within the run, in the order the events were saved. */
  n: number;
  host: string | null;
  at: string;
  /** 'agent' for an agent event (data = the AgentEvent), else the engine's transition/event kind. */
  kind: string;
  cycle: number | null;
  /** The agent's seq for agent events. */
  seq: number | null;
  data_json: string;
}

export interface RunTables {
  runs: RunsTable;
  run_hosts: RunHostsTable;
  run_host_updates: RunHostUpdatesTable;
  run_events: RunEventsTable;
}
