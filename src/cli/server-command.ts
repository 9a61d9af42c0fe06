/**
 * `patchline server` — the fleet server, and the commands that administer it:
 *   patchline server [--data DIR] [--db URL] [--listen HOST:PORT] [--tls-cert F --tls-key F] [--insecure-http]
 *                    [--catalog-source URL] [--catalog-sync-interval D] [--content-grace D] [--lab SCENARIO …]
 *     (server-run.ts composes the running server; server-lab*.ts the lab)
 *   patchline server token create --name N --role R [--expires 90d] [--json] · token revoke ID|NAME · token list
 *   patchline server user add NAME --role R · user passwd NAME   (password from a prompt, or the first line of stdin)
 *   patchline server enroll-token create --ring R --expires 7d [--single-use] [--json]
 * Administration commands write the store directly (audited as `cli:<os user>`), so they work
 * while the server runs; the server sees their changes through the store.
 */
import { userInfo } from 'node:os';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { Command, Option } from 'commander';
import { usageError } from '../domain/errors.ts';
import { changeUser, createApiToken, createEnrollToken, createUser, revokeToken } from '../server/accounts.ts';
import { MICROSOFT_CATALOG_URL } from '../catalog/sync.ts';
import { resolveStoreLocation } from '../server/config.ts';
import { ensureSelfSigned } from '../server/tls.ts';
import { ROLES } from '../server/auth/roles.ts';
import { ApiError } from '../server/errors.ts';
import { openDatabase, type Database_ } from '../store/open.ts';
import { listApiTokens } from '../store/server/credentials-repo.ts';
import { getSetting, putSetting, SETTING } from '../store/server/settings-repo.ts';
import { parseDuration } from './run-options.ts';
import { LAB_AGENT_MODES, registerLabAgentCommand } from './server-lab-agents.ts';
import { runServer, type ServerRunOptions } from './server-run.ts';

const SERVER_HELP = `
The server keeps its SQLite store, catalog and content cache in --data. It syncs the catalog
on its schedule (only downloading it when it changed), fetches an update's payload files only
when a host needs it and may install it, and serves both to its agents.

A lab to try it (nothing to install; plain HTTP on loopback; Ctrl-C stops it, --data resumes it):
  patchline server --lab examples/lab/patch-night.yaml
  patchline server --lab examples/lab/patch-night.yaml --data /tmp/lab --listen 127.0.0.1:0 --lab-agents process
It prints the console URL and the admin login (the password once; reset it with
\`patchline server user passwd admin --data DIR\`), and the API calls that allow the security
updates for the pilot ring. The lab's rings are always in their maintenance window.

A real server:
  patchline server --data /var/lib/patchline --listen 0.0.0.0:8443
  patchline server user add alice --role admin --data /var/lib/patchline
  patchline server enroll-token create --ring pilot --expires 7d --data /var/lib/patchline`;

interface StoreOptions {
  data?: string;
  db?: string;
}

const cliActor = () => ({ actor: `cli:${userInfo().username}`, ip: null });

/** API errors raised by shared account code become usage errors with the same code. */
function asCliError(error: unknown): unknown {
  return error instanceof ApiError ? usageError(error.code, error.message, { cause: error }) : error;
}

async function withStore<T>(options: StoreOptions, fn: (store: Database_) => Promise<T>): Promise<T> {
  const store = await openDatabase(resolveStoreLocation(options).db);
  try {
    return await fn(store);
  } catch (error) {
    throw asCliError(error);
  } finally {
    await store.close();
  }
}

const deps = (store: Database_) => ({ store, now: () => new Date() });

