/**
 * Making the cycle's log safe before the host reboots (docs/internals.md §3–4). The log is safe
 * when the connector acknowledged its last event over the HTTP callback, or a reader took the
 * whole log from the pipe; if neither happens within logHandoverTimeoutSeconds (or neither is
 * configured) the log is written to `<log dir>/<runId>-<host>-<cycle>.jsonl`, where
 * `transport.fetchLog` looks next.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, win32 } from 'node:path';
import type { AgentEvent, CycleRequest } from '../domain/agent-log.ts';
import { PatchlineError } from '../domain/errors.ts';
import type { HttpCallbackSink } from './sinks/http-sink.ts';
import { serveLogOnPipe } from './sinks/pipe-server.ts';

export type HandoverResult =
  { readonly via: 'callback' } | { readonly via: 'pipe' } | { readonly via: 'file'; readonly path: string };

export interface HandoverOptions {
  readonly request: Pick<CycleRequest, 'runId' | 'host' | 'cycle' | 'pipePath'>;
  /** The whole log; its last event is the one that must be acknowledged. */
  readonly events: () => readonly AgentEvent[];
  readonly http?: HttpCallbackSink;
  readonly logDir: string;
  readonly timeoutMs: number;
  readonly report?: (message: string) => void;
  readonly platform?: NodeJS.Platform;
  /**
   * The agent itself is going away (in-process agents whose virtual host reboots or powers off:
   * what killing the process does to a real agent). Aborting it stops the wait at once, with
   * LOG_HANDOVER_ABANDONED and no file written.
   */
  readonly abandon?: AbortSignal;
}

/**
 * Where the log file goes when nobody takes the log: PATCHLINE_LOG_DIR, else
 * %ProgramData%\Patchline\logs on Windows (SYSTEM can write there, admins can read it), else the
 * OS temp dir.
 */
export function resolveLogDir(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): string {
  if (env.PATCHLINE_LOG_DIR) return env.PATCHLINE_LOG_DIR;
  if (platform === 'win32') return win32.join(env.ProgramData ?? 'C:\\ProgramData', 'Patchline', 'logs');
  return tmpdir();
}

/** `<dir>/<runId>-<host>-<cycle>.jsonl`; characters no file system accepts become `_`. */
export function fallbackLogPath(dir: string, request: Pick<CycleRequest, 'runId' | 'host' | 'cycle'>): string {
  const safe = (s: string): string => s.replace(/[/\\:*?"<>|]/g, '_');
  return join(dir, `${safe(request.runId)}-${safe(request.host)}-${request.cycle}.jsonl`);
}

/**
 * Waits until the log is safe, by whichever way comes first; never longer than timeoutMs before
 * falling back to the file. Throws LOG_HANDOVER_FAILED only when even the file cannot be written
 * (then the host must not reboot: the log would be lost).
 *
 * @example const safe = await waitUntilLogSafe({ request, events: () => log.events(), http, logDir, timeoutMs: 300_000 });
 */
export async function waitUntilLogSafe(options: HandoverOptions): Promise<HandoverResult> {
  const report = options.report ?? (() => undefined);
  const lastSeq = options.events().at(-1)?.seq ?? 0;
  const stop = new AbortController();
  const waits: Promise<HandoverResult | null>[] = [];
  if (options.http && !options.http.stopReason) {
    waits.push(options.http.waitForAck(lastSeq, stop.signal).then((ok) => (ok ? { via: 'callback' } : null)));
  }
  const pipe = options.request.pipePath
    ? serveLogOnPipe(options.request.pipePath, options.events, options.platform)
    : null;
  if (pipe) {
    waits.push(
      pipe.listening.then(
        () => pipe.taken.then(() => ({ via: 'pipe' }) as const),
        (error: unknown) => {
          report(`cannot serve the log on ${options.request.pipePath}: ${(error as Error).message}`);
          return null;
        },
      ),
    );
  }
  let timer: NodeJS.Timeout | undefined;
  let onAbandon: (() => void) | undefined;
  const abandoned = new Promise<'abandoned'>((resolve) => {
    onAbandon = () => resolve('abandoned');
    if (options.abandon?.aborted) resolve('abandoned');
    else options.abandon?.addEventListener('abort', onAbandon, { once: true });
  });
  try {
    if (waits.length > 0) {
      const timeout = new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), options.timeoutMs);
      });
      const safe = await Promise.race([firstNonNull(waits), timeout, abandoned]);
      if (safe === 'abandoned') throw abandonedError();
      if (safe) return safe;
    }
  } finally {
    clearTimeout(timer);
    if (onAbandon) options.abandon?.removeEventListener('abort', onAbandon);
    stop.abort();
    await pipe?.close();
  }
  if (options.abandon?.aborted) throw abandonedError();
  return { via: 'file', path: writeLogFile(options) };
}

function abandonedError(): PatchlineError {
  return new PatchlineError(
    'LOG_HANDOVER_ABANDONED',
    'the agent was killed (its host is rebooting or powered off) before its log was handed over; the connector reads what it can',
  );
}

/** Resolves with the first non-null value, or null once all resolved null. */
async function firstNonNull<T>(promises: readonly Promise<T | null>[]): Promise<T | null> {
  return new Promise((resolve) => {
    let pending = promises.length;
    for (const p of promises) {
      void p.then((value) => {
        if (value !== null) resolve(value);
        else if (--pending === 0) resolve(null);
      });
    }
  });
}

function writeLogFile(options: HandoverOptions): string {
  const path = fallbackLogPath(options.logDir, options.request);
  const temp = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(options.logDir, { recursive: true });
    // Temp file + rename: fetchLog never reads half a log.
    writeFileSync(
      temp,
      options
        .events()
        .map((e) => `${JSON.stringify(e)}\n`)
        .join(''),
    );
    renameSync(temp, path);
    return path;
  } catch (error) {
    throw new PatchlineError(
      'LOG_HANDOVER_FAILED',
      `nobody took the cycle log and it could not be written to ${path}: set PATCHLINE_LOG_DIR to a writable directory. The host was not rebooted`,
      { cause: error, context: { path } },
    );
  }
}
