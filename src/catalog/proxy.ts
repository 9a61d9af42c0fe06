/**
 * Proxy selection for outbound downloads: `--proxy URL` wins; otherwise HTTPS_PROXY / HTTP_PROXY /
 * NO_PROXY from the environment (upper or lower case), as curl and most tools read them.
 */
import { EnvHttpProxyAgent, ProxyAgent, type Dispatcher } from 'undici';
import { usageError } from '../domain/errors.ts';

export function proxyDispatcher(
  proxy: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Dispatcher | undefined {
  if (proxy) {
    try {
      new URL(proxy);
    } catch (cause) {
      throw usageError(
        'USAGE_PROXY',
        `--proxy ${proxy}: not a URL. Write it as http://proxy.example:3128 (credentials as http://user:pass@host:port).`,
        { cause },
      );
    }
    return new ProxyAgent(proxy);
  }
  const fromEnv = env.HTTPS_PROXY ?? env.https_proxy ?? env.HTTP_PROXY ?? env.http_proxy;
  return fromEnv ? new EnvHttpProxyAgent() : undefined;
}

/** The proxy URL with any password removed, for logs. */
export function redactProxy(proxy: string): string {
  try {
    const u = new URL(proxy);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid proxy URL)';
  }
}
