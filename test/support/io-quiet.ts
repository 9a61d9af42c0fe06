/**
 * For tests that let a manual clock run by itself (`clock.autoAdvance({ busy })`): real I/O holds
 * simulated time still — payload downloads, requests to the server, file I/O — so an agent's
 * download or report is not overtaken by a simulated hour passing while the bytes are in flight.
 */
import type { Server, ServerResponse } from 'node:http';

export interface IoQuiet {
  /** Counts a response as real work until it closes. */
  track(res: ServerResponse): void;
  /** Real work under way, or only just finished (its caller is still reading the answer). */
  busy(): boolean;
  /** Tracks every request to `server` except the check-ins and event streams held open on purpose. */
  watchServer(server: Server): void;
}

export function ioQuiet(quietMs: number): IoQuiet {
  let inFlight = 0;
  let lastIoAt = 0;
  const track = (res: ServerResponse): void => {
    inFlight++;
    lastIoAt = performance.now();
    res.once('close', () => {
      inFlight--;
      lastIoAt = performance.now();
    });
  };
  return {
    track,
    busy() {
      if (inFlight > 0 || process.getActiveResourcesInfo().some((r) => r.startsWith('FSReq')))
        lastIoAt = performance.now();
      return performance.now() - lastIoAt < quietMs;
    },
    watchServer(server) {
      server.on('request', (req, res) => {
        if (req.url !== '/api/v1/agent/checkin' && !req.url?.startsWith('/api/v1/events')) track(res);
      });
    },
  };
}
