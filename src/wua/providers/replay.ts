/**
 * A WUA provider that plays a transcript back (test/transcripts/*.jsonl): it says the recorded
 * hello, then answers each request it reads on stdin with the events recorded after the matching
 * request, in order, with the recorded request ids replaced by the live ones. The agent and the
 * client cannot tell it from wua.ps1, so a session recorded (or written down) once on Windows can
 * be re-run anywhere:
 *
 *   node --import tsx src/wua/providers/replay.ts test/transcripts/normal-install-reboot.jsonl
 *   PATCHLINE_PROVIDER_CMD='["node","--import","tsx","src/wua/providers/replay.ts","t.jsonl"]'
 *
 * A live request matches the oldest unplayed recorded request of the same type. When none is
 * left, the replay says so on stderr and exits with code 3, which the client reports as a crash
 * quoting that message. Lines of the form {"$comment": …} are notes for people and are skipped.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { PatchlineError, EXIT } from '../../domain/errors.ts';
import { ProtocolError, parseEvent, parseRequest, type ProviderEvent, type ProviderRequest } from '../protocol.ts';

/** One recorded request and the events the provider printed after it, up to the next request. */
export interface Exchange {
  readonly request: ProviderRequest;
  readonly events: readonly ProviderEvent[];
}

export interface Transcript {
  /** Events before the first request: the hello. */
  readonly preamble: readonly ProviderEvent[];
  readonly exchanges: readonly Exchange[];
}

/** Exit code when the transcript has no answer for a request (the test or agent diverged). */
export const EXIT_TRANSCRIPT_EXHAUSTED = 3;

/** Is this parsed line a note for people ({"$comment": "…"}) rather than a protocol line? */
export function isCommentRecord(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && '$comment' in value;
}

/**
 * Splits a transcript into the preamble and request/answer exchanges, validating every line
 * against the protocol. Throws TRANSCRIPT_INVALID naming the file and line.
 *
 * @example parseTranscript(readFileSync(file, 'utf8'), file).exchanges[0].request.type // 'rebootStatus'
 */
export function parseTranscript(text: string, source: string): Transcript {
  const preamble: ProviderEvent[] = [];
  const exchanges: { request: ProviderRequest; events: ProviderEvent[] }[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '') return;
    const where = `${source}:${index + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (cause) {
      throw new PatchlineError('TRANSCRIPT_INVALID', `${where} is not JSON: fix or remove the line`, {
        cause,
        context: { file: source, line: index + 1 },
      });
    }
    if (isCommentRecord(value)) return;
    try {
      if (typeof value === 'object' && value !== null && 'id' in value) {
        exchanges.push({ request: parseRequest(line), events: [] });
      } else {
        const event = parseEvent(line);
        const current = exchanges.at(-1);
        if (current) current.events.push(event);
        else preamble.push(event);
      }
    } catch (cause) {
      if (!(cause instanceof ProtocolError)) throw cause;
      throw new PatchlineError('TRANSCRIPT_INVALID', `${where} is not a protocol line: ${cause.message}`, {
        cause,
        context: { file: source, line: index + 1 },
      });
    }
  });
  if (preamble[0]?.type !== 'hello') {
    throw new PatchlineError(
      'TRANSCRIPT_INVALID',
      `${source} must start with the provider's hello event (after any $comment lines)`,
      { context: { file: source } },
    );
  }
  return { preamble, exchanges };
}

/**
 * The pure part of a replay: which recorded events answer a live request, with ids substituted.
 * Keeps the mapping from recorded to live request ids across requests (an abort's answer carries
 * the aborted request's result, under that request's live id).
 */
export class ReplaySession {
  private readonly played = new Set<number>();
  private readonly liveIds = new Map<string, string>();

  constructor(private readonly transcript: Transcript) {}

  /** The events to print at start (the hello). */
  preamble(): readonly ProviderEvent[] {
    return this.transcript.preamble;
  }

