/**
 * Everything `patchline agent cycle` does after reading its request, in order:
 *   1. run the cycle, streaming every event to stdout and (if given) the HTTP callback;
 *   2. if the host will reboot, emit `rebooting` — the last event, so it is part of the log that
 *      is handed over (it means "the agent reboots the host once this log is safe");
 *   3. make the log safe: callback ack of the last event, a pipe reader, or the fallback file;
 *   4. reboot.
 * The lab's in-process launcher and the CLI both call runAgentCycle; only the wiring differs.
 */
import type { Writable } from 'node:stream';
import type { CycleRequest } from '../domain/agent-log.ts';
import { PatchlineError } from '../domain/errors.ts';
import type { ProviderChannel } from '../wua/client.ts';
import type { Clock } from './clock.ts';
import { runCycle, type CycleSummary, type CycleTimeouts } from './cycle.ts';
import type { EventSink } from './event-log.ts';
import { resolveLogDir, waitUntilLogSafe, type HandoverResult } from './log-handover.ts';
import { executeReboot, planReboot, type RebootPlan } from './reboot.ts';
import { HttpCallbackSink } from './sinks/http-sink.ts';
import { fileSink } from './sinks/file-sink.ts';
import { streamSink } from './sinks/stream-sink.ts';

/** How long a failed reboot's warning may take to reach the callback before the agent exits. */
const LATE_WARNING_DELIVERY_MS = 5_000;

export interface AgentRunDeps {
  readonly openProvider: () => ProviderChannel;
  readonly clock: Clock;
  readonly signal: AbortSignal;
  /** Where the JSON lines go (process.stdout in the CLI); omitted: no stream sink. */
  readonly stdout?: Writable;
  /** Diagnostics for people (stderr in the CLI): never events, never the token. */
  readonly report: (message: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly platform: NodeJS.Platform;
  readonly agentVersion: string;
  readonly fetch?: typeof fetch;
  /** Replaces the real reboot (tests, or a lab that reboots differently). */
  readonly reboot?: (plan: RebootPlan) => Promise<void>;
  readonly timeouts?: Partial<CycleTimeouts>;
  /**
   * The agent is being killed (in-process agents whose virtual host reboots or powers off): what
   * is left — the log hand-over, the reboot — is abandoned at once, as it would be for a killed process.
   */
  readonly kill?: AbortSignal;
}

export interface AgentRunResult {
  readonly summary: CycleSummary;
  readonly handover: HandoverResult;
  readonly rebooted: boolean;
}

/**
 * Runs one cycle end to end. Throws REBOOT_UNAVAILABLE/REBOOT_FAILED/LOG_HANDOVER_FAILED (after
 * the log was handed over, where possible); the cycle's own outcome never throws.
 *
 * @example await runAgentCycle(request, { openProvider, clock: systemClock, signal, stdout: process.stdout,
 *   report: (m) => process.stderr.write(m + '\n'), env: process.env, platform: process.platform, agentVersion: '0.1.0' })
 */
export async function runAgentCycle(request: CycleRequest, deps: AgentRunDeps): Promise<AgentRunResult> {
  const sinks: EventSink[] = [];
  if (deps.stdout)
    sinks.push(
      streamSink(deps.stdout, (error) =>
        deps.report(`stdout is not writable (${error.message}); events still go to the other sinks`),
      ),
    );
  const http = request.callback
    ? new HttpCallbackSink({
        url: request.callback.url,
        token: request.callback.token,
        report: deps.report,
        ...(deps.fetch ? { fetch: deps.fetch } : {}),
      })
    : undefined;
  if (http) sinks.push(http);
  const file =
    request.logFile === undefined
      ? undefined
      : fileSink(request.logFile, (error) =>
          deps.report(
            `cannot append to the log file ${request.logFile} (${error.message}); events still go to the other sinks`,
          ),
        );
  if (file) sinks.push(file);
  try {
    const summary = await runCycle(request, {
      openProvider: deps.openProvider,
      sinks,
      clock: deps.clock,
      signal: deps.signal,
      agentVersion: deps.agentVersion,
      onSinkError: (error) => deps.report(`an event sink failed: ${(error as Error).message}`),
      ...(deps.timeouts ? { timeouts: deps.timeouts } : {}),
    });

    let plan: RebootPlan | null = null;
    let rebootError: PatchlineError | null = null;
    if (summary.willReboot) {
      try {
        plan = planReboot(deps.env, deps.platform);
        summary.log.emit({ kind: 'rebooting' });
      } catch (error) {
        rebootError = error as PatchlineError;
        summary.log.emit({
          kind: 'warning',
          message: `the host was not rebooted: ${rebootError.message}`,
          hresult: null,
        });
      }
    }

    const handover = await waitUntilLogSafe({
      request,
      events: () => summary.log.events(),
      ...(http ? { http } : {}),
      logDir: resolveLogDir(deps.env, deps.platform),
      timeoutMs: request.logHandoverTimeoutSeconds * 1_000,
      report: deps.report,
      platform: deps.platform,
      ...(deps.kill ? { abandon: deps.kill } : {}),
    });
    if (handover.via === 'file') deps.report(`cycle log written to ${handover.path}`);
    if (rebootError) throw rebootError;
    if (plan) {
      try {
        await (deps.reboot ? deps.reboot(plan) : executeReboot(plan, deps.fetch ? { fetch: deps.fetch } : {}));
      } catch (error) {
        // The log already says `rebooting`; tell a connector that still listens that it did not happen.
        const event = summary.log.emit({
          kind: 'warning',
          message: `the reboot failed: ${(error as Error).message}`,
          hresult: null,
        });
        if (http) await http.waitForAck(event.seq, AbortSignal.timeout(LATE_WARNING_DELIVERY_MS));
        throw error;
      }
    }
    return { summary, handover, rebooted: plan !== null };
  } finally {
    http?.close();
    file?.close();
  }
}
