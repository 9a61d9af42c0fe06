/**
 * The API's error catalogue: every refusal is `{ "error": { "code", "message" } }` with a stable
 * code from docs/errors.md ("Fleet server API") and an HTTP status. Routes throw `ApiError`;
 * `errorHandler` turns it — and Fastify's own validation, body-size and parse errors — into that
 * shape. Anything else is logged with its cause and answered 500 INTERNAL without details.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { PatchlineError } from '../domain/errors.ts';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    /** Machine-readable detail the console shows next to a field (e.g. policy problems). */
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const badRequest = (code: string, message: string, details?: unknown): ApiError =>
  new ApiError(400, code, message, details);
export const notFound = (code: string, message: string): ApiError => new ApiError(404, code, message);
export const conflict = (code: string, message: string): ApiError => new ApiError(409, code, message);

/** The JSON body of every error answer (also the OpenAPI schema's shape). */
export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly details?: unknown };
}

const body = (code: string, message: string, details?: unknown): ErrorBody => ({
  error: details === undefined ? { code, message } : { code, message, details },
});

/** Fastify error codes of request parsing, mapped to ours. */
const FASTIFY_CODES: Readonly<Record<string, readonly [number, string, string]>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'BODY_TOO_LARGE', 'The request body is larger than this endpoint accepts.'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json.'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'REQUEST_MALFORMED', 'The JSON body is empty.'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'REQUEST_MALFORMED', 'The body is not valid JSON.'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'REQUEST_MALFORMED', 'Content-Length does not match the body.'],
};

export function errorHandler(
  error: FastifyError | ApiError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  if (error instanceof ApiError) {
    if (error.statusCode >= 500) request.log.error({ err: error }, error.message);
    void reply.status(error.statusCode).send(body(error.code, error.message, error.details));
    return;
  }
  const fe = error as FastifyError;
  if (fe.validation) {
    // e.g. "body must NOT have additional properties (color)".
    const extra = fe.validation
      .map((v) => (v.params as { additionalProperty?: string } | undefined)?.additionalProperty)
      .filter(Boolean);
    const message = `${fe.message}${extra.length ? ` (${extra.join(', ')})` : ''}`;
    void reply.status(400).send(body('REQUEST_INVALID', message));
    return;
  }
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) {
    void reply.status(mapped[0]).send(body(mapped[1], mapped[2]));
    return;
  }
  if (fe.statusCode === 429) {
    void reply.status(429).send(body('RATE_LIMITED', fe.message || 'Too many requests; wait and try again.'));
    return;
  }
  if (error instanceof PatchlineError) {
    // A domain error that reached the API (e.g. a catalog sync refused the cab): the code is ours.
    request.log.warn({ err: error }, error.message);
    void reply.status(error.exitCode === 64 ? 400 : 502).send(body(error.code, error.message));
    return;
  }
  if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) {
    void reply.status(fe.statusCode).send(body('REQUEST_INVALID', fe.message));
    return;
  }
  request.log.error({ err: error }, 'request failed');
  void reply
    .status(500)
    .send(body('INTERNAL', 'The server failed to handle this request; the server log has the details.'));
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): void {
  void reply.status(404).send(body('NOT_FOUND', `No such endpoint: ${request.method} ${request.url.split('?')[0]}`));
}
