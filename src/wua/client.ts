/**
 * The client side of the WUA provider protocol (src/wua/protocol.ts): starts or wraps a provider,
 * waits for its hello, sends requests with fresh ids, routes progress/warning events to the
 * request they belong to, and resolves each request with its one typed result.
 *
 * Every way a provider can go wrong ends as a PatchlineError, never as a hang: it exits or
 * crashes (PROVIDER_CRASHED, with exit code/signal and the tail of its stderr), prints garbage
 * (PROVIDER_PROTOCOL, quoting the line), never says hello (PROVIDER_NO_HELLO), speaks another
 * protocol version (PROVIDER_PROTOCOL_VERSION), or does not answer in time (PROVIDER_TIMEOUT —
 * after an `abort` for the late request was sent). A fatal failure rejects every pending request.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { PatchlineError } from '../domain/errors.ts';
import {
  PROTOCOL_VERSION,
  ProtocolError,
  parseEvent,
  type HelloEvent,
  type ProgressEvent,
  type ProviderRequest,
  type ProviderResult,
  type RequestType,
  type ResultOf,
  type WarningEvent,
} from './protocol.ts';

/** How a provider process ended. `error` is set when it could not be started at all. */
export interface ProviderExit {
  readonly code: number | null;
  readonly signal: string | null;
  readonly error?: string;
}

/** A running provider: its stdio and its end. Implemented by a child process or in memory. */
export interface ProviderChannel {
  /** The provider's stdin: requests go here. */
  readonly input: Writable;
  /** The provider's stdout: events come from here. */
  readonly output: Readable;
  readonly stderr?: Readable;
  kill(): void;
  /** Resolves once the provider ended and its output is closed. Never rejects. */
  readonly exited: Promise<ProviderExit>;
}

/** A request as the caller writes it: the client assigns the id. */
export type RequestBody = ProviderRequest extends infer R ? (R extends ProviderRequest ? Omit<R, 'id'> : never) : never;

export interface RequestOptions {
  /** Give up (after sending `abort` for it) when no result came within this time. */
  readonly timeoutMs: number;
  /**
   * Aborting sends `abort` for this request and waits (up to abortGraceMs) for its result,
   * which normally has resultCode `aborted`; the request then resolves with that result.
   */
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: ProgressEvent) => void;
  readonly onWarning?: (event: WarningEvent) => void;
}

export interface StartOptions {
  readonly helloTimeoutMs: number;
  /** How long close() waits for the provider to exit after its stdin closed before killing it. */
  readonly closeTimeoutMs?: number;
  /** How long an aborted or timed-out request waits for the provider's answer to `abort`. */
  readonly abortGraceMs?: number;
  /** Warnings that name no request (or a request no longer pending). */
  readonly onWarning?: (event: WarningEvent) => void;
}

/** A provider that got its stdin closed has this long to exit before it is killed. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;
/** WUA's RequestAbort is asynchronous: an install step can take a while to notice it. */
export const DEFAULT_ABORT_GRACE_MS = 30_000;
/** Bytes of stderr kept for crash messages: enough for a PowerShell exception with its position. */
const STDERR_TAIL_BYTES = 4_096;
/** After stdout ends, how long to wait for the exit status before reporting the crash without it. */
const EXIT_AFTER_EOF_MS = 2_000;
/** A killed in-memory or child provider should be gone well within this. */
const KILL_WAIT_MS = 2_000;

/**
 * Spawns a provider process with piped stdio.
 *
 * @example spawnProvider(['node', 'patchline.mjs', 'lab', 'provider', '--host', 'web01'])
 */
export function spawnProvider(
  argv: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): ProviderChannel {
  const [command, ...args] = argv;
  if (command === undefined)
    throw new PatchlineError(
      'PROVIDER_UNAVAILABLE',
      'the provider command is empty: give an argv with at least the program to run',
    );
  const child = spawn(command, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    windowsHide: true,
  });
  let spawnError: string | undefined;
  const exited = new Promise<ProviderExit>((resolve) => {
    child.once('error', (error) => {
      spawnError = `${command}: ${error.message}`;
      // A process that never started emits no 'close' on every Node version: settle here too.
      if (child.pid === undefined) resolve({ code: null, signal: null, error: spawnError });
    });
    child.once('close', (code, signal) => resolve({ code, signal, ...(spawnError ? { error: spawnError } : {}) }));
  });
  // Writing to a provider that died raises EPIPE on stdin; the exit is reported through `exited`.
  child.stdin.on('error', () => undefined);
  return {
    input: child.stdin,
    output: child.stdout,
    stderr: child.stderr,
    kill: () => {
      child.kill('SIGKILL');
    },
    exited,
  };
}

