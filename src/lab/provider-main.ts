/**
 * The `patchline lab provider` process: one virtual host's simulated WUA provider on stdin/stdout.
 * The lab's task scheduler (through the agent, PATCHLINE_PROVIDER_CMD) starts it; people rarely
 * do. Loads the scenario, checks the host, and serves until stdin ends or SIGTERM/SIGINT, which
 * abort the running operation the way a killed WUA job ends (state stays consistent).
 */
import type { Readable, Writable } from 'node:stream';
import { usageError } from '../domain/errors.ts';
import { loadScenario, scenarioHost } from './scenario.ts';
import { serveProvider } from './simulated-provider.ts';

export interface ProviderMainOptions {
  readonly scenarioPath: string;
  readonly hostName: string;
  readonly hostDir: string;
  readonly upstreamUrl: string;
  readonly input: Readable;
  readonly output: Writable;
  readonly signal?: AbortSignal;
}

/**
 * @example await runLabProvider({ scenarioPath, hostName: 'web01', hostDir, upstreamUrl, input: process.stdin, output: process.stdout })
 */
export async function runLabProvider(opts: ProviderMainOptions): Promise<void> {
  let upstream: URL;
  try {
    upstream = new URL(opts.upstreamUrl);
  } catch (error) {
    throw usageError('USAGE', `--upstream must be a URL such as http://127.0.0.1:8080, got "${opts.upstreamUrl}"`, {
      cause: error,
    });
  }
  if (upstream.protocol !== 'http:' && upstream.protocol !== 'https:')
    throw usageError('USAGE', `--upstream must be an http(s) URL, got "${opts.upstreamUrl}"`);
  const scenario = await loadScenario(opts.scenarioPath);
  scenarioHost(scenario, opts.hostName);
  await serveProvider(opts.input, opts.output, {
    scenario,
    hostName: opts.hostName,
    hostDir: opts.hostDir,
    upstreamUrl: opts.upstreamUrl,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}

/** Runs on the process's stdio; SIGTERM and SIGINT abort the running operation and end cleanly. */
export async function runLabProviderOnStdio(
  opts: Omit<ProviderMainOptions, 'input' | 'output' | 'signal'>,
): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  try {
    await runLabProvider({ ...opts, input: process.stdin, output: process.stdout, signal: controller.signal });
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    // stdin may still hold the event loop open after an abort.
    process.stdin.pause();
  }
}
