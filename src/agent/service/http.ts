/**
 * The agent's one HTTP client to its server: keep-alive connections, the server's TLS certificate
 * pinned by the sha256 fingerprint carried in the enrollment token (there is no "trust any
 * certificate" switch), plain HTTP only to a loopback address (the lab, a local test). Errors are
 * classified here once, so the service's retry table reads `retryable` instead of guessing.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, stat, unlink, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { pipeline } from 'node:stream/promises';
import { Agent, buildConnector, request, type Dispatcher } from 'undici';
import { normalizeFingerprint, type ErrorBody } from '../../domain/agent-protocol.ts';
import { PatchlineError } from '../../domain/errors.ts';

/** A request that got no answer in this long is dropped and retried (a held check-in adds its wait). */
export const REQUEST_TIMEOUT_MS = 30_000;

export interface AgentHttpOptions {
  readonly serverUrl: string;
  /** sha256 of the server's certificate (hex, colons allowed); null only for http:// on loopback. */
  readonly fingerprint: string | null;
  readonly credential?: string;
}

/** An answer the server gave (status ≥ 400) or a failure to get one. */
export class AgentHttpError extends PatchlineError {
  constructor(
    code: string,
    message: string,
    readonly status: number | null,
    readonly retryable: boolean,
    options: { cause?: unknown } = {},
  ) {
    super(code, message, options.cause === undefined ? {} : { cause: options.cause });
  }
}

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

export class AgentHttp {
  private readonly base: URL;
  private readonly dispatcher: Dispatcher;
  private credential: string | undefined;

  constructor(options: AgentHttpOptions) {
    this.base = new URL(options.serverUrl);
    this.credential = options.credential;
    if (this.base.protocol === 'http:') {
      if (!isLoopback(this.base.hostname)) {
        throw new PatchlineError(
          'AGENT_INSECURE_SERVER',
          `${options.serverUrl}: plain HTTP is only allowed to a loopback address; use the server's https:// URL`,
          { exitCode: 64 },
        );
      }
      this.dispatcher = new Agent({ keepAliveTimeout: 60_000, connections: 2 });
      return;
    }
    if (this.base.protocol !== 'https:')
      throw new PatchlineError('AGENT_INSECURE_SERVER', `${options.serverUrl} is not an http(s) URL`, { exitCode: 64 });
    const pinned = options.fingerprint === null ? null : normalizeFingerprint(options.fingerprint);
    if (pinned === null)
      throw new PatchlineError(
        'AGENT_TLS_PIN_MISSING',
        'the enrollment token carries no certificate fingerprint for an https:// server: create the token on that server',
        { exitCode: 64 },
      );
    // The chain is not checked against a CA store: the pin is stronger (this exact certificate).
    const connect = buildConnector({ rejectUnauthorized: false });
    this.dispatcher = new Agent({
      keepAliveTimeout: 60_000,
      connections: 2,
      connect: (opts, callback) =>
        connect(opts, (error, socket) => {
          if (error) return callback(error, null);
          const presented = normalizeFingerprint((socket as TLSSocket).getPeerCertificate?.()?.fingerprint256 ?? '');
          if (presented !== pinned) {
            socket.destroy();
            return callback(
              new AgentHttpError(
                'AGENT_TLS_PIN_MISMATCH',
                `the server presented certificate ${presented || '(none)'}, not the pinned ${pinned}: ` +
                  "someone may be intercepting, or the server's certificate changed (enroll again with a new token)",
                null,
                true,
              ),
              null,
            );
          }
          return callback(null, socket);
        }),
    });
  }

  setCredential(credential: string): void {
    this.credential = credential;
  }

  /** POST/GET JSON; resolves with the parsed body of a 2xx, throws AgentHttpError otherwise. */
  async json<T>(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    signal: AbortSignal,
    timeoutMs = REQUEST_TIMEOUT_MS,
  ): Promise<{ status: number; body: T }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.credential) headers.authorization = `Bearer ${this.credential}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Dispatcher.ResponseData;
    try {
      res = await request(new URL(path, this.base), {
        method,
        headers,
        dispatcher: this.dispatcher,
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      throw this.transportError(error, path);
    }
    const text = await res.body.text();
    if (res.statusCode >= 400) throw answerError(res.statusCode, text, path);
    return { status: res.statusCode, body: (text === '' ? null : JSON.parse(text)) as T };
  }

  /**
   * Downloads `path` to `dest`, resuming a `dest.partial` left by an earlier attempt (Range +
   * If-Range on the digest ETag), and keeps it only if its digest matches: a file that does not
   * match is deleted, never used.
   */
  async download(
    path: string,
    dest: string,
    digest: { algorithm: 'sha1' | 'sha256'; hex: string },
    signal: AbortSignal,
  ): Promise<void> {
    const partial = `${dest}.partial`;
    const have = await stat(partial).then(
      (s) => s.size,
      () => 0,
    );
    const headers: Record<string, string> = {};
    if (this.credential) headers.authorization = `Bearer ${this.credential}`;
    if (have > 0) Object.assign(headers, { range: `bytes=${have}-`, 'if-range': `"${digest.hex}"` });
    let res: Dispatcher.ResponseData;
    try {
      res = await request(new URL(path, this.base), { method: 'GET', headers, dispatcher: this.dispatcher, signal });
    } catch (error) {
      throw this.transportError(error, path);
    }
    if (res.statusCode >= 400) throw answerError(res.statusCode, await res.body.text(), path);
    const append = res.statusCode === 206;
    try {
      await pipeline(res.body, createWriteStream(partial, { flags: append ? 'a' : 'w' }), { signal });
    } catch (error) {
      throw new AgentHttpError(
        'AGENT_DOWNLOAD_INTERRUPTED',
        `the download of ${path} broke off; it resumes on the next attempt`,
        null,
        true,
        { cause: error },
      );
    }
    const actual = createHash(digest.algorithm)
      .update(await readFile(partial))
      .digest('hex');
    if (actual !== digest.hex.toLowerCase()) {
      await unlink(partial);
      throw new AgentHttpError(
        'AGENT_DOWNLOAD_DIGEST_MISMATCH',
        `${path} does not match its ${digest.algorithm} ${digest.hex} (got ${actual}): deleted, it is fetched again`,
        null,
        true,
      );
    }
    await rename(partial, dest);
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  private transportError(error: unknown, path: string): AgentHttpError {
    if (error instanceof AgentHttpError) return error;
    const cause = (error as { cause?: unknown }).cause;
    if (cause instanceof AgentHttpError) return cause;
    return new AgentHttpError(
      'AGENT_SERVER_UNREACHABLE',
      `${this.base.origin}${path}: ${(error as Error).message}`,
      null,
      true,
      { cause: error },
    );
  }
}

/** A 4xx/5xx answer: 5xx, 429 and 408 are retried; other 4xx are the agent's fault and are not. */
function answerError(status: number, text: string, path: string): AgentHttpError {
  let code = `HTTP_${status}`;
  let message = text.slice(0, 300);
  try {
    const body = JSON.parse(text) as ErrorBody;
    if (body?.error?.code) ({ code, message } = body.error);
  } catch {
    // Not our JSON (a proxy's error page): keep the start of the text as the message.
    message = `${path}: HTTP ${status}: ${message}`;
  }
  const retryable = status >= 500 || status === 429 || status === 408;
  return new AgentHttpError(code, message, status, retryable);
}