/**
 * Wires an in-process provider (the lab's `serveProvider(input, output, ctx)`) to the client over
 * in-memory streams: same interface as a child process, so the agent cannot tell them apart.
 *
 * @example inMemoryChannel((input, output) => serveProvider(input, output, ctx))
 */
export function inMemoryChannel(serve: (input: Readable, output: Writable) => Promise<void>): ProviderChannel {
  const toProvider = new PassThrough();
  const fromProvider = new PassThrough();
  let settle!: (exit: ProviderExit) => void;
  const exited = new Promise<ProviderExit>((resolve) => {
    settle = resolve;
  });
  // Like a dead child's stdin: a write after the provider ended is reported through `exited`.
  toProvider.on('error', () => undefined);
  let ended = false;
  const end = (exit: ProviderExit): void => {
    if (ended) return;
    ended = true;
    fromProvider.end();
    toProvider.destroy();
    settle(exit);
  };
  // Start on the next tick so the caller attaches its readers first (as with a real process).
  queueMicrotask(() => {
    serve(toProvider, fromProvider).then(
      () => end({ code: 0, signal: null }),
      (error: unknown) => end({ code: 1, signal: null, error: error instanceof Error ? error.message : String(error) }),
    );
  });
  return { input: toProvider, output: fromProvider, kill: () => end({ code: null, signal: 'SIGKILL' }), exited };
}

interface Pending {
  readonly type: RequestType;
  readonly options: RequestOptions;
  readonly resolve: (result: ProviderResult) => void;
  readonly reject: (error: Error) => void;
}

/**
 * One conversation with one provider.
 *
 * @example
 *   const client = await WuaClient.start(spawnProvider(argv), { helloTimeoutMs: 30_000 });
 *   const found = await client.request({ type: 'search', criteria, serverSelection: 'default' }, { timeoutMs });
 *   await client.close();
 */
export class WuaClient {
  private readonly pending = new Map<string, Pending>();
  /** Ids we stopped waiting for (timed out); their late results are dropped, not protocol errors. */
  private readonly abandoned = new Set<string>();
  private nextId = 1;
  private failure: PatchlineError | null = null;
  private closing = false;
  private closed: Promise<void> | null = null;
  private stderrTail = '';
  private helloWaiter: { resolve: (hello: HelloEvent) => void; reject: (error: Error) => void } | null = null;
  private helloEvent: HelloEvent | null = null;

  private constructor(
    private readonly channel: ProviderChannel,
    private readonly options: StartOptions,
  ) {}

  /** The provider's hello (name, version, computer name). */
  get hello(): HelloEvent {
    if (!this.helloEvent) throw new Error('WuaClient used before start() resolved');
    return this.helloEvent;
  }

