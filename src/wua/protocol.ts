/**
 * The JSON-lines protocol between the agent and a WUA provider (DESIGN.md §4).
 *
 * The agent writes one request object per line to the provider's stdin; the provider writes one
 * event object per line to stdout: a `hello` first, then `progress`/`warning` events while a
 * request runs, and exactly one `result` per request. Both the PowerShell provider (real
 * Windows) and the lab's simulated provider speak exactly this, so the agent cannot tell them
 * apart. One schema gives both the TypeScript types and the runtime validation.
 *
 * Example exchange:
 *   ← {"type":"hello","protocol":1,"provider":"lab","version":"0.1.0","computerName":"web01"}
 *   → {"id":"1","type":"search","criteria":"IsInstalled=0 and IsHidden=0","serverSelection":"default"}
 *   ← {"type":"progress","requestId":"1","phase":"search","percent":100}
 *   ← {"type":"result","requestId":"1","request":"search","resultCode":"succeeded","hresult":null,"data":{"updates":[…]}}
 */
import { Type, type Static, type TLiteral, type TSchema, type TUnion } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { UpdateRecord } from '../domain/update.ts';

export const PROTOCOL_VERSION = 1;

/** OperationResultCode (wuapi.h): orcNotStarted=0 … orcAborted=5. */
export const OPERATION_RESULT_CODES = [
  'notStarted',
  'inProgress',
  'succeeded',
  'succeededWithErrors',
  'failed',
  'aborted',
] as const;
export type OperationResultCode = (typeof OPERATION_RESULT_CODES)[number];

/** ServerSelection plus the offline scan package (ssOthers with an AddScanPackageService cab). */
export const SERVER_SELECTIONS = ['default', 'managedServer', 'windowsUpdate', 'microsoftUpdate', 'offline'] as const;
export type ServerSelection = (typeof SERVER_SELECTIONS)[number];

const literals = <const T extends readonly string[]>(values: T) =>
  Type.Union(values.map((v) => Type.Literal(v))) as unknown as TUnion<TLiteral<T[number]>[]>;

/** An HRESULT as text: "0x8024402C" (8 hex digits, upper case after 0x). */
const HResult = Type.String({ pattern: '^0x[0-9A-F]{8}$' });
const NullableHResult = Type.Union([HResult, Type.Null()]);
const ResultCode = literals(OPERATION_RESULT_CODES);
const Guid = Type.String({ minLength: 1 });

export const CategorySchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: literals(['Company', 'ProductFamily', 'Product', 'UpdateClassification'] as const),
});

export const UpdateRecordSchema = Type.Object({
  updateId: Guid,
  revisionNumber: Type.Integer({ minimum: 0 }),
  title: Type.String(),
  kbs: Type.Array(Type.String({ pattern: '^[0-9]+$' })),
  msrcSeverity: Type.Union([literals(['Critical', 'Important', 'Moderate', 'Low'] as const), Type.Null()]),
  classification: Type.String(),
  products: Type.Array(Type.String()),
  categories: Type.Array(CategorySchema),
  isDownloaded: Type.Boolean(),
  isHidden: Type.Boolean(),
  isMandatory: Type.Boolean(),
  browseOnly: Type.Boolean(),
  type: literals(['software', 'driver'] as const),
  rebootBehavior: literals(['never', 'always', 'canRequest'] as const),
  impact: literals(['normal', 'minor', 'exclusive'] as const),
  eulaAccepted: Type.Boolean(),
  supersededUpdateIds: Type.Array(Type.String()),
  maxDownloadSize: Type.Number({ minimum: 0 }),
  lastDeploymentChangeTime: Type.String(),
  supportUrl: Type.Union([Type.String(), Type.Null()]),
  downloadUrls: Type.Array(Type.String()),
});

// ── requests ────────────────────────────────────────────────────────────────────────────────

const RequestBase = { id: Type.String({ minLength: 1 }) };

