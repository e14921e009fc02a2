/**
 * Loaded into the worker process with `node --import tsx --import ./tools/chaos/worker-probe.ts`.
 * It changes nothing the worker does: it wraps the global fetch (which the HeyGen client uses) to
 * tag each HeyGen request with the worker's pid and with what this process already knew about
 * Retry-After, so the chaos run can tell a request that was merely in flight when a 429 was answered
 * from one sent while the process knew it had to wait.
 */
import { retryAfterDeadline } from './retry-after.js';

/** A 429 counts as known once the process has had it this long: the client reads the body before closing its gate. */
const SETTLE_MS = Number(process.env.CHAOS_PROBE_SETTLE_MS ?? 25);

const baseUrl = process.env.HEYGEN_BASE_URL ?? '';
const learned: Array<{ learnedAt: number; until: number }> = [];

function settledKnowledge(now: number): number {
  let known = 0;
  for (let i = learned.length - 1; i >= 0; i--) {
    const entry = learned[i]!;
    if (entry.until <= now) learned.splice(i, 1);
    else if (entry.learnedAt <= now - SETTLE_MS) known = Math.max(known, entry.until);
  }
  return known;
}

function urlOf(input: Parameters<typeof fetch>[0]): string {
  if (typeof input === 'string') return input;
  if (input instanceof URL) return input.href;
  return input.url;
}

const originalFetch = globalThis.fetch;

globalThis.fetch = async (input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> => {
  if (baseUrl === '' || !urlOf(input).startsWith(baseUrl)) return originalFetch(input, init);
  const headers = new Headers(init?.headers);
  headers.set('x-chaos-pid', String(process.pid));
  headers.set('x-chaos-known-until', String(settledKnowledge(Date.now())));
  const response = await originalFetch(input, { ...init, headers });
  if (response.status === 429) {
    // The proxy stamps the 429 with the time it arrived there, the start of its Retry-After.
    const at = Number(response.headers.get('x-chaos-at'));
    const until = retryAfterDeadline(
      Number.isFinite(at) && at > 0 ? at : Date.now(),
      response.headers.get('retry-after'),
    );
    if (until !== null) learned.push({ learnedAt: Date.now(), until });
  }
  return response;
};
