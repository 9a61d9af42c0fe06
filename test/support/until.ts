/**
 * Waiting in tests for something a real process or server does, without fixed sleeps: poll a
 * check until it yields a value, and fail with what was awaited and what was seen last.
 */

/** Polls `check` until it returns a value; fails after `ms` saying what was awaited and what was seen last. */
export async function until<T>(
  what: string,
  ms: number,
  check: () => Promise<T | undefined>,
  seen: () => string,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; last seen: ${seen()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
