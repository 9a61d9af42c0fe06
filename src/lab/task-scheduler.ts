/**
 * A virtual host's Task Scheduler: like Windows' register + RunNow + delete of a one-shot task
 * that runs `patchline agent cycle` as SYSTEM. It writes the CycleRequest into the host dir, gives
 * the agent a short deterministic socket path for its log hand-over, starts it at once, and
 * confirms it started (PID). A `launchFails` fault makes it refuse with the scheduler's HRESULT.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CycleRequest } from '../domain/agent-log.ts';
import { labPipePath } from '../transports/lab.ts';
import { LaunchFailedError, type LaunchHost, type LaunchedAgent, type Launcher } from './launcher.ts';

/** Scheduler-style texts for the HRESULTs a lab scenario is likely to inject. */
const SCHEDULER_MESSAGES: Readonly<Record<string, string>> = {
  '0x80070005': 'Access is denied.',
  '0x80070002': 'The system cannot find the file specified.',
  '0x80041315': 'The Task Scheduler service is not running.',
  '0x8004131F': 'An instance of this task is already running.',
  '0x80041326': 'The task is disabled.',
  '0x800710E0': 'The operator or administrator has refused the request.',
};

/** Thrown when the scheduler refuses a launch; the daemon answers 409 {hresult, message}. */
export class SchedulerRefusedError extends Error {
  override readonly name = 'SchedulerRefusedError';
  constructor(
    readonly hresult: string,
    message: string,
  ) {
    super(message);
  }
}

/** The message schtasks / Task Scheduler would give, e.g. `ERROR: Access is denied. (0x80070005)`. */
export function schedulerMessage(host: string, taskName: string, hresult: string): string {
  const text = SCHEDULER_MESSAGES[hresult.toUpperCase().replace(/^0X/, '0x')] ?? 'The task could not be started.';
  return `Task Scheduler on ${host} refused to run task "${taskName}": ${text} (${hresult})`;
}

/** A Windows-like task name: `\Patchline\<runId>-c<cycle>-<n>`, reduced to a safe file name for the id. */
export function taskIdFor(request: Pick<CycleRequest, 'runId' | 'cycle'>, sequence: number): string {
  const safeRun = request.runId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);
  return `patchline-${safeRun}-c${request.cycle}-${sequence}`;
}

interface TaskEntry {
  readonly agent: LaunchedAgent;
  readonly pipePath: string;
  running: boolean;
}

export interface TaskSchedulerOptions {
  readonly host: LaunchHost;
  /** The lab's DIR (part of the socket path hash, so two labs never share a socket). */
  readonly labDir: string;
  readonly launcher: Launcher;
  /** The `launchFails` fault: every launch is refused with this HRESULT. */
  readonly launchFailsHResult?: string;
  /** Called whenever a task starts or ends (the daemon's idle timer listens). */
  readonly onChange?: () => void;
}

export class TaskScheduler {
  private readonly tasks = new Map<string, TaskEntry>();
  private sequence = 0;

  constructor(private readonly options: TaskSchedulerOptions) {}

  /**
   * Registers and runs a one-shot task now. Resolves with {taskId, pid} once the agent runs.
   * Throws SchedulerRefusedError with the scheduler's HRESULT when the launch is refused.
   */
  async runNow(request: CycleRequest): Promise<{ readonly taskId: string; readonly pid: number }> {
    const { host, labDir, launcher } = this.options;
    this.sequence += 1;
    const taskId = taskIdFor(request, this.sequence);
    if (this.options.launchFailsHResult !== undefined) {
      throw new SchedulerRefusedError(
        this.options.launchFailsHResult,
        schedulerMessage(host.name, `\\Patchline\\${taskId}`, this.options.launchFailsHResult),
      );
    }
    const withPipe: CycleRequest = {
      ...request,
      pipePath: labPipePath(labDir, request.runId, request.host, request.cycle),
    };
    const tasksDir = join(host.hostDir, 'tasks');
    await mkdir(tasksDir, { recursive: true });
    const requestPath = join(tasksDir, `${taskId}.json`);
    await writeFile(`${requestPath}.tmp`, JSON.stringify(withPipe, null, 2), { mode: 0o600 });
    await rename(`${requestPath}.tmp`, requestPath);
    let agent: LaunchedAgent;
    try {
      agent = await launcher.start({ taskId, host, request: withPipe, requestPath });
    } catch (error) {
      if (error instanceof LaunchFailedError)
        throw new SchedulerRefusedError(
          error.hresult,
          schedulerMessage(host.name, `\\Patchline\\${taskId}`, error.hresult) + ` ${error.message}`,
        );
      throw error;
    }
    const entry: TaskEntry = { agent, pipePath: withPipe.pipePath ?? '', running: true };
    this.tasks.set(taskId, entry);
    this.options.onChange?.();
    void agent.ended.then(() => {
      entry.running = false;
      this.options.onChange?.();
    });
    return { taskId, pid: agent.pid };
  }

  /** Is the task still running? Undefined when this scheduler never started it. */
  isRunning(taskId: string): boolean | undefined {
    return this.tasks.get(taskId)?.running;
  }

  /** Asks a task's agent to stop (abort). False when the task is unknown or already ended. */
  stop(taskId: string): boolean {
    const entry = this.tasks.get(taskId);
    if (entry === undefined || !entry.running) return false;
    entry.agent.stop();
    return true;
  }

  runningCount(): number {
    let n = 0;
    for (const entry of this.tasks.values()) if (entry.running) n += 1;
    return n;
  }

  /** Kills every running task at once (reboot, power-off) and waits until they are gone. */
  async killAll(): Promise<void> {
    const ending: Promise<void>[] = [];
    for (const entry of this.tasks.values()) {
      if (!entry.running) continue;
      // A killed agent leaves its socket file behind; a reboot clears it, as Windows clears pipes.
      ending.push(entry.agent.kill().then(() => (entry.pipePath ? rm(entry.pipePath, { force: true }) : undefined)));
    }
    await Promise.all(ending);
    // After a reboot the old tasks are history; their ids answer "not running".
  }
}