export const SearchRequestSchema = Type.Object({
  ...RequestBase,
  type: Type.Literal('search'),
  /** WUA search criteria, e.g. "IsInstalled=0 and IsHidden=0" (built by buildCriteria). */
  criteria: Type.String(),
  serverSelection: literals(SERVER_SELECTIONS),
  /** Absolute local path of wsusscn2.cab; required when serverSelection is "offline". */
  offlineCabPath: Type.Optional(Type.String()),
});
export const DownloadRequestSchema = Type.Object({
  ...RequestBase,
  type: Type.Literal('download'),
  updateIds: Type.Array(Guid),
});
export const InstallRequestSchema = Type.Object({
  ...RequestBase,
  type: Type.Literal('install'),
  updateIds: Type.Array(Guid),
});
export const RebootStatusRequestSchema = Type.Object({ ...RequestBase, type: Type.Literal('rebootStatus') });
export const HistoryRequestSchema = Type.Object({
  ...RequestBase,
  type: Type.Literal('history'),
  limit: Type.Optional(Type.Integer({ minimum: 1 })),
});
export const HideRequestSchema = Type.Object({
  ...RequestBase,
  type: Type.Literal('hide'),
  updateIds: Type.Array(Guid),
});
export const UnhideRequestSchema = Type.Object({
  ...RequestBase,
  type: Type.Literal('unhide'),
  updateIds: Type.Array(Guid),
});
export const CopyToCacheRequestSchema = Type.Object({
  ...RequestBase,
  type: Type.Literal('copyToCache'),
  updateId: Guid,
  /** Local paths of the payload files, handed to IUpdate2.CopyToCache. */
  files: Type.Array(Type.String()),
});
/** Abort the request `targetId` (IDownloadJob/IInstallationJob.RequestAbort). */
export const AbortRequestSchema = Type.Object({ ...RequestBase, type: Type.Literal('abort'), targetId: Type.String() });

export const RequestSchema = Type.Union([
  SearchRequestSchema,
  DownloadRequestSchema,
  InstallRequestSchema,
  RebootStatusRequestSchema,
  HistoryRequestSchema,
  HideRequestSchema,
  UnhideRequestSchema,
  CopyToCacheRequestSchema,
  AbortRequestSchema,
]);
export type ProviderRequest = Static<typeof RequestSchema>;
export type RequestType = ProviderRequest['type'];
export type RequestOf<T extends RequestType> = Extract<ProviderRequest, { type: T }>;

// ── results ─────────────────────────────────────────────────────────────────────────────────

export const PerUpdateResultSchema = Type.Object({
  updateId: Guid,
  resultCode: ResultCode,
  hresult: NullableHResult,
  rebootRequired: Type.Optional(Type.Boolean()),
});
export type PerUpdateResult = Static<typeof PerUpdateResultSchema>;

export const HistoryEntrySchema = Type.Object({
  updateId: Type.String(),
  title: Type.String(),
  operation: literals(['installation', 'uninstallation'] as const),
  resultCode: ResultCode,
  hresult: NullableHResult,
  date: Type.String(),
});

const resultOf = <R extends string, D extends TSchema>(request: R, data: D) =>
  Type.Object({
    type: Type.Literal('result'),
    requestId: Type.String(),
    request: Type.Literal(request),
    resultCode: ResultCode,
    /** The operation's HResult, or the COM exception's when the call itself failed. */
    hresult: NullableHResult,
    message: Type.Optional(Type.String()),
    /** Absent when the call itself failed (resultCode failed/aborted with an hresult). */
    data: Type.Optional(data),
  });

export const SearchResultSchema = resultOf('search', Type.Object({ updates: Type.Array(UpdateRecordSchema) }));
export const DownloadResultSchema = resultOf('download', Type.Object({ updates: Type.Array(PerUpdateResultSchema) }));
export const InstallResultSchema = resultOf(
  'install',
  Type.Object({ rebootRequired: Type.Boolean(), updates: Type.Array(PerUpdateResultSchema) }),
);
export const RebootStatusResultSchema = resultOf(
  'rebootStatus',
  Type.Object({
    /** ISystemInformation.RebootRequired (or one of the registry signals). */
    rebootRequired: Type.Boolean(),
    /** IUpdateInstaller.IsBusy. */
    installerBusy: Type.Boolean(),
    /** Win32_OperatingSystem.LastBootUpTime as ISO-8601; changes on every boot. */
    lastBootUpTime: Type.String(),
  }),
);
export const HistoryResultSchema = resultOf('history', Type.Object({ entries: Type.Array(HistoryEntrySchema) }));
export const HideResultSchema = resultOf(
  'hide',
  Type.Object({ updates: Type.Array(Type.Object({ updateId: Guid, isHidden: Type.Boolean() })) }),
);
export const UnhideResultSchema = resultOf(
  'unhide',
  Type.Object({ updates: Type.Array(Type.Object({ updateId: Guid, isHidden: Type.Boolean() })) }),
);
export const CopyToCacheResultSchema = resultOf('copyToCache', Type.Object({ updateId: Guid }));
export const AbortResultSchema = resultOf('abort', Type.Object({ aborted: Type.Boolean() }));