/** The password: typed twice at a terminal (not echoed), else the first line of stdin. */
async function readPassword(name: string): Promise<string> {
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
    if (line === '')
      throw usageError(
        'PASSWORD_MISSING',
        'No password on stdin: pipe it in (first line), or run at a terminal to be asked.',
      );
    return line;
  }
  let muted = false;
  const output = new Writable({ write: (chunk, _enc, done) => void (muted || process.stderr.write(chunk), done()) });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  const ask = (q: string) =>
    new Promise<string>((resolve) => {
      process.stderr.write(q);
      muted = true;
      rl.question('', (answer) => {
        muted = false;
        process.stderr.write('\n');
        resolve(answer);
      });
    });
  try {
    const first = await ask(`Password for ${name}: `);
    const second = await ask('Again: ');
    if (first !== second) throw usageError('PASSWORD_MISMATCH', 'The two passwords differ; nothing was changed.');
    return first;
  } finally {
    rl.close();
  }
}

function storeOptions(cmd: Command): Command {
  return cmd
    .option(
      '--data <dir>',
      'the server data directory (default: the per-user data directory /patchline/server, or $PATCHLINE_DATA)',
    )
    .option(
      '--db <url>',
      'the store: a postgres://… URL, or a SQLite file (default: DATA/server.sqlite, or $PATCHLINE_DB)',
    );
}

const roleOption = () =>
  new Option(
    '--role <role>',
    'viewer (reads), operator (also triggers actions) or admin (also changes rules, rings, users, tokens)',
  )
    .choices([...ROLES])
    .makeOptionMandatory();