  /** Starts listening on the channel and waits for the provider's hello. Kills it on failure. */
  static async start(channel: ProviderChannel, options: StartOptions): Promise<WuaClient> {
    const client = new WuaClient(channel, options);
    const hello = new Promise<HelloEvent>((resolve, reject) => {
      client.helloWaiter = { resolve, reject };
    });
    client.listen();
    const timer = setTimeout(() => {
      client.fail(
        new PatchlineError(
          'PROVIDER_NO_HELLO',
          `the WUA provider said nothing within ${options.helloTimeoutMs} ms of starting: check that it runs by hand` +
            ` (PATCHLINE_PROVIDER_CMD or powershell.exe wua.ps1)${client.stderrSuffix()}`,
          { context: { helloTimeoutMs: options.helloTimeoutMs } },
        ),
      );
    }, options.helloTimeoutMs);
    try {
      client.helloEvent = await hello;
      return client;
    } catch (error) {
      await client.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends one request and resolves with its result (whatever its resultCode: a `failed` result
   * is the provider's answer, not an exception). Rejects with a PatchlineError on timeout or when
   * the provider fails.
   */
  request<B extends RequestBody>(body: B, options: RequestOptions): Promise<ResultOf<B['type']>> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing)
      return Promise.reject(
        new PatchlineError(
          'PROVIDER_CLOSED',
          'the WUA provider was closed before this request: this is a bug in the caller',
        ),
      );
    const id = String(this.nextId++);
    const request = { ...body, id } as ProviderRequest;
    return new Promise<ResultOf<B['type']>>((resolve, reject) => {
      let graceTimer: NodeJS.Timeout | undefined;
      const cleanup = (): void => {
        clearTimeout(timer);
        clearTimeout(graceTimer);
        options.signal?.removeEventListener('abort', onAbort);
        this.pending.delete(id);
      };
      const onAbort = (): void => {
        this.sendAbort(id);
        // Wait for the aborted result, bounded: a provider that ignores abort must not hang us.
        clearTimeout(timer);
        graceTimer = setTimeout(() => {
          cleanup();
          this.abandoned.add(id);
          reject(
            new PatchlineError(
              'PROVIDER_ABORT_TIMEOUT',
              `the WUA provider did not confirm the abort of ${body.type} (request ${id}) within ${this.abortGraceMs()} ms`,
              { context: { requestId: id, request: body.type } },
            ),
          );
        }, this.abortGraceMs());
      };
      this.pending.set(id, {
        type: body.type,
        options,
        resolve: (result) => {
          cleanup();
          resolve(result as ResultOf<B['type']>);
        },
        reject: (error) => {
          cleanup();
          reject(error);
        },
      });
      const timer = setTimeout(() => {
        this.sendAbort(id);
        cleanup();
        this.abandoned.add(id);
        reject(
          new PatchlineError(
            'PROVIDER_TIMEOUT',
            `the WUA provider did not answer ${body.type} (request ${id}) within ${options.timeoutMs} ms; an abort was sent.` +
              ' Windows Update may be stuck: check the host (services, disk space) or raise the timeout',
            { context: { requestId: id, request: body.type, timeoutMs: options.timeoutMs } },
          ),
        );
      }, options.timeoutMs);
      this.write(request);
      if (options.signal?.aborted) onAbort();
      else options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Closes the provider's stdin, waits (bounded) for it to exit, then kills it. Pending requests
   * reject with PROVIDER_CLOSED. Idempotent; safe after a failure.
   */
  close(): Promise<void> {
    this.closed ??= this.doClose();
    return this.closed;
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    this.rejectAll(new PatchlineError('PROVIDER_CLOSED', 'the WUA provider was closed while this request was running'));
    this.channel.input.end();
    const timeoutMs = this.options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    if (!(await settlesWithin(this.channel.exited, timeoutMs))) {
      this.channel.kill();
      await settlesWithin(this.channel.exited, KILL_WAIT_MS);
    }
  }

  private abortGraceMs(): number {
    return this.options.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS;
  }

  private listen(): void {
    this.channel.stderr?.setEncoding('utf8');
    this.channel.stderr?.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-STDERR_TAIL_BYTES);
    });
    const lines = createInterface({ input: this.channel.output, crlfDelay: Infinity });
    lines.on('line', (line) => this.onLine(line));
    lines.on('close', () => {
      void this.onOutputEnd();
    });
    void this.channel.exited.then((exit) => this.onExit(exit));
  }

  private onLine(line: string): void {
    if (this.failure || line.trim() === '') return;
    let event;
    try {
      event = parseEvent(line.trim());
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.protocolFailure(`the WUA provider printed a line that is not part of the protocol: ${error.message}`, error);
      return;
    }
    switch (event.type) {
      case 'hello':
        if (event.protocol !== PROTOCOL_VERSION) {
          this.fail(
            new PatchlineError(
              'PROVIDER_PROTOCOL_VERSION',
              `the WUA provider ${event.provider} ${event.version} speaks protocol ${event.protocol}, this agent speaks ${PROTOCOL_VERSION}:` +
                ' deploy the provider that ships with this agent',
              { context: { provider: event.provider, protocol: event.protocol } },
            ),
          );
          this.channel.kill();
        } else if (this.helloWaiter) {
          this.helloWaiter.resolve(event);
          this.helloWaiter = null;
        } else {
          this.protocolFailure(`the WUA provider said hello twice: ${quote(line)}`);
        }
        return;
      case 'progress':
        this.pending.get(event.requestId)?.options.onProgress?.(event);
        return;
      case 'warning': {
        const owner = event.requestId === undefined ? undefined : this.pending.get(event.requestId);
        (owner?.options.onWarning ?? this.options.onWarning)?.(event);
        return;
      }
      default:
        this.onResult(event, line);
    }
  }

  private onResult(result: ProviderResult, line: string): void {
    if (this.helloWaiter) {
      this.protocolFailure(`the WUA provider answered before its hello: ${quote(line)}`);
      return;
    }
    const pending = this.pending.get(result.requestId);
    if (!pending) {
      if (this.abandoned.delete(result.requestId)) return;
      this.protocolFailure(
        `the WUA provider answered request ${result.requestId}, which is not pending: ${quote(line)}`,
      );
      return;
    }
    if (pending.type !== result.request) {
      this.protocolFailure(
        `the WUA provider answered ${pending.type} request ${result.requestId} with a ${result.request} result: ${quote(line)}`,
      );
      return;
    }
    pending.resolve(result);
  }

  private async onOutputEnd(): Promise<void> {
    // The exit status usually follows stdout's end at once; report the crash with it when it does.
    if (!(await settlesWithin(this.channel.exited, EXIT_AFTER_EOF_MS)) && !this.closing) {
      this.fail(this.crashError({ code: null, signal: null }, 'closed its output'));
      this.channel.kill();
    }
  }

  private onExit(exit: ProviderExit): void {
    if (this.closing) return;
    this.fail(this.crashError(exit, 'exited'));
  }

  private crashError(exit: ProviderExit, what: string): PatchlineError {
    const how = exit.error
      ? `failed (${exit.error})`
      : exit.signal
        ? `${what} on signal ${exit.signal}`
        : exit.code !== null
          ? `${what} with code ${exit.code}`
          : what;
    const busy = this.pending.size > 0 ? ` while ${[...this.pending.values()].map((p) => p.type).join(', ')} ran` : '';
    return new PatchlineError('PROVIDER_CRASHED', `the WUA provider ${how}${busy}${this.stderrSuffix()}`, {
      context: {
        ...(exit.code !== null ? { exitCode: exit.code } : {}),
        ...(exit.signal ? { signal: exit.signal } : {}),
      },
    });
  }

  private stderrSuffix(): string {
    const tail = this.stderrTail.trim();
    return tail ? `; its stderr ended with: ${tail.slice(-1_000)}` : '';
  }

  private protocolFailure(message: string, cause?: unknown): void {
    this.fail(
      new PatchlineError(
        'PROVIDER_PROTOCOL',
        `${message} — the provider and this agent do not match, or the provider printed debug output to stdout`,
        { cause },
      ),
    );
    this.channel.kill();
  }

  /** Marks the client failed (first failure wins) and rejects everything waiting. */
  private fail(error: PatchlineError): void {
    if (this.failure) return;
    this.failure = error;
    this.helloWaiter?.reject(error);
    this.helloWaiter = null;
    this.rejectAll(error);
  }

  private rejectAll(error: Error): void {
    for (const pending of [...this.pending.values()]) pending.reject(error);
  }

  private sendAbort(targetId: string): void {
    if (this.failure || this.closing) return;
    // The abort's own result is not waited for: the target's result (aborted) is what matters.
    this.abandoned.add(String(this.nextId));
    this.write({ id: String(this.nextId++), type: 'abort', targetId });
  }

  private write(request: ProviderRequest): void {
    // A provider that is gone is reported by onExit/onOutputEnd; writing to it would only error.
    if (!this.channel.input.writable) return;
    this.channel.input.write(`${JSON.stringify(request)}\n`);
  }
}

function quote(line: string, max = 200): string {
  return JSON.stringify(line.length > max ? `${line.slice(0, max)}…` : line);
}

/** True when the promise settled within the time, false otherwise; the timer never keeps the process up. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
