/**
 * What the agent keeps on disk (its state directory, readable by SYSTEM/root only): its enrollment
 * (`agent.json`: server URL, pinned fingerprint, host id, credential), the report waiting to be
 * acknowledged, the inventory the server acknowledged (the delta base), action progress not yet
 * delivered, the last attempt per update, the actions already received, and the install action
 * under way (it survives the reboots between its passes). Every file is written
 * atomically (temporary file, fsync, rename): a power cut leaves the old file or the new one, so a
 * report queued while offline survives a reboot and is sent when the server is back.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type {
  ActionProgress,
  AgentAction,
  LastAttempt,
  ReportedUpdate,
  ScanReport,
} from '../../domain/agent-protocol.ts';
import { PatchlineError } from '../../domain/errors.ts';
import type { AckedInventory } from './inventory.ts';

export interface AgentEnrollment {
  readonly serverUrl: string;
  readonly fingerprint: string | null;
  readonly hostId: string;
  readonly hostName: string;
  readonly ring: string;
  readonly credential: string;
  readonly enrolledAt: string;
}

/** A report built from a scan, with the whole inventory it describes (the next delta base once acknowledged). */
export interface PendingReport {
  readonly report: ScanReport;
  readonly inventory: readonly ReportedUpdate[];
}

export interface OutboxEntry {
  readonly actionId: string;
  readonly progress: ActionProgress;
}

/** An install action under way across reboots: resumed at `nextPass` when the agent starts again. */
export interface RunningAction {
  readonly action: AgentAction;
  readonly nextPass: number;
  /** Update ids installed by the action's earlier passes (an update installed again is a loop). */
  readonly installed: readonly string[];
}

const FILES = {
  enrollment: 'agent.json',
  pending: 'pending-report.json',
  acked: 'acked-inventory.json',
  outbox: 'outbox.json',
  attempts: 'attempts.json',
  received: 'actions-received.json',
  seq: 'report-seq.json',
  running: 'action-running.json',
} as const;

/** How many received action ids are remembered (redelivered actions are recognised). */
const RECEIVED_LIMIT = 500;

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(value)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}

async function readJson<T>(path: string): Promise<T | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new PatchlineError('AGENT_STATE_UNREADABLE', `cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new PatchlineError(
      'AGENT_STATE_UNREADABLE',
      `${path} is not valid JSON (${(error as Error).message}): delete it and enroll again`,
      { cause: error },
    );
  }
}

/** The agent's state directory. One AgentState per directory; its methods are not re-entrant per file. */
export class AgentState {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  enrollment(): Promise<AgentEnrollment | null> {
    return readJson(this.path(FILES.enrollment));
  }

  async requireEnrollment(): Promise<AgentEnrollment> {
    const e = await this.enrollment();
    if (!e)
      throw new PatchlineError(
        'AGENT_NOT_ENROLLED',
        `no enrollment in ${this.dir}: run \`patchline agent enroll --server URL --token ET…\` first`,
        { exitCode: 64 },
      );
    return e;
  }

  saveEnrollment(e: AgentEnrollment): Promise<void> {
    return writeJsonAtomic(this.path(FILES.enrollment), e);
  }

  pending(): Promise<PendingReport | null> {
    return readJson(this.path(FILES.pending));
  }

  async setPending(p: PendingReport | null): Promise<void> {
    await writeJsonAtomic(this.path(FILES.pending), p);
  }

  acked(): Promise<AckedInventory | null> {
    return readJson(this.path(FILES.acked));
  }

  setAcked(a: AckedInventory | null): Promise<void> {
    return writeJsonAtomic(this.path(FILES.acked), a);
  }

  /** The last report seq this agent assigned (seqs are never reused, even after a 409). */
  async lastSeq(): Promise<number> {
    return (await readJson<{ seq: number }>(this.path(FILES.seq)))?.seq ?? 0;
  }

  setLastSeq(seq: number): Promise<void> {
    return writeJsonAtomic(this.path(FILES.seq), { seq });
  }

  async outbox(): Promise<OutboxEntry[]> {
    return (await readJson<OutboxEntry[]>(this.path(FILES.outbox))) ?? [];
  }

  setOutbox(entries: readonly OutboxEntry[]): Promise<void> {
    return writeJsonAtomic(this.path(FILES.outbox), entries);
  }

  async attempts(): Promise<Record<string, LastAttempt>> {
    return (await readJson<Record<string, LastAttempt>>(this.path(FILES.attempts))) ?? {};
  }

  setAttempts(a: Readonly<Record<string, LastAttempt>>): Promise<void> {
    return writeJsonAtomic(this.path(FILES.attempts), a);
  }

  runningAction(): Promise<RunningAction | null> {
    return readJson(this.path(FILES.running));
  }

  setRunningAction(r: RunningAction | null): Promise<void> {
    return writeJsonAtomic(this.path(FILES.running), r);
  }

  async received(): Promise<string[]> {
    return (await readJson<string[]>(this.path(FILES.received))) ?? [];
  }

  async addReceived(id: string): Promise<void> {
    const list = (await this.received()).filter((x) => x !== id);
    list.push(id);
    await writeJsonAtomic(this.path(FILES.received), list.slice(-RECEIVED_LIMIT));
  }
}
