/**
 * A small scripted WUA provider for agent tests: speaks src/wua/protocol.ts over in-memory streams
 * (or stdio) and models just enough of Windows Update — prerequisites that make an update
 * applicable only after another is installed, reboot flags, a busy installer, updates that roll
 * back, installs that hang until aborted — to drive every branch of a cycle.
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { UpdateRecord } from '../src/domain/update.ts';
import { inMemoryChannel, type ProviderChannel } from '../src/wua/client.ts';
import { parseRequest, type ProviderRequest } from '../src/wua/protocol.ts';

export interface FakeUpdate {
  readonly record: UpdateRecord;
  /** Applicable only once these update ids are installed (SSU → CU). */
  readonly requires?: readonly string[];
  /** Installing it requires a reboot. */
  readonly needsReboot?: boolean;
  /** Install fails with this HRESULT. */
  readonly failInstall?: string;
  /** Install "succeeds" but the update is offered again (a silent rollback). */
  readonly rollsBack?: boolean;
  /** Install never finishes on its own: only an abort ends it. */
  readonly hangs?: boolean;
}

export interface FakeWorld {
  readonly updates: FakeUpdate[];
  pendingReboot?: boolean;
  /** rebootStatus reports the installer busy this many more times. */
  busyPolls?: number;
  /** install answers WU_E_INSTALL_NOT_ALLOWED this many more times. */
  busyInstalls?: number;
  /** search fails as a whole with this HRESULT. */
  searchFails?: string;
  readonly installed: Set<string>;
  /** Every request received, in order. */
  readonly requests: ProviderRequest[];
}

export function world(
  updates: FakeUpdate[],
  extra: Partial<Omit<FakeWorld, 'updates' | 'installed' | 'requests'>> = {},
): FakeWorld {
  return { updates, installed: new Set(), requests: [], ...extra };
}

let counter = 0;
/** An update record with sensible defaults: a security update for Server 2022. */
export function record(kb: string, overrides: Partial<UpdateRecord> = {}): UpdateRecord {
  counter++;
  return {
    updateId: `00000000-0000-0000-0000-${String(counter).padStart(4, '0')}${kb.padStart(8, '0')}`,
    revisionNumber: 1,
    title: `KB${kb} test update`,
    kbs: [kb],
    msrcSeverity: 'Important',
    classification: 'Security Updates',
    products: ['Windows Server 2022'],
    categories: [],
    isDownloaded: false,
    isHidden: false,
    isMandatory: false,
    browseOnly: false,
    type: 'software',
    rebootBehavior: 'canRequest',
    impact: 'normal',
    eulaAccepted: true,
    supersededUpdateIds: [],
    maxDownloadSize: 1_000_000,
    lastDeploymentChangeTime: '2026-10-01T00:00:00Z',
    supportUrl: null,
    downloadUrls: [],
    ...overrides,
  };
}

const LAST_BOOT = '2026-11-20T06:00:00Z';

/** Serves the protocol for one world on the given streams until the input ends. */
export async function serveFake(w: FakeWorld, input: Readable, output: Writable): Promise<void> {
  const send = (o: object): void => {
    output.write(`${JSON.stringify(o)}\n`);
  };
  const downloaded = new Set<string>();
  const hanging = new Map<string, string[]>();
  send({ type: 'hello', protocol: 1, provider: 'fake', version: '1.0.0', computerName: 'web01' });
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    const r = parseRequest(line);
    w.requests.push(r);
    const result = (request: string, resultCode: string, hresult: string | null, data?: object): void =>
      send({ type: 'result', requestId: r.id, request, resultCode, hresult, ...(data ? { data } : {}) });
    switch (r.type) {
      case 'rebootStatus': {
        const busy = (w.busyPolls ?? 0) > 0;
        if (busy) w.busyPolls = (w.busyPolls ?? 0) - 1;
        result('rebootStatus', 'succeeded', null, {
          rebootRequired: w.pendingReboot ?? false,
          installerBusy: busy,
          lastBootUpTime: LAST_BOOT,
        });
        break;
      }
      case 'search': {
        if (w.searchFails) {
          result('search', 'failed', w.searchFails);
          break;
        }
        send({ type: 'progress', requestId: r.id, phase: 'search', updateId: null, percent: 100 });
        const applicable = w.updates.filter(
          (u) => !w.installed.has(u.record.updateId) && (u.requires ?? []).every((id) => w.installed.has(id)),
        );
        result('search', 'succeeded', null, {
          updates: applicable.map((u) => ({
            ...u.record,
            isDownloaded: u.record.isDownloaded || downloaded.has(u.record.updateId),
          })),
        });
        break;
      }
      case 'download':
        for (const id of r.updateIds) {
          send({
            type: 'progress',
            requestId: r.id,
            phase: 'download',
            updateId: id,
            percent: 100,
            bytes: 10,
            totalBytes: 10,
          });
          downloaded.add(id);
        }
        result('download', 'succeeded', null, {
          updates: r.updateIds.map((updateId) => ({ updateId, resultCode: 'succeeded', hresult: null })),
        });
        break;
      case 'install': {
        if ((w.busyInstalls ?? 0) > 0) {
          w.busyInstalls = (w.busyInstalls ?? 0) - 1;
          result('install', 'failed', '0x80240016');
          break;
        }
        const targets = r.updateIds.map((id) => w.updates.find((u) => u.record.updateId === id));
        if (targets.some((u) => u?.hangs)) {
          send({ type: 'progress', requestId: r.id, phase: 'install', updateId: r.updateIds[0], percent: 10 });
          hanging.set(r.id, r.updateIds);
          break;
        }
        let reboot = false;
        const updates = r.updateIds.map((updateId, i) => {
          const u = targets[i];
          if (!u) return { updateId, resultCode: 'failed', hresult: '0x80240017' };
          if (u.failInstall) return { updateId, resultCode: 'failed', hresult: u.failInstall };
          if (!u.rollsBack) w.installed.add(updateId);
          if (u.needsReboot) reboot = true;
          return { updateId, resultCode: 'succeeded', hresult: null, rebootRequired: u.needsReboot ?? false };
        });
        if (reboot) w.pendingReboot = true;
        result(
          'install',
          updates.every((u) => u.resultCode === 'succeeded') ? 'succeeded' : 'succeededWithErrors',
          null,
          { rebootRequired: reboot, updates },
        );
        break;
      }
      case 'abort': {
        const ids = hanging.get(r.targetId);
        if (ids) {
          hanging.delete(r.targetId);
          send({
            type: 'result',
            requestId: r.targetId,
            request: 'install',
            resultCode: 'aborted',
            hresult: '0x80240007',
            data: {
              rebootRequired: false,
              updates: ids.map((updateId) => ({ updateId, resultCode: 'aborted', hresult: null })),
            },
          });
        }
        result('abort', 'succeeded', null, { aborted: ids !== undefined });
        break;
      }
      default:
        result(r.type, 'failed', '0x80004001', undefined);
    }
  }
}

export function fakeChannel(w: FakeWorld): ProviderChannel {
  return inMemoryChannel((input, output) => serveFake(w, input, output));
}
