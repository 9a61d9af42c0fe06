/**
 * Serves the web console (web/dist, built by `npm ci` through the `prepare` script) at `/`, with
 * strict security headers: a Content-Security-Policy without 'unsafe-inline' (the console has no
 * inline script or style), frame-ancestors 'none', no sniffing, no referrer. The files are public
 * — they hold no data; every API call they make is authenticated. Hashed assets are immutable;
 * index.html is revalidated so a server upgrade shows the new console at once.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ApiError } from './errors.ts';

/** web/dist beside the sources (src/server → ../../web/dist). */
export const CONSOLE_DIR = resolve(fileURLToPath(new URL('../../web/dist', import.meta.url)));

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers every console response carries. */
export function setConsoleHeaders(reply: FastifyReply): void {
  void reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
  void reply.header('x-content-type-options', 'nosniff');
  void reply.header('x-frame-options', 'DENY');
  void reply.header('referrer-policy', 'no-referrer');
  void reply.header('cross-origin-opener-policy', 'same-origin');
}

export async function consoleRoutes(app: FastifyInstance, dir: string = CONSOLE_DIR): Promise<void> {
  const built = existsSync(join(dir, 'index.html'));
  if (built) {
    // Routes are declared here (not by the plugin) so each carries `access: public` and stays out
    // of the OpenAPI document, which describes the API only.
    await app.register(fastifyStatic, { root: dir, serve: false });
  }
  const notBuilt = (): never => {
    throw new ApiError(
      503,
      'CONSOLE_NOT_BUILT',
      `The console is not built (${dir}/index.html is missing): run "npm run build:web" in the Patchline folder, then reload.`,
    );
  };
  const routeOptions = { config: { access: 'public' as const }, schema: { hide: true } };
  app.get('/', routeOptions, async (_request, reply) => {
    if (!built) notBuilt();
    setConsoleHeaders(reply);
    void reply.header('cache-control', 'no-cache');
    return reply.sendFile('index.html', { cacheControl: false });
  });
  app.get('/assets/*', routeOptions, async (request, reply) => {
    if (!built) notBuilt();
    const file = (request.params as { '*': string })['*'];
    setConsoleHeaders(reply);
    // Vite names assets by content hash: they never change under one name.
    void reply.header('cache-control', 'public, max-age=31536000, immutable');
    return reply.sendFile(join('assets', file), { cacheControl: false });
  });
}
