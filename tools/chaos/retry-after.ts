/**
 * The "no HeyGen request before Retry-After" invariant, computed from what the recording proxy saw.
 *
 * For every 429 that arrived at time t with Retry-After r, every later request with the same API key
 * that arrived in (t, t + r) is classified:
 * - `raced`: sent by the same worker process before that process had learned of the 429 (it was
 *   already in flight, or its response had not been read yet). Unavoidable with concurrent calls.
 * - `same_process`: the sending process had known of a Retry-After covering this moment for at least
 *   the probe's settle time, and sent anyway. A violation: the worker's rate gate leaks.
 * - `raced` also: sent by another worker process before the 429 had been read (plus the settle
 *   time) by the process it went to: nobody could have known yet.
 * - `across_restart`: sent by a worker process started after the 429 was read, while it was still
 *   in force. A violation: the gate did not survive the restart (HEYGEN_RATE_GATE_FILE).
 * - `across_processes`: sent by another worker process that was running when the 429 was read, after
 *   that. A violation of the cross-process rule: the workers share one API key, so one budget.
 * - `unreceived`: the 429 went to a process that died before it could read it; nobody could know.
 * - `unattributed`: the request carries no probe headers, so it cannot be cleared (counted as a violation).
 */

export interface ProxyRecord {
  id: number;
  /** Arrival at the proxy, epoch ms. */
  at: number;
  method: string;
  path: string;
  /** A digest prefix of the credential (x-api-key or bearer); '' when none was sent. */
  keyId: string;
  /** The sending worker process (probe header); null without the probe. */
  pid: number | null;
  /**
   * The sending process's settled knowledge when it sent this request: the latest Retry-After deadline
   * (epoch ms) among the 429s it had read at least the probe's settle time before. Null without the probe.
   */
  knownUntil: number | null;
  /** When the worker's fetch started, epoch ms (probe); null without the probe. */
  sentAt: number | null;
  /** The activity that sent it (probe): its type, attempt, ID and workflow run. Null outside an activity. */
  activity: { type: string; attempt: number; id: string; runId: string } | null;
  /** HTTP status returned to the worker; 0 when none was (hang, proxy down, client gone). */
  status: number;
  retryAfter: string | null;
  /** When the response was fully written to the worker, epoch ms; null if never. */
  respondedAt: number | null;
  /** The worker closed the connection before the response was complete (timeout or death). */
  clientAborted: boolean;
}

export interface ProcessLife {
  pid: number;
  startedAt: number;
  /** When it exited (or was killed), epoch ms; null while alive. */
  endedAt: number | null;
}

export type WindowClass =
  'raced' | 'unreceived' | 'same_process' | 'across_restart' | 'across_processes' | 'unattributed';
const VIOLATIONS: ReadonlySet<WindowClass> = new Set([
  'same_process',
  'across_restart',
  'across_processes',
  'unattributed',
]);
const SEVERITY: Record<WindowClass, number> = {
  raced: 0,
  unreceived: 1,
  unattributed: 2,
  across_processes: 3,
  across_restart: 4,
  same_process: 5,
};
/** How long a process takes, after reading a 429, to close its gate and write the gate file. */
export const GATE_SETTLE_MS = 25;

export interface RetryAfterViolation {
  class: WindowClass;
  request: { id: number; at: number; method: string; path: string; pid: number | null };
  rateLimited: { id: number; at: number; retryAfter: string; until: number; pid: number | null };
  /** How long before Retry-After ended the request arrived, ms. */
  earlyByMs: number;
}

export interface RetryAfterAnalysis {
  /** 429 answers the workers received. */
  rateLimited: number;
  /** 429s whose Retry-After could not be read (none expected: the sandbox always sends one). */
  unreadableRetryAfter: number;
  /** Distinct requests that arrived inside some Retry-After window, by their worst class. */
  inWindow: Record<WindowClass, number>;
  violations: number;
  /** The first few violations, for the report. */
  examples: RetryAfterViolation[];
  /** How long after a 429's response its process must still have lived to count as having read it. */
  receiptToleranceMs: number;
}