export const ResultSchema = Type.Union([
  SearchResultSchema,
  DownloadResultSchema,
  InstallResultSchema,
  RebootStatusResultSchema,
  HistoryResultSchema,
  HideResultSchema,
  UnhideResultSchema,
  CopyToCacheResultSchema,
  AbortResultSchema,
]);
export type ProviderResult = Static<typeof ResultSchema>;
export type ResultOf<T extends RequestType> = Extract<ProviderResult, { request: T }>;
export type ResultData<T extends RequestType> = NonNullable<ResultOf<T>['data']>;

// ── events ──────────────────────────────────────────────────────────────────────────────────

export const HelloEventSchema = Type.Object({
  type: Type.Literal('hello'),
  protocol: Type.Integer(),
  provider: Type.String(),
  version: Type.String(),
  computerName: Type.String(),
});
export const ProgressEventSchema = Type.Object({
  type: Type.Literal('progress'),
  requestId: Type.String(),
  phase: literals(['search', 'download', 'install'] as const),
  /** The update being worked on (IDownloadProgress/IInstallationProgress.CurrentUpdateIndex). */
  updateId: Type.Optional(Type.Union([Guid, Type.Null()])),
  /** Whole operation, 0–100 (PercentComplete). */
  percent: Type.Number({ minimum: 0, maximum: 100 }),
  /** Current update, 0–100. */
  updatePercent: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
  bytes: Type.Optional(Type.Number({ minimum: 0 })),
  totalBytes: Type.Optional(Type.Number({ minimum: 0 })),
});
export const WarningEventSchema = Type.Object({
  type: Type.Literal('warning'),
  requestId: Type.Optional(Type.String()),
  hresult: Type.Optional(NullableHResult),
  message: Type.String(),
});

export const EventSchema = Type.Union([
  HelloEventSchema,
  ProgressEventSchema,
  WarningEventSchema,
  ...ResultSchema.anyOf,
]);
export type ProviderEvent = Static<typeof EventSchema>;
export type HelloEvent = Static<typeof HelloEventSchema>;
export type ProgressEvent = Static<typeof ProgressEventSchema>;
export type WarningEvent = Static<typeof WarningEventSchema>;

const requestCheck = TypeCompiler.Compile(RequestSchema);
const eventCheck = TypeCompiler.Compile(EventSchema);

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    message: string,
    readonly line: string,
  ) {
    super(message);
  }
}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw new ProtocolError(`not a JSON object: ${truncate(line)}`, line);
  }
}

function firstError(check: typeof eventCheck | typeof requestCheck, value: unknown): string {
  const e = check.Errors(value).First();
  return e ? `${e.path || '/'}: ${e.message}` : 'invalid';
}

/** Parses and validates one line a provider printed. Throws ProtocolError on garbage. */
export function parseEvent(line: string): ProviderEvent {
  const value = parseLine(line);
  if (!eventCheck.Check(value))
    throw new ProtocolError(`invalid provider event (${firstError(eventCheck, value)}): ${truncate(line)}`, line);
  return value;
}

/** Parses and validates one request line (the provider side of the contract). */
export function parseRequest(line: string): ProviderRequest {
  const value = parseLine(line);
  if (!requestCheck.Check(value))
    throw new ProtocolError(`invalid request (${firstError(requestCheck, value)}): ${truncate(line)}`, line);
  return value;
}

export function isValidEvent(value: unknown): value is ProviderEvent {
  return eventCheck.Check(value);
}

function truncate(s: string, max = 200): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** Formats a number as protocol HRESULT text: 0x8024402C. */
export function formatHResult(n: number): string {
  return `0x${(n >>> 0).toString(16).toUpperCase().padStart(8, '0')}`;
}

// Compile-time check: the protocol's update record is the domain's update record (same keys, and
// every validated record is a valid UpdateRecord).
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
const _sameKeys: SameKeys<Static<typeof UpdateRecordSchema>, UpdateRecord> = true;
const _assignable: UpdateRecord = {} as Static<typeof UpdateRecordSchema>;
void _sameKeys;
void _assignable;
