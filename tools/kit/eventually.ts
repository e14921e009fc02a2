/**
 * The one way the harness waits: for a condition, never for a fixed time.
 *
 * `eventually(what, probe)` calls `probe` at once and then every `intervalMs` (default 100 ms):
 * - a value other than `undefined` or `false` ends the wait and is returned;
 * - `undefined` or `false` means "not yet";
 * - a probe that throws also means "not yet" (a server still starting refuses connections); the
 *   last error is kept and shown if the wait fails.
 * The wait fails with "timed out after N s waiting for <what>" once `timeoutMs` (default 30 s) has
 * passed, with the last error as its cause, or at once with the signal's reason when `signal`
 * aborts (Ctrl-C, or the process being waited for has exited).
 *
 * When running out of time is a result rather than a failure (a benchmark phase that reports how
 * far it got), end the call with `.catch(unlessTimeout)`.
 */
export interface EventuallyOptions {
  timeoutMs?: number;
  intervalMs?: number;
  signal?: AbortSignal;
}

export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/** `.catch(unlessTimeout)`: a wait that ran out of time gives `undefined`; any other failure stays one. */
export function unlessTimeout(error: unknown): undefined {
  if (error instanceof TimeoutError) return undefined;
  throw error;
}

export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: EventuallyOptions = {},
): Promise<Exclude<T, undefined | false>> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const intervalMs = options.intervalMs ?? 100;
  const { signal } = options;
  const until = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    signal?.throwIfAborted();
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value as Exclude<T, undefined | false>;
    } catch (error) {
      lastError = error;
    }
    signal?.throwIfAborted();
    if (Date.now() >= until) {
      const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new TimeoutError(`timed out after ${timeoutMs / 1000} s waiting for ${what}${reason}`, {
        cause: lastError,
      });
    }
    await pause(Math.min(intervalMs, Math.max(0, until - Date.now())), signal);
  }
}

/** Waits `ms`, or less when `signal` aborts (the caller checks it next). */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