function classify(
  request: ProxyRecord,
  limited: ProxyRecord,
  until: number,
  neverRead: boolean,
  startOf: ReadonlyMap<number, number>,
): WindowClass {
  if (request.pid === null || limited.pid === null) return 'unattributed';
  if (request.pid === limited.pid)
    return request.knownUntil !== null && request.knownUntil >= until ? 'same_process' : 'raced';
  if (neverRead) return 'unreceived';
  // Another process can know only once the receiver has read the 429 and shared it.
  const knowable = (limited.respondedAt ?? limited.at) + GATE_SETTLE_MS;
  if ((request.sentAt ?? request.at) < knowable) return 'raced';
  return (startOf.get(request.pid) ?? 0) > knowable ? 'across_restart' : 'across_processes';
}

/** The end of a Retry-After, epoch ms: delay-seconds (integer, or decimal as the client accepts) or an HTTP-date. */
export function retryAfterDeadline(at: number, value: string | null): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+(?:\.\d+)?$/.test(text)) return at + Math.ceil(Number(text) * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : date;
}

export function analyzeRetryAfter(
  records: readonly ProxyRecord[],
  processes: readonly ProcessLife[],
  opts: { receiptToleranceMs?: number; maxExamples?: number } = {},
): RetryAfterAnalysis {
  const receiptToleranceMs = opts.receiptToleranceMs ?? 100;
  const maxExamples = opts.maxExamples ?? 10;
  const sorted = [...records].sort((a, b) => a.at - b.at || a.id - b.id);
  const endOf = new Map(processes.map((p) => [p.pid, p.endedAt]));
  const startOf = new Map(processes.map((p) => [p.pid, p.startedAt]));
  const worst = new Map<number, { cls: WindowClass; violation: RetryAfterViolation }>();
  let rateLimited = 0;
  let unreadableRetryAfter = 0;

  for (let i = 0; i < sorted.length; i++) {
    const limited = sorted[i]!;
    if (limited.status !== 429) continue;
    rateLimited += 1;
    const until = retryAfterDeadline(limited.at, limited.retryAfter);
    if (until === null) {
      unreadableRetryAfter += 1;
      continue;
    }
    const limitedEnd = endOf.get(limited.pid ?? -1) ?? null;
    const neverRead =
      limited.clientAborted ||
      limited.respondedAt === null ||
      (limitedEnd !== null && limitedEnd < limited.respondedAt + receiptToleranceMs);

    for (let j = i + 1; j < sorted.length; j++) {
      const request = sorted[j]!;
      if (request.at >= until) break;
      if (request.keyId !== limited.keyId) continue;
      const cls = classify(request, limited, until, neverRead, startOf);

      const previous = worst.get(request.id);
      if (previous && SEVERITY[previous.cls] >= SEVERITY[cls]) continue;
      worst.set(request.id, {
        cls,
        violation: {
          class: cls,
          request: {
            id: request.id,
            at: request.at,
            method: request.method,
            path: request.path,
            pid: request.pid,
          },
          rateLimited: {
            id: limited.id,
            at: limited.at,
            retryAfter: limited.retryAfter ?? '',
            until,
            pid: limited.pid,
          },
          earlyByMs: until - request.at,
        },
      });
    }
  }

  const inWindow: Record<WindowClass, number> = {
    raced: 0,
    unreceived: 0,
    same_process: 0,
    across_restart: 0,
    across_processes: 0,
    unattributed: 0,
  };
  const violations: RetryAfterViolation[] = [];
  for (const { cls, violation } of worst.values()) {
    inWindow[cls] += 1;
    if (VIOLATIONS.has(cls)) violations.push(violation);
  }
  violations.sort((a, b) => a.request.at - b.request.at);
  return {
    rateLimited,
    unreadableRetryAfter,
    inWindow,
    violations: violations.length,
    examples: violations.slice(0, maxExamples),
    receiptToleranceMs,
  };
}
