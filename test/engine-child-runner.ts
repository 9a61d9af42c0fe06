/**
 * A connector in a child process for the kill -9 test: runs startRun against a transport that
 * forwards every call to the parent (which holds the simulated fleet) over the IPC channel, and
 * relays the live log to the parent. The parent kills it with SIGKILL mid-run.
 */
import { TransportError, type Transport, type TransportFailureKind } from '../src/transports/transport.ts';
import { openStore } from '../src/store/db.ts';
import { startRun } from '../src/engine/run.ts';
import { systemClock } from '../src/engine/clock.ts';
import type { RunOptions } from '../src/engine/types.ts';
import { FAST_TIMING } from './engine-helpers.ts';

interface Reply {
  readonly id: number;
  readonly result?: unknown;
  readonly error?: string;
  readonly kind?: TransportFailureKind;
}

let nextId = 1;
const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
process.on('message', (m: Reply) => {
  const w = waiting.get(m.id);
  if (!w) return;
  waiting.delete(m.id);
  // The parent's error keeps its classification across the process boundary.
  if (m.error !== undefined) w.reject(new TransportError(m.kind ?? 'internal', 'ipc', m.error));
  else w.resolve(m.result);
});

function call(method: string, args: unknown[]): Promise<never> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
    process.send!({ type: 'call', id, method, args });
  });
}

// AbortSignals do not cross processes; the parent's fleet answers promptly anyway.
const transport: Transport = {
  name: 'ipc-fake',
  resolveTargets: (names) => call('resolveTargets', [names]),
  listTargets: () => call('listTargets', []),
  prepare: (host, input) => call('prepare', [host, input]),
  launch: (host, request) => call('launch', [host, request]),
  probe: (host) => call('probe', [host]),
  fetchLog: (host, request) => call('fetchLog', [host, request]),
  isRunning: (host, launch) => call('isRunning', [host, launch]),
  stop: (host, launch) => call('stop', [host, launch]),
  reboot: (host) => call('reboot', [host]),
  close: () => call('close', []),
};

const [stateFile, optionsJson] = process.argv.slice(2);
const store = await openStore(stateFile!);
const options = JSON.parse(optionsJson!) as RunOptions;
const result = await startRun(
  { store, transport, clock: systemClock, timing: FAST_TIMING, log: (e) => process.send!({ type: 'log', event: e }) },
  options,
  new AbortController().signal,
);
process.send!({ type: 'done', exitCode: result.exitCode });
await store.close();
process.disconnect();
