/**
 * The server's configuration, resolved once from the command line (and environment) into a
 * frozen value: where the data lives, which store, where to listen, and how TLS is done.
 */
import { isIP } from 'node:net';
import { join } from 'node:path';
import { usageError } from '../domain/errors.ts';
import { defaultDataDir } from '../store/paths.ts';

export const DEFAULT_LISTEN = '127.0.0.1:8443';
export const SQLITE_FILE = 'server.sqlite';
/** SIGTERM waits this long for requests in flight before closing the store anyway. */
export const SHUTDOWN_DEADLINE_MS = 10_000;

export interface ServerCliOptions {
  readonly data?: string;
  readonly db?: string;
  readonly listen?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly insecureHttp?: boolean;
}

export type TlsMode =
  | { readonly kind: 'files'; readonly cert: string; readonly key: string }
  | { readonly kind: 'self-signed' }
  | { readonly kind: 'none' };

export interface ServerConfig {
  readonly dataDir: string;
  /** SQLite file path or postgres:// URL. */
  readonly db: string;
  readonly host: string;
  readonly port: number;
  readonly tls: TlsMode;
  /** Things the operator should know at start (plain HTTP off loopback). */
  readonly warnings: readonly string[];
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]+)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535)
    throw usageError('USAGE_LISTEN', `--listen ${value}: write HOST:PORT, e.g. 0.0.0.0:8443 or [::1]:8443.`);
  const host = (m[1] ?? m[2])!;
  if (m[1] && isIP(host) !== 6) throw usageError('USAGE_LISTEN', `--listen ${value}: ${host} is not an IPv6 address.`);
  return { host, port };
}

/** Where the store is: --db wins, else `<data>/server.sqlite`. */
export function resolveStoreLocation(
  options: Pick<ServerCliOptions, 'data' | 'db'>,
  env: NodeJS.ProcessEnv = process.env,
): { dataDir: string; db: string } {
  const dataDir = options.data ?? env.PATCHLINE_DATA ?? join(defaultDataDir(env), 'server');
  return { dataDir, db: options.db ?? env.PATCHLINE_DB ?? join(dataDir, SQLITE_FILE) };
}

export function resolveServerConfig(options: ServerCliOptions, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const { dataDir, db } = resolveStoreLocation(options, env);
  const { host, port } = parseListen(options.listen ?? DEFAULT_LISTEN);
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined))
    throw usageError('USAGE_TLS', '--tls-cert and --tls-key go together.');
  if (options.insecureHttp && options.tlsCert)
    throw usageError('USAGE_TLS', '--insecure-http and --tls-cert exclude each other.');
  const warnings: string[] = [];
  let tls: TlsMode;
  if (options.tlsCert && options.tlsKey) tls = { kind: 'files', cert: options.tlsCert, key: options.tlsKey };
  else if (options.insecureHttp) {
    tls = { kind: 'none' };
    if (!isLoopback(host))
      warnings.push(
        `--insecure-http on ${host}: passwords, tokens and agent credentials cross the network in clear text. Use TLS (the default) unless a TLS proxy sits in front.`,
      );
  } else tls = { kind: 'self-signed' };
  return Object.freeze({ dataDir, db, host, port, tls, warnings: Object.freeze(warnings) });
}