  /**
   * The events answering `request`, or null when the transcript has no unplayed request of its type.
   * `notes` receives differences between the live and the recorded request worth a line on stderr.
   */
  answer(
    request: ProviderRequest,
    notes: (message: string) => void = () => undefined,
  ): readonly ProviderEvent[] | null {
    const index = this.transcript.exchanges.findIndex((x, i) => !this.played.has(i) && x.request.type === request.type);
    if (index < 0) return null;
    this.played.add(index);
    const recorded = this.transcript.exchanges[index] as Exchange;
    this.liveIds.set(recorded.request.id, request.id);
    const difference = describeDifference(recorded.request, request, this.liveIds);
    if (difference)
      notes(
        `request ${request.id} (${request.type}) differs from the transcript's request ${recorded.request.id}: ${difference}`,
      );
    return recorded.events.map((event) => this.withLiveIds(event));
  }

  /** Recorded requests of the transcript not asked for yet. */
  unplayed(): readonly ProviderRequest[] {
    return this.transcript.exchanges.filter((_, i) => !this.played.has(i)).map((x) => x.request);
  }

  private withLiveIds(event: ProviderEvent): ProviderEvent {
    if (!('requestId' in event) || event.requestId === undefined) return event;
    const live = this.liveIds.get(event.requestId);
    return live === undefined ? event : { ...event, requestId: live };
  }
}

/** What differs between a recorded and a live request, ignoring ids (and mapped abort targets). */
function describeDifference(
  recorded: ProviderRequest,
  live: ProviderRequest,
  liveIds: ReadonlyMap<string, string>,
): string | null {
  const normalise = (r: ProviderRequest, mapTarget: boolean): string => {
    const { id: _id, ...rest } = r;
    if (rest.type === 'abort' && mapTarget)
      return JSON.stringify({ ...rest, targetId: liveIds.get(rest.targetId) ?? rest.targetId });
    return JSON.stringify(rest);
  };
  const a = normalise(recorded, true);
  const b = normalise(live, false);
  return a === b ? null : `recorded ${a}, live ${b}`;
}

/**
 * Serves a transcript over a pair of streams until `input` ends. Rejects with REPLAY_EXHAUSTED when
 * a request has no recorded answer.
 */
export async function serveReplay(
  transcript: Transcript,
  input: Readable,
  output: Writable,
  stderr: (line: string) => void,
): Promise<void> {
  const session = new ReplaySession(transcript);
  const write = (event: ProviderEvent): void => {
    output.write(`${JSON.stringify(event)}\n`);
  };
  session.preamble().forEach(write);
  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const raw of lines) {
    const line = raw.trim();
    if (line === '') continue;
    let request: ProviderRequest;
    try {
      request = parseRequest(line);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      // What wua.ps1 does with a line it cannot use: a warning, and go on.
      write({ type: 'warning', hresult: null, message: `ignored an invalid request: ${error.message}` });
      continue;
    }
    const events = session.answer(request, (note) => stderr(`replay: ${note}`));
    if (events === null) {
      const left =
        session
          .unplayed()
          .map((r) => r.type)
          .join(', ') || 'nothing';
      throw new PatchlineError(
        'REPLAY_EXHAUSTED',
        `the transcript has no unplayed ${request.type} request for live request ${request.id} (left: ${left}); the session diverged from the recording`,
        { context: { requestId: request.id, request: request.type } },
      );
    }
    events.forEach(write);
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const file = argv[0];
  if (file === undefined || argv.length !== 1) {
    process.stderr.write('usage: node --import tsx src/wua/providers/replay.ts TRANSCRIPT.jsonl\n');
    return EXIT.USAGE;
  }
  let transcript: Transcript;
  try {
    transcript = parseTranscript(readFileSync(file, 'utf8'), file);
  } catch (error) {
    process.stderr.write(`replay: ${(error as Error).message}\n`);
    return EXIT.USAGE;
  }
  try {
    await serveReplay(transcript, process.stdin, process.stdout, (line) => process.stderr.write(`${line}\n`));
    return EXIT.OK;
  } catch (error) {
    process.stderr.write(`replay: ${(error as Error).message}\n`);
    // Stop reading: an open stdin would keep the process alive after it gave up.
    process.stdin.destroy();
    return error instanceof PatchlineError && error.code === 'REPLAY_EXHAUSTED'
      ? EXIT_TRANSCRIPT_EXHAUSTED
      : EXIT.INTERNAL;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // exitCode, not exit(): stdout must drain before the process ends.
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
