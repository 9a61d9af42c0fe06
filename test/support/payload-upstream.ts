/**
 * The lab's payload files served over real HTTP on loopback: what Microsoft's download servers are
 * to an agent or to the server's content cache. Tests that need a fault in the upstream write
 * their own server; this one serves every payload of the scenario and 404s anything else.
 */
import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPayloadStore, type PayloadStore } from '../../src/lab/payloads.ts';
import type { Scenario } from '../../src/lab/scenario.ts';

export interface PayloadUpstream {
  readonly server: Server;
  readonly payloads: PayloadStore;
  /** `http://127.0.0.1:<port>`, what the lab catalog's download URLs start with. */
  readonly url: string;
  close(): Promise<void>;
}

export async function startPayloadUpstream(
  scenario: Scenario,
  options: { onResponse?: (res: ServerResponse) => void } = {},
): Promise<PayloadUpstream> {
  const payloads = createPayloadStore(scenario);
  const server = createServer((req, res) => {
    options.onResponse?.(res);
    if (!payloads.handle(req, res)) res.writeHead(404).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    payloads,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
    },
  };
}
