/**
 * bench/server-fleet: the fleet side, a child process of server-fleet.ts. N lightweight agents that
 * speak the real agent protocol over loopback (no WUA simulation): each enrolls with the token,
 * then keeps one long-poll check-in open on a socket of its own (naming the policy it holds, as
 * real agents do); an action that arrives is timestamped (epoch ms) and acknowledged with a
 * `received` progress report. On request every agent sends full scan reports of REPORT_UPDATES
 * updates drawn from a catalog of CATALOG_UPDATES.
 */
import { Agent, request, type IncomingMessage } from 'node:http';

const REPORT_UPDATES = 150;
const CATALOG_UPDATES = 4_000;
const ENROLL_CONCURRENCY = 64;
const REPORT_CONCURRENCY = 48;

const epochMs = (): number => performance.timeOrigin + performance.now();
const [url, token, countText] = process.argv.slice(2) as [string, string, string];
const count = Number(countText);
const base = new URL(url);
// Each real agent keeps its own connection open between check-ins. An http.Agent keeps only
// maxFreeSockets (default 256) idle sockets and destroys the rest: after an action answered every
// check-in at once, all but 256 agents would reconnect, a burst of thousands of new connections
// that real agents never make.
const pollAgent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: Infinity });
const workAgent = new Agent({ keepAlive: true, maxSockets: REPORT_CONCURRENCY });

interface Sim {
  readonly name: string;
  credential: string;
  seq: number;
}
const sims: Sim[] = [];
/** Failed check-ins by error code (ECONNRESET, ECONNREFUSED, …): a healthy run has none. */
const checkinErrors: Record<string, number> = {};
/** action id → receive time per agent index. */
const received = new Map<string, number[]>();
let stopping = false;

function post(
  path: string,
  body: string,
  credential: string | null,
  agent: Agent,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: base.hostname,
        port: base.port,
        path,
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...(credential ? { authorization: `Bearer ${credential}` } : {}),
        },
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function pool<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

const guid = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
/** A few distinct update lists; agents share them (the server does not care who else has them). */
const REPORT_BODIES = Array.from({ length: 32 }, (_, k) => {
  const updates = Array.from({ length: REPORT_UPDATES }, (_, i) => {
    const n = (k * 97 + i * 13) % CATALOG_UPDATES;
    return {
      updateId: guid(n),
      revisionNumber: 200 + (n % 7),
      kbs: [String(5_000_000 + n)],
      applicability: i % 3 === 0 ? 'installed' : 'needed',
      downloaded: false,
      lastAttempt: null,
    };
  });
  return JSON.stringify({
    protocol: 1,
    seq: 0,
    baseSeq: null,
    scannedAt: new Date().toISOString(),
    source: 'offline',
    catalogSha256: null,
    rebootPending: false,
    updates,
    removed: [],
  });
});

async function poll(index: number): Promise<void> {
  const sim = sims[index]!;
  // As a real agent does: each check-in names the policy it holds (the server then leaves it out).
  let policyDigest: string | null = null;
  while (!stopping) {
    let res: { status: number; body: string };
    const body = JSON.stringify({
      protocol: 1,
      waitSeconds: 50,
      agentVersion: 'bench',
      ...(policyDigest ? { policyDigest } : {}),
    });
    try {
      res = await post('/api/v1/agent/checkin', body, sim.credential, pollAgent);
    } catch (error) {
      if (stopping) return;
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      checkinErrors[code] = (checkinErrors[code] ?? 0) + 1;
      process.stderr.write(`agent ${index}: check-in failed: ${(error as Error).message}\n`);
      await new Promise((r) => setTimeout(r, 1_000 + Math.random() * 1_000));
      continue;
    }
    const at = epochMs();
    if (res.status !== 200) throw new Error(`check-in answered ${res.status}: ${res.body}`);
    const answer = JSON.parse(res.body) as { actions: { id: string }[]; policyDigest: string };
    policyDigest = answer.policyDigest;
    for (const action of answer.actions) {
      let times = received.get(action.id);
      if (!times) received.set(action.id, (times = []));
      times[index] = at;
      await post(
        `/api/v1/agent/actions/${action.id}/progress`,
        JSON.stringify({ protocol: 1, state: 'received', at: new Date().toISOString() }),
        sim.credential,
        workAgent,
      );
    }
  }
}

process.on('message', (msg: { cmd: string; perAgent?: number; actionId?: string }) => {
  void (async () => {
    if (msg.cmd === 'reports') {
      const perAgent = msg.perAgent ?? 1;
      const jobs = Array.from({ length: sims.length * perAgent }, (_, i) => i % sims.length);
      const started = epochMs();
      let failed = 0;
      await pool(jobs, REPORT_CONCURRENCY, async (index) => {
        const sim = sims[index]!;
        sim.seq++;
        const body = REPORT_BODIES[index % REPORT_BODIES.length]!.replace('"seq":0', `"seq":${sim.seq}`);
        const res = await post('/api/v1/agent/reports', body, sim.credential, workAgent);
        if (res.status !== 200) failed++;
      });
      process.send!({ reply: 'reports', reports: jobs.length, failed, seconds: (epochMs() - started) / 1000 });
    } else if (msg.cmd === 'received') {
      const times = received.get(msg.actionId!) ?? [];
      process.send!({
        reply: 'received',
        times: Array.from({ length: sims.length }, (_, i) => times[i] ?? null),
        checkinErrors,
      });
    } else if (msg.cmd === 'stop') {
      stopping = true;
      pollAgent.destroy();
      workAgent.destroy();
      process.exit(0);
    }
  })();
});

await pool(
  Array.from({ length: count }, (_, i) => i),
  ENROLL_CONCURRENCY,
  async (i) => {
    const name = `bench${String(i).padStart(5, '0')}`;
    const res = await post(
      '/api/v1/agent/enroll',
      JSON.stringify({ protocol: 1, token, hostName: name, agentVersion: 'bench' }),
      null,
      workAgent,
    );
    if (res.status !== 201) throw new Error(`enroll ${name}: ${res.status} ${res.body}`);
    sims[i] = { name, credential: (JSON.parse(res.body) as { credential: string }).credential, seq: 0 };
  },
);
for (let i = 0; i < sims.length; i++)
  void poll(i).catch((error: unknown) => process.stderr.write(`agent ${i}: ${(error as Error).message}\n`));
process.send!({ reply: 'enrolled', agents: sims.length });
