/**
 * A PostgreSQL server for tests: either the one `.ci/run` started (PATCHLINE_TEST_PG names a
 * connection URL with the right to CREATE DATABASE), or a throwaway cluster this process creates
 * with Debian's initdb/pg_ctl in a temporary directory, reachable only through a unix socket (no
 * port to collide with other test processes), stopped when the process ends.
 *
 * Each call of `freshPostgresDatabase()` creates an empty database, so tests stay isolated.
 * Without PostgreSQL installed the reason is returned (tests skip with it); under CI=true that is
 * a failure instead — CI must run the PostgreSQL half of every suite.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

interface Cluster {
  readonly adminUrl: string;
  readonly urlFor: (database: string) => string;
  stop(): void;
}

let cluster: Cluster | undefined;
let clusterProblem: string | undefined;

function pgBinDir(): string | undefined {
  const fromConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (fromConfig.status === 0 && existsSync(join(fromConfig.stdout.trim(), 'initdb'))) return fromConfig.stdout.trim();
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (existsSync(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin');
  return undefined;
}

/** initdb refuses to run as root: run the cluster as the `postgres` system user then. */
function runAs(user: string | undefined, bin: string, args: string[]): void {
  const [cmd, argv] = user ? ['runuser', ['-u', user, '--', bin, ...args]] : [bin, args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
}

function startCluster(): Cluster {
  const bin = pgBinDir();
  if (!bin) throw new Error('PostgreSQL is not installed (no initdb; Debian: apt-get install postgresql)');
  const isRoot = process.getuid?.() === 0;
  const user = isRoot ? 'postgres' : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'patchline-pg-'));
  const data = join(dir, 'data');
  if (user) {
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const dbUser = user ?? (process.env.USER || 'postgres');
  runAs(user, join(bin, 'initdb'), ['-D', data, '-U', dbUser, '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  // fsync off: a throwaway cluster; durability is PostgreSQL's job, not what these tests check.
  const options = `-k ${dir} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
  runAs(user, join(bin, 'pg_ctl'), ['-D', data, '-o', options, '-w', '-s', '-l', join(dir, 'log'), 'start']);
  const urlFor = (database: string): string =>
    `postgres://${encodeURIComponent(dbUser)}@localhost/${database}?host=${encodeURIComponent(dir)}`;
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    try {
      runAs(user, join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', '-s', 'stop']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  process.once('exit', stop);
  return { adminUrl: urlFor('postgres'), urlFor, stop };
}

function fromEnv(url: string): Cluster {
  return {
    adminUrl: url,
    urlFor: (database) => {
      const u = new URL(url);
      u.pathname = `/${database}`;
      return u.toString();
    },
    stop: () => undefined,
  };
}

/** Why PostgreSQL tests cannot run here, or undefined when they can. Throws under CI. */
export function postgresUnavailable(): string | undefined {
  if (cluster) return undefined;
  if (clusterProblem === undefined) {
    try {
      cluster = process.env.PATCHLINE_TEST_PG ? fromEnv(process.env.PATCHLINE_TEST_PG) : startCluster();
    } catch (error) {
      clusterProblem = (error as Error).message;
    }
  }
  if (clusterProblem !== undefined && process.env.CI === 'true') {
    throw new Error(`CI must run the PostgreSQL tests: ${clusterProblem}`);
  }
  return clusterProblem;
}

/** Creates an empty database and returns its URL. Call postgresUnavailable() first. */
export async function freshPostgresDatabase(): Promise<string> {
  if (postgresUnavailable() !== undefined || !cluster) throw new Error(`PostgreSQL unavailable: ${clusterProblem}`);
  const name = `patchline_t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: cluster.adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  return cluster.urlFor(name);
}

/** Stops a cluster this process started (also done at exit). */
export function stopPostgres(): void {
  cluster?.stop();
  cluster = undefined;
}