export function registerServerCommand(program: Command): void {
  const server = storeOptions(
    program
      .command('server')
      .description(
        'Run the fleet server (REST API, agents, rules and rings, catalog sync, content cache), or administer it.',
      ),
  )
    .option(
      '--listen <host:port>',
      'address to listen on (port 0: any free port; the URL printed is the real one)',
      '127.0.0.1:8443',
    )
    .option('--tls-cert <file>', 'PEM certificate (default: a self-signed one created in DATA/tls on first start)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--insecure-http', 'serve plain HTTP (warns unless on loopback): only behind a TLS proxy')
    .option(
      '--catalog-source <url>',
      `where the catalog (wsusscn2.cab) is synced from (default: ${MICROSOFT_CATALOG_URL})`,
    )
    .option(
      '--catalog-sync-interval <duration>',
      'how often the catalog is synced (only downloaded if it changed); "off" to sync only on request',
      '24h',
    )
    .option(
      '--trust <pem...>',
      "also trust this root certificate for the catalog's signature (Microsoft's are always trusted)",
    )
    .option('--content-grace <duration>', 'cached payloads no host needs are deleted after this long', '7d')
    .option(
      '--content-cleanup-interval <duration>',
      'how often the content cache is cleaned up; "off" for on request only',
      '24h',
    )
    .option(
      '--lab <scenario>',
      'a lab server: a signed lab catalog of the scenario from a fake upstream, one enrolled agent per scenario host',
    )
    .addOption(
      new Option('--lab-agents <mode>', "lab agents in the server's process, or one process each").choices([
        ...LAB_AGENT_MODES,
      ]),
    )
    .option('--lab-time-scale <n>', "override the scenario's timeScale (smaller: quicker installs and reboots)")
    .addHelpText('after', SERVER_HELP)
    .action(async (options: ServerRunOptions) => {
      await runServer(options);
    });
  registerLabAgentCommand(server);

  const token = server.command('token').description('API tokens for scripts (Authorization: Bearer …).');
  token
    .command('create')
    .description('create an API token; prints the token alone (once), or an object with --json')
    .requiredOption('--name <name>', 'what the token is for (e.g. ci)')
    .addOption(roleOption())
    .option('--expires <duration>', 'expire after this long (e.g. 90d); default: never')
    .option('--json', 'print {"id","name","role","token","expiresAt"}')
    .action(async (options: { name: string; role: string; expires?: string; json?: boolean }, cmd: Command) => {
      const expiresInDays =
        options.expires === undefined
          ? undefined
          : Math.max(1, Math.round(parseDuration('--expires', options.expires) / 86_400_000));
      const created = await withStore(cmd.optsWithGlobals(), (store) =>
        createApiToken(deps(store), cliActor(), { name: options.name, role: options.role, expiresInDays }),
      );
      process.stdout.write(
        options.json
          ? `${JSON.stringify({ id: created.id, name: created.name, role: created.role, token: created.token, expiresAt: created.expiresAt })}\n`
          : `${created.token}\n`,
      );
    });
  token
    .command('revoke <idOrName>')
    .description('revoke an API token by id or name (refused at once)')
    .action(async (idOrName: string, _options: unknown, cmd: Command) => {
      const revoked = await withStore(cmd.optsWithGlobals(), (store) => revokeToken(deps(store), cliActor(), idOrName));
      process.stdout.write(`revoked token ${revoked.name} (${revoked.id})\n`);
    });
  token
    .command('list')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }, cmd: Command) => {
      const tokens = await withStore(cmd.optsWithGlobals(), (store) => listApiTokens(store.db));
      const view = tokens.map((t) => ({
        id: t.id,
        name: t.name,
        role: t.role,
        createdAt: t.created_at,
        expiresAt: t.expires_at,
        lastUsedAt: t.last_used_at,
        revokedAt: t.revoked_at,
      }));
      process.stdout.write(
        options.json
          ? `${JSON.stringify(view)}\n`
          : view
              .map(
                (t) =>
                  `${t.id}  ${t.name}  ${t.role}  ${t.revokedAt ? `revoked ${t.revokedAt}` : `last used ${t.lastUsedAt ?? 'never'}`}`,
              )
              .join('\n') + '\n',
      );
    });

  const user = server.command('user').description('Users of the console and the API.');
  user
    .command('add <name>')
    .description('add a user; the password is asked for (or read from the first line of stdin)')
    .addOption(roleOption())
    .action(async (name: string, options: { role: string }, cmd: Command) => {
      const password = await readPassword(name);
      const created = await withStore(cmd.optsWithGlobals(), (store) =>
        createUser(deps(store), cliActor(), { name, role: options.role, password }),
      );
      process.stdout.write(`added user ${created.name} (${created.role})\n`);
    });

  user
    .command('passwd <name>')
    .description("set a user's password (asked for, or the first line of stdin); their open sessions end at once")
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const password = await readPassword(name);
      await withStore(cmd.optsWithGlobals(), (store) => changeUser(deps(store), cliActor(), name, { password }));
      process.stdout.write(`changed the password of ${name}\n`);
    });

  const enroll = server
    .command('enroll-token')
    .description('Enrollment tokens for agents (patchline agent enroll --token …).');
  enroll
    .command('create')
    .description('create an enrollment token bound to a ring; prints the token alone (once), or an object with --json')
    .requiredOption('--ring <ring>', 'the ring enrolled hosts join')
    .requiredOption('--expires <duration>', 'how long it can be used, e.g. 7d (at most 90d)')
    .option('--single-use', 'one host only')
    .option('--json', 'print {"id","ring","token","expiresAt","singleUse"}')
    .action(async (options: { ring: string; expires: string; singleUse?: boolean; json?: boolean }, cmd: Command) => {
      const expiresInHours = parseDuration('--expires', options.expires) / 3_600_000;
      const globals = cmd.optsWithGlobals() as StoreOptions & { insecureHttp?: boolean };
      const created = await withStore(globals, async (store) => {
        // The fingerprint of the certificate the server serves (it records it at start); before the
        // first start, the self-signed certificate the server will use is created now.
        let fingerprint = await getSetting(store.db, SETTING.tlsFingerprint);
        if (fingerprint === undefined) {
          fingerprint = (await ensureSelfSigned(resolveStoreLocation(globals).dataDir, new Date())).fingerprint;
          await putSetting(store.db, SETTING.tlsFingerprint, fingerprint, new Date().toISOString());
        }
        return createEnrollToken(deps(store), cliActor(), {
          ring: options.ring,
          expiresInHours,
          singleUse: options.singleUse ?? false,
          fingerprint: fingerprint || null,
        });
      });
      process.stdout.write(
        options.json
          ? `${JSON.stringify({ id: created.id, ring: created.ring, token: created.token, expiresAt: created.expiresAt, singleUse: created.singleUse })}\n`
          : `${created.token}\n`,
      );
    });
}
