/**
 * What each provider request does to a virtual host, with WUA's semantics: search (criteria
 * subset, applicability), download (real bytes from the fake upstream, SHA-256 and size checked),
 * install (busy installer, exclusive updates, EULAs, faults, reboot behaviour), rebootStatus,
 * history, hide/unhide, copyToCache. The session (simulated-provider.ts) feeds requests in
 * order and passes an AbortSignal for `abort`.
 *
 * Reboot behaviour: `never` installs completely; `always` and `canRequest` both leave the update
 * installed with its reboot pending. WUA reports RebootRequired for a canRequest update only when
 * its handler asks, which for servicing on a running server is nearly always; treating it like
 * `always` makes the lab's reboot paths run more often, which is what a test bed is for.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type {
  ProviderEvent,
  ProviderRequest,
  ProviderResult,
  PerUpdateResult,
  RequestOf,
  ResultData,
  ResultOf,
} from '../wua/protocol.ts';
import { installedUpdates, notApplicableReason, supersededByInstalled, applicableUpdates } from './applicability.ts';
import {
  initialHostState,
  installerBusyAt,
  readBootFile,
  readHostState,
  withHistory,
  writeHostState,
  type HostState,
} from './host-state.ts';
import type { PayloadStore } from './payloads.ts';
import type { CatalogEntry, Scenario, ScenarioHost } from './scenario.ts';
import { matchesCriteria, parseCriteria } from './search-criteria.ts';
import { searchOfflineCab } from './offline-scan.ts';
import type { ProviderClock } from './simulated-provider.ts';
import { hostViewOf, toUpdateRecord } from './update-record.ts';
import { HR, httpStatusHResult, overallResult } from './wua-codes.ts';

/** A stalled upstream must not hang a cycle forever; WUA's own timeouts are minutes too. */
const DOWNLOAD_TIMEOUT_MS = 5 * 60 * 1000;
/** Progress events per update install (each a slice of installSeconds). */
const INSTALL_PROGRESS_STEPS = 10;
/** Emit a download progress event at most every this many percent of one update. */
const DOWNLOAD_PROGRESS_STEP_PERCENT = 10;

export interface OperationsDeps {
  readonly scenario: Scenario;
  readonly host: ScenarioHost;
  readonly hostDir: string;
  readonly upstreamUrl: string;
  readonly clock: ProviderClock;
  readonly payloads: PayloadStore;
  readonly fetch: typeof fetch;
  readonly emit: (event: ProviderEvent) => void;
}

export interface Operations {
  handle(request: ProviderRequest, signal: AbortSignal): Promise<ProviderResult>;
}

/** A result for a call that failed as a whole (no data). */
export function failedResult(
  request: Pick<ProviderRequest, 'id' | 'type'>,
  hresult: string,
  message: string,
): ProviderResult {
  return {
    type: 'result',
    requestId: request.id,
    request: request.type,
    resultCode: 'failed',
    hresult,
    message,
  } as ProviderResult;
}

const addTo = (list: readonly string[], key: string): string[] => (list.includes(key) ? [...list] : [...list, key]);

/** Orders a batch so prerequisites come first (stable otherwise), as WUA's installer does. */
function prerequisitesFirst(entries: readonly CatalogEntry[]): CatalogEntry[] {
  const inBatch = new Map(entries.map((e) => [e.key, e]));
  const out: CatalogEntry[] = [];
  const seen = new Set<string>();
  const visit = (e: CatalogEntry) => {
    if (seen.has(e.key)) return;
    seen.add(e.key);
    for (const req of e.requires) {
      const dep = inBatch.get(req);
      if (dep) visit(dep);
    }
    out.push(e);
  };
  entries.forEach(visit);
  return out;
}

