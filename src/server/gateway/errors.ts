/**
 * The agent gateway's errors: `GatewayError` (a status and a stable code from docs/errors.md) and
 * how any error a route throws becomes the `{ error: { code, message } }` answer.
 */
import type { FastifyError, FastifyReply } from 'fastify';
import { AGENT_PROTOCOL_VERSION, MAX_REPORT_BYTES } from '../../domain/agent-protocol.ts';

/** An error the gateway answers with; `statusCode` and a stable `code`. */
export class GatewayError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The refusal of an enrollment, by the store's reason. */
export function enrollRefused(code: string): GatewayError {
  switch (code) {
    case 'ENROLL_TOKEN_EXPIRED':
      return new GatewayError(
        403,
        'ENROLL_TOKEN_EXPIRED',
        'the enrollment token has expired: create a new one with `patchline server enroll-token create`',
      );
    case 'ENROLL_TOKEN_USED_UP':
      return new GatewayError(
        403,
        'ENROLL_TOKEN_USED_UP',
        'the enrollment token was single-use and is used up: create a new one',
      );
    case 'ENROLL_HOST_REVOKED':
      return new GatewayError(
        403,
        'ENROLL_HOST_REVOKED',
        'this host was revoked: an administrator must re-admit it before it can enroll again',
      );
    default:
      return new GatewayError(
        403,
        'ENROLL_TOKEN_UNKNOWN',
        'the server does not know this enrollment token (revoked, or from another server)',
      );
  }
}

/** Turns any error into the gateway's JSON error; validation and size errors are 400 with stable codes. */
export function replyError(reply: FastifyReply, error: FastifyError | GatewayError): FastifyReply {
  if (error instanceof GatewayError)
    return reply.code(error.statusCode).send({ error: { code: error.code, message: error.message } });
  if (error.validation) {
    return reply.code(400).send({
      error: {
        code: 'AGENT_REQUEST_INVALID',
        message: `the request does not match the agent protocol (version ${AGENT_PROTOCOL_VERSION}): ${error.message}`,
      },
    });
  }
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return reply.code(400).send({
      error: {
        code: 'AGENT_REPORT_TOO_LARGE',
        message: `the request body is larger than ${MAX_REPORT_BYTES} bytes: send a delta report, or fewer updates`,
      },
    });
  }
  if (
    error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ||
    error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ||
    (error.statusCode === 400 && error instanceof SyntaxError)
  ) {
    return reply.code(400).send({
      error: { code: 'AGENT_REQUEST_INVALID', message: `the request body is not valid JSON: ${error.message}` },
    });
  }
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return reply.code(400).send({ error: { code: 'AGENT_REQUEST_INVALID', message: error.message } });
  }
  reply.log.error({ err: error }, 'agent gateway: internal error');
  return reply
    .code(500)
    .send({ error: { code: 'INTERNAL', message: 'internal error in the agent gateway (logged on the server)' } });
}
