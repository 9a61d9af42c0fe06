/**
 * bench/server-fleet: the server side, a child process of server-fleet.ts. Runs the agent gateway
 * in a Fastify app on 127.0.0.1 with the gateway store given by BENCH_STORE (see server-fleet.ts),
 * and answers the parent over IPC: create an action for every enrolled host (and say when, in
 * epoch milliseconds), report connected agents, peak RSS and CPU seconds.
 */
import Fastify from 'fastify';
import { encodeEnrollToken, tokenSecretHash, type AgentPolicy } from '../src/domain/agent-protocol.ts';
import { createAgentGateway } from '../src/server/gateway/gateway.ts';
import { MemoryGatewayStore } from '../src/server/gateway/store.ts';

const SECRET = 'bench-enroll-secret-0123456789';
const POLICY: AgentPolicy = {
  ring: 'pilot',
  scanIntervalSeconds: 86_400,
  scanSource: 'offline',
  windows: [],
  reboot: 'never',
  installAtShutdown: false,
  directDownload: false,
  allowedUpdateIds: [],
};

const epochMs = (): number => performance.timeOrigin + performance.now();

const store = new MemoryGatewayStore();
store.addEnrollToken({ hash: tokenSecretHash(SECRET), ring: 'pilot', expiresAt: null, usesLeft: null });
const gateway = createAgentGateway({
  store,
  now: () => new Date(),
  policyFor: async () => POLICY,
  catalog: async () => null,
  content: async () => null,
});
const app = Fastify({ logger: false, keepAliveTimeout: 120_000 });
await app.register(gateway.plugin);
const url = await app.listen({ port: 0, host: '127.0.0.1', backlog: 4096 });
app.server.maxConnections = 50_000;

process.on('message', (msg: { cmd: string }) => {
  void (async () => {
    if (msg.cmd === 'action') {
      const hostIds = [...store.hosts.keys()];
      const createdAtMs = epochMs();
      const action = store.createAction('scan', hostIds, new Date());
      gateway.wake(hostIds);
      process.send!({ reply: 'action', actionId: action.id, createdAtMs, hosts: hostIds.length });
    } else if (msg.cmd === 'stats') {
      const usage = process.resourceUsage();
      process.send!({
        reply: 'stats',
        connected: gateway.connected(),
        hosts: store.hosts.size,
        peakRssMB: Math.round(usage.maxRSS / 1024),
        cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6,
      });
    } else if (msg.cmd === 'stop') {
      gateway.close();
      await app.close();
      process.exit(0);
    }
  })();
});
process.send!({ reply: 'ready', url, token: encodeEnrollToken({ secret: SECRET, fingerprint: null }) });
