/**
 * Loaded into each worker process first (probed-worker.ts). It changes nothing the worker does: it
 * wraps the global fetch (which the HeyGen client uses) to tag each HeyGen request with
 * - the worker's pid and the moment the request left (x-chaos-pid, x-chaos-sent-at), so the chaos
 *   run can tell a request merely in flight when a 429 was answered from one sent after the 429
 *   could have been known, in this process or (through the shared gate file) in another;
 * - what this process already knew about Retry-After (x-chaos-known-until);
 * - the activity that sent it and its attempt (x-chaos-activity, x-chaos-attempt, x-chaos-activity-id,
 *   x-chaos-run-id), so the polls a workflow counted can be compared with the polls HeyGen saw.
 */
import { Context } from '@temporalio/activity';

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

/** The activity this fetch runs in, if any (the SDK keeps it in async context). */
function activityTags(): Record<string, string> {
  try {
    const { activityType, attempt, activityId, workflowExecution } = Context.current().info;
    return {
      'x-chaos-activity': activityType,
      'x-chaos-attempt': String(attempt),
      'x-chaos-activity-id': activityId,
      'x-chaos-run-id': workflowExecution?.runId ?? '',
    };
  } catch {
    return {};
  }
}

const originalFetch = globalThis.fetch;

globalThis.fetch = async (input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> => {
  if (baseUrl === '' || !urlOf(input).startsWith(baseUrl)) return originalFetch(input, init);
  const headers = new Headers(init?.headers);
  const now = Date.now();
  headers.set('x-chaos-pid', String(process.pid));
  headers.set('x-chaos-sent-at', String(now));
  headers.set('x-chaos-known-until', String(settledKnowledge(now)));
  for (const [name, value] of Object.entries(activityTags())) headers.set(name, value);
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