export function createOperations(deps: OperationsDeps): Operations {
  const { scenario, host, hostDir, clock, payloads, emit } = deps;
  let installing = false;

  const load = async (): Promise<HostState> =>
    (await readHostState(hostDir)) ?? initialHostState(host, clock.now(), scenario.timeScale);
  const save = (state: HostState): Promise<void> => writeHostState(hostDir, state);

  const recordOf = (entry: CatalogEntry, state: HostState) =>
    toUpdateRecord(
      entry,
      hostViewOf(entry, state),
      { size: payloads.info(entry).size, downloadUrls: [payloads.urlFor(entry, deps.upstreamUrl)] },
      scenario.byKey,
    );

  // ── search ────────────────────────────────────────────────────────────────────────────────
  const search = async (req: RequestOf<'search'>): Promise<ProviderResult> => {
    if (req.serverSelection === 'offline') return searchOffline(req);
    const parsed = parseCriteria(req.criteria);
    if (!parsed.ok)
      return failedResult(
        req,
        HR.WU_E_INVALID_CRITERIA,
        `invalid search criteria "${req.criteria}": ${parsed.message}`,
      );
    const state = await load();
    const candidates = [
      ...applicableUpdates(scenario, host, state).map((entry) => ({ entry, isInstalled: false })),
      ...installedUpdates(scenario, host, state).map((entry) => ({ entry, isInstalled: true })),
    ];
    const updates = candidates
      .filter(({ entry, isInstalled }) =>
        matchesCriteria(parsed.criteria, {
          isInstalled,
          isHidden: state.hidden.includes(entry.key),
          type: entry.type,
          browseOnly: entry.optional,
          updateId: entry.updateId,
        }),
      )
      .map(({ entry }) => recordOf(entry, state));
    emit({ type: 'progress', requestId: req.id, phase: 'search', updateId: null, percent: 100 });
    // UpdateRecord's arrays are readonly; the protocol's Static type spells them mutable.
    return {
      type: 'result',
      requestId: req.id,
      request: 'search',
      resultCode: 'succeeded',
      hresult: null,
      data: { updates: updates as unknown as ResultData<'search'>['updates'] },
    };
  };

  /** AddScanPackageService + ssOthers: the same criteria, answered from the signed cab at req.offlineCabPath. */
  const searchOffline = async (req: RequestOf<'search'>): Promise<ProviderResult> =>
    searchOfflineCab(req, { scenario, host, state: await load(), emit });

  // ── download ──────────────────────────────────────────────────────────────────────────────
  /** Fetches one payload, checking size and SHA-256; returns the HRESULT of a failure or null. */
  const fetchPayload = async (
    req: RequestOf<'download'>,
    entry: CatalogEntry,
    signal: AbortSignal,
    onBytes: (bytes: number) => void,
  ): Promise<string | null> => {
    const info = payloads.info(entry);
    const timeout = AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS);
    let response: Response;
    try {
      response = await deps.fetch(payloads.urlFor(entry, deps.upstreamUrl), {
        signal: AbortSignal.any([signal, timeout]),
      });
    } catch (error) {
      if (signal.aborted) throw error;
      const hresult = timeout.aborted ? HR.ERROR_INTERNET_TIMEOUT : HR.ERROR_INTERNET_CANNOT_CONNECT;
      emit({
        type: 'warning',
        requestId: req.id,
        hresult,
        message: `download of ${entry.key} failed: ${(error as Error).message}`,
      });
      return hresult;
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      return httpStatusHResult(response.status);
    }
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      for await (const chunk of response.body) {
        hash.update(chunk);
        bytes += chunk.length;
        onBytes(bytes);
      }
    } catch (error) {
      if (signal.aborted) throw error;
      return timeout.aborted ? HR.ERROR_INTERNET_TIMEOUT : HR.ERROR_INTERNET_CANNOT_CONNECT;
    }
    return bytes === info.size && hash.digest('hex') === info.sha256 ? null : HR.WU_E_DM_INCORRECTFILEHASH;
  };

  const download = async (req: RequestOf<'download'>, signal: AbortSignal): Promise<ProviderResult> => {
    if (req.updateIds.length === 0) return failedResult(req, HR.WU_E_NO_UPDATE, 'no updates to download');
    const entries = req.updateIds.map((id) => scenario.byId.get(id.toLowerCase()));
    const totalBytes = entries.reduce((sum, e) => sum + (e ? payloads.info(e).size : 0), 0);
    let doneBytes = 0;
    const results: PerUpdateResult[] = [];
    let aborted = false;
    for (const [i, entry] of entries.entries()) {
      const updateId = req.updateIds[i] as string;
      if (aborted || signal.aborted) {
        aborted = true;
        results.push({ updateId, resultCode: 'notStarted', hresult: null });
        continue;
      }
      if (!entry) {
        results.push({ updateId, resultCode: 'failed', hresult: HR.WU_E_NOT_APPLICABLE });
        continue;
      }
      const size = payloads.info(entry).size;
      let state = await load();
      if (state.downloaded.includes(entry.key)) {
        doneBytes += size;
        results.push({ updateId, resultCode: 'succeeded', hresult: null });
        continue;
      }
      let lastPercent = -DOWNLOAD_PROGRESS_STEP_PERCENT;
      const progress = (bytes: number) => {
        const updatePercent = Math.floor((bytes / size) * 100);
        if (updatePercent - lastPercent < DOWNLOAD_PROGRESS_STEP_PERCENT && bytes < size) return;
        lastPercent = updatePercent;
        const percent = totalBytes > 0 ? Math.min(100, Math.floor(((doneBytes + bytes) / totalBytes) * 100)) : 100;
        emit({
          type: 'progress',
          requestId: req.id,
          phase: 'download',
          updateId: entry.updateId,
          percent,
          updatePercent: Math.min(100, updatePercent),
          bytes: doneBytes + bytes,
          totalBytes,
        });
      };
      let hresult: string | null;
      try {
        hresult = await fetchPayload(req, entry, signal, progress);
      } catch (error) {
        if (!signal.aborted) throw error;
        aborted = true;
        results.push({ updateId, resultCode: 'aborted', hresult: null });
        continue;
      }
      doneBytes += size;
      if (hresult === null) {
        state = await load();
        await save({ ...state, downloaded: addTo(state.downloaded, entry.key) });
      }
      results.push({ updateId, resultCode: hresult === null ? 'succeeded' : 'failed', hresult });
    }
    return {
      type: 'result',
      requestId: req.id,
      request: 'download',
      ...overallResult(results, aborted),
      data: { updates: results },
    };
  };

  // ── install ───────────────────────────────────────────────────────────────────────────────
  /** Installs one update that passed the checks; returns its result and the new state. */
  const installOne = async (
    req: RequestOf<'install'>,
    entry: CatalogEntry,
    state0: HostState,
    signal: AbortSignal,
    progress: (updatePercent: number) => void,
  ): Promise<[PerUpdateResult, HostState]> => {
    const attempts = (state0.attempts[entry.key] ?? 0) + 1;
    let state: HostState = {
      ...state0,
      eulasAccepted: entry.eula ? addTo(state0.eulasAccepted, entry.key) : state0.eulasAccepted,
      attempts: { ...state0.attempts, [entry.key]: attempts },
    };
    await save(state);
    const stepMs = (entry.installSeconds * 1000 * scenario.timeScale) / INSTALL_PROGRESS_STEPS;
    const history = (resultCode: PerUpdateResult['resultCode'], hresult: string | null) =>
      withHistory(state, {
        updateKey: entry.key,
        updateId: entry.updateId,
        title: entry.title,
        operation: 'installation',
        resultCode,
        hresult,
        date: clock.now().toISOString(),
      });
    try {
      // Each step is due at start + step × stepMs: a busy event loop (hundreds of in-process hosts)
      // delays a step, but the delay does not add up into an install longer than the scenario says.
      const startedMs = clock.now().getTime();
      for (let step = 1; step <= INSTALL_PROGRESS_STEPS; step++) {
        await clock.sleep(Math.max(0, startedMs + step * stepMs - clock.now().getTime()), signal);
        progress((step / INSTALL_PROGRESS_STEPS) * 100);
      }
    } catch (error) {
      if (!signal.aborted) throw error;
      // An aborted install leaves nothing installed: WUA rolls the update back.
      state = history('aborted', null);
      await save(state);
      return [{ updateId: entry.updateId, resultCode: 'aborted', hresult: null }, state];
    }
    const fault = host.faults.failures.get(entry.key);
    if (fault && (fault.failTimes === 'always' || attempts <= fault.failTimes)) {
      state = history('failed', fault.hresult);
      await save(state);
      return [{ updateId: entry.updateId, resultCode: 'failed', hresult: fault.hresult, rebootRequired: false }, state];
    }
    const needsReboot = entry.reboot !== 'never';
    // reappearsAfterInstall: reported as installed, but detection never sees it (silent rollback).
    if (!host.faults.reappearsAfterInstall.has(entry.key)) {
      state = {
        ...state,
        installed: {
          ...state.installed,
          [entry.key]: { installedAt: clock.now().toISOString(), rebootDone: !needsReboot },
        },
      };
    }
    if (needsReboot)
      state = { ...state, rebootPending: true, rebootPendingFor: addTo(state.rebootPendingFor, entry.key) };
    state = history('succeeded', null);
    await save(state);
    return [{ updateId: entry.updateId, resultCode: 'succeeded', hresult: null, rebootRequired: needsReboot }, state];
  };

  const install = async (req: RequestOf<'install'>, signal: AbortSignal): Promise<ProviderResult> => {
    if (req.updateIds.length === 0) return failedResult(req, HR.WU_E_NO_UPDATE, 'no updates to install');
    let state = await load();
    if (installerBusyAt(state, clock.now())) {
      return failedResult(
        req,
        HR.WU_E_INSTALL_NOT_ALLOWED,
        'the Windows installer is busy with another installation; wait and retry',
      );
    }
    const known = req.updateIds
      .map((id) => scenario.byId.get(id.toLowerCase()))
      .filter((e): e is CatalogEntry => e !== undefined);
    if (req.updateIds.length > 1 && known.some((e) => e.impact === 'exclusive')) {
      const exclusive = known.filter((e) => e.impact === 'exclusive').map((e) => (e.kb ? `KB${e.kb}` : e.key));
      return failedResult(req, HR.WU_E_EXCLUSIVE_INSTALL_CONFLICT, `${exclusive.join(', ')} must be installed alone`);
    }
    const byId = new Map<string, PerUpdateResult>();
    const order = prerequisitesFirst(known);
    let aborted = false;
    installing = true;
    try {
      for (const [index, entry] of order.entries()) {
        if (aborted || signal.aborted) {
          aborted = true;
          byId.set(entry.updateId, { updateId: entry.updateId, resultCode: 'notStarted', hresult: null });
          continue;
        }
        state = await load();
        const reason = notApplicableReason(entry, host, state, supersededByInstalled(scenario, state));
        if (reason !== null) {
          byId.set(entry.updateId, { updateId: entry.updateId, resultCode: 'failed', hresult: HR.WU_E_NOT_APPLICABLE });
          continue;
        }
        if (!state.downloaded.includes(entry.key)) {
          byId.set(entry.updateId, {
            updateId: entry.updateId,
            resultCode: 'failed',
            hresult: HR.WU_E_DM_NOTDOWNLOADED,
          });
          continue;
        }
        const progress = (updatePercent: number) =>
          emit({
            type: 'progress',
            requestId: req.id,
            phase: 'install',
            updateId: entry.updateId,
            percent: Math.floor(((index + updatePercent / 100) / order.length) * 100),
            updatePercent,
          });
        const [result, next] = await installOne(req, entry, state, signal, progress);
        state = next;
        if (result.resultCode === 'aborted') aborted = true;
        byId.set(entry.updateId, result);
      }
    } finally {
      installing = false;
    }
    // Results in the caller's order, as IInstallationResult.GetUpdateResult(i) gives them.
    const results = req.updateIds.map(
      (id) =>
        byId.get(id.toLowerCase()) ?? { updateId: id, resultCode: 'failed' as const, hresult: HR.WU_E_NOT_APPLICABLE },
    );
    const rebootRequired = results.some((r) => r.resultCode === 'succeeded' && r.rebootRequired === true);
    return {
      type: 'result',
      requestId: req.id,
      request: 'install',
      ...overallResult(results, aborted),
      data: { rebootRequired, updates: results },
    };
  };

  // ── the rest ──────────────────────────────────────────────────────────────────────────────
  const rebootStatus = async (req: RequestOf<'rebootStatus'>): Promise<ResultOf<'rebootStatus'>> => {
    const state = await load();
    const boot = await readBootFile(hostDir);
    return {
      type: 'result',
      requestId: req.id,
      request: 'rebootStatus',
      resultCode: 'succeeded',
      hresult: null,
      data: {
        rebootRequired: state.rebootPending,
        installerBusy: installing || installerBusyAt(state, clock.now()),
        lastBootUpTime: boot?.bootId ?? clock.now().toISOString(),
      },
    };
  };

  const history = async (req: RequestOf<'history'>): Promise<ResultOf<'history'>> => {
    const state = await load();
    const newestFirst = [...state.history].reverse().slice(0, req.limit ?? state.history.length);
    const entries = newestFirst.map(({ updateId, title, operation, resultCode, hresult, date }) => ({
      updateId,
      title,
      operation,
      resultCode,
      hresult,
      date,
    }));
    return {
      type: 'result',
      requestId: req.id,
      request: 'history',
      resultCode: 'succeeded',
      hresult: null,
      data: { entries },
    };
  };

  const setHidden = async (req: RequestOf<'hide'> | RequestOf<'unhide'>, hide: boolean): Promise<ProviderResult> => {
    const state = await load();
    let hidden = [...state.hidden];
    const updates = req.updateIds.map((updateId) => {
      const entry = scenario.byId.get(updateId.toLowerCase());
      if (!entry) return { updateId, isHidden: false, known: false };
      hidden = hide ? addTo(hidden, entry.key) : hidden.filter((k) => k !== entry.key);
      return { updateId, isHidden: hide, known: true };
    });
    await save({ ...state, hidden });
    const unknown = updates.filter((u) => !u.known).map((u) => u.updateId);
    const resultCode =
      unknown.length === 0 ? 'succeeded' : unknown.length === updates.length ? 'failed' : 'succeededWithErrors';
    return {
      type: 'result',
      requestId: req.id,
      request: req.type,
      resultCode,
      hresult: resultCode === 'failed' ? HR.WU_E_NOT_APPLICABLE : null,
      ...(unknown.length > 0 ? { message: `unknown update ids: ${unknown.join(', ')}` } : {}),
      data: { updates: updates.map(({ updateId, isHidden }) => ({ updateId, isHidden })) },
    } as ProviderResult;
  };

  /** IUpdate2.CopyToCache: the files must be this update's payload (size and SHA-256 checked). */
  const copyToCache = async (req: RequestOf<'copyToCache'>): Promise<ProviderResult> => {
    const entry = scenario.byId.get(req.updateId.toLowerCase());
    if (!entry) return failedResult(req, HR.WU_E_NOT_APPLICABLE, `unknown update ${req.updateId}`);
    if (req.files.length === 0) return failedResult(req, HR.WU_E_NO_UPDATE, 'no files given');
    const info = payloads.info(entry);
    let matched = false;
    for (const file of req.files) {
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (error) {
        return failedResult(req, HR.E_FILE_NOT_FOUND, `cannot read ${file}: ${(error as Error).message}`);
      }
      if (bytes.length === info.size && createHash('sha256').update(bytes).digest('hex') === info.sha256)
        matched = true;
    }
    if (!matched)
      return failedResult(
        req,
        HR.WU_E_DM_INCORRECTFILEHASH,
        `no file matches the digest of ${entry.kb ? `KB${entry.kb}` : entry.key}`,
      );
    const state = await load();
    await save({ ...state, downloaded: addTo(state.downloaded, entry.key) });
    return {
      type: 'result',
      requestId: req.id,
      request: 'copyToCache',
      resultCode: 'succeeded',
      hresult: null,
      data: { updateId: entry.updateId },
    };
  };

  const handle = async (request: ProviderRequest, signal: AbortSignal): Promise<ProviderResult> => {
    if (signal.aborted && request.type !== 'rebootStatus' && request.type !== 'history') {
      return {
        type: 'result',
        requestId: request.id,
        request: request.type,
        resultCode: 'aborted',
        hresult: null,
      } as ProviderResult;
    }
    switch (request.type) {
      case 'search':
        return search(request);
      case 'download':
        return download(request, signal);
      case 'install':
        return install(request, signal);
      case 'rebootStatus':
        return rebootStatus(request);
      case 'history':
        return history(request);
      case 'hide':
        return setHidden(request, true);
      case 'unhide':
        return setHidden(request, false);
      case 'copyToCache':
        return copyToCache(request);
      case 'abort':
        return failedResult(request, HR.E_INVALIDARG, 'abort is handled by the session');
    }
  };

  return { handle };
}
