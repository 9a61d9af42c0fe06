/**
 * Reading the CycleRequest file the connector left on the target: one TypeBox schema validates
 * it and names the first bad field, so a connector/agent version mismatch is a clear usage error
 * (exit 64) instead of a cycle that does something else than asked.
 */
import { readFile } from 'node:fs/promises';
import { Type, type Static, type TLiteral, type TUnion } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { MODES, REBOOT_POLICIES, type CycleRequest } from '../domain/agent-log.ts';
import { usageError } from '../domain/errors.ts';
import { SERVER_SELECTIONS } from '../wua/protocol.ts';

const literals = <const T extends readonly string[]>(values: T) =>
  Type.Union(values.map((v) => Type.Literal(v))) as unknown as TUnion<TLiteral<T[number]>[]>;
const Strings = Type.Array(Type.String());

export const UpdateFiltersSchema = Type.Object({
  classifications: Type.Optional(Strings),
  severities: Type.Optional(Strings),
  products: Type.Optional(Strings),
  kbs: Type.Optional(Strings),
  excludeKbs: Type.Optional(Strings),
  updateIds: Type.Optional(Strings),
  excludeUpdateIds: Type.Optional(Strings),
  title: Type.Optional(Type.String()),
  includeOptional: Type.Optional(Type.Boolean()),
  includeDrivers: Type.Optional(Type.Boolean()),
  minAgeDays: Type.Optional(Type.Number({ minimum: 0 })),
});

export const CycleRequestSchema = Type.Object({
  runId: Type.String({ minLength: 1 }),
  host: Type.String({ minLength: 1 }),
  cycle: Type.Integer({ minimum: 1 }),
  mode: literals(MODES),
  reboot: literals(REBOOT_POLICIES),
  filters: UpdateFiltersSchema,
  exclude: Strings,
  installedEarlier: Strings,
  serverSelection: literals(SERVER_SELECTIONS),
  offlineCabPath: Type.Optional(Type.String({ minLength: 1 })),
  installerBusyTimeoutSeconds: Type.Number({ minimum: 0 }),
  callback: Type.Optional(
    Type.Object({ url: Type.String({ pattern: '^https?://' }), token: Type.String({ minLength: 1 }) }),
  ),
  pipePath: Type.Optional(Type.String({ minLength: 1 })),
  logFile: Type.Optional(Type.String({ minLength: 1 })),
  logHandoverTimeoutSeconds: Type.Number({ minimum: 0 }),
});

const check = TypeCompiler.Compile(CycleRequestSchema);
/** Enough to see a pattern (e.g. an older connector's field names) without a wall of text. */
const MAX_REPORTED_ERRORS = 5;

/** Validates a parsed request; throws BAD_CYCLE_REQUEST naming the first bad field. */
export function parseCycleRequest(value: unknown, source = 'the cycle request'): CycleRequest {
  if (!check.Check(value)) {
    const problems = [...check.Errors(value)]
      .slice(0, MAX_REPORTED_ERRORS)
      .map((e) => `${e.path || '/'}: ${e.message}`);
    throw usageError(
      'BAD_CYCLE_REQUEST',
      `${source} is invalid (${problems.join('; ')}); the connector and the agent must be the same Patchline version`,
    );
  }
  if (value.filters.title !== undefined) {
    try {
      new RegExp(value.filters.title, 'i');
    } catch (error) {
      throw usageError(
        'BAD_CYCLE_REQUEST',
        `${source} has a title filter that is not a regular expression: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  if (value.serverSelection === 'offline' && value.offlineCabPath === undefined) {
    throw usageError(
      'BAD_CYCLE_REQUEST',
      `${source} asks for an offline scan without offlineCabPath: give the path of wsusscn2.cab on the target`,
    );
  }
  return value;
}

/** Reads and validates the request file. Never logs the callback token. */
export async function readCycleRequest(path: string): Promise<CycleRequest> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw usageError('BAD_CYCLE_REQUEST', `cannot read the cycle request ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    throw usageError('BAD_CYCLE_REQUEST', `the cycle request ${path} is not JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return parseCycleRequest(value, `the cycle request ${path}`);
}

// Compile-time check: every valid request file is a CycleRequest.
const _assignable: CycleRequest = {} as Static<typeof CycleRequestSchema>;
void _assignable;
