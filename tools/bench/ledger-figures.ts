/**
 * What the sandbox ledger says about the workers' HeyGen requests: the requests that arrived inside
 * a Retry-After window, each classified by what its sender could have known (the busiest second is
 * tools/kit/busiest-window.ts). Pure functions (tested in test/unit/bench-ledger-figures.test.ts); see docs/benchmark.md.
 */
import { parseRetryAfter } from '../../src/heygen/index.js';

/** A HeyGen API request as the sandbox saw it: arrival (epoch ms, its clock) and status. */
export interface ArrivedRequest {
  at: number;
  method: string;
  path: string;
  status: number;
}

/**
 * The same request as the worker process that sent it recorded it (see worker-process.ts). Its times
 * are on the host's monotonic clock (ms, sub-millisecond precision), which every process shares, so
 * one process's 429 and another's next request compare exactly.
 */
export interface SentRequest {
  /** The worker process (several may share one API key). */
  pid: number;
  /** fetch called: after the client's own gate let it through. */
  sentAt: number;
  /** Response headers received; for a 429 this is when its process could first know. */
  respondedAt: number;
  /** For a 429: when the client had read the body, after which it closes its gate (null otherwise). */
  bodyReadAt: number | null;
  /**
   * For a 429, when known: when its process had written the closure to its gate file (what the other
   * processes of the host read), from `closureWrittenAt`. Otherwise the body read stands for it.
   */
  gateClosedAt?: number | null;
  status: number;
  retryAfter: string | null;
  method: string;
  path: string;
}

export interface MatchedRequest extends ArrivedRequest {
  /** Who sent it; null when no worker record matched (then it cannot be cleared). */
  sender: SentRequest | null;
}

/**
 * Pairs each ledger entry with the worker record of the same request: per method and path, in
 * order (one group's requests never overlap: its workflow runs one activity at a time). A record
 * without a response (status 0: the connection failed) may not have reached the sandbox, so a
 * status mismatch skips it. Returns the entries in arrival order and how many records had no entry.
 */
export function matchRequests(
  ledger: readonly ArrivedRequest[],
  records: readonly SentRequest[],
): { requests: MatchedRequest[]; unmatchedRecords: number } {
  const queues = new Map<string, SentRequest[]>();
  for (const record of [...records].sort((a, b) => a.sentAt - b.sentAt)) {
    const key = `${record.method} ${record.path}`;
    const queue = queues.get(key) ?? [];
    queue.push(record);
    queues.set(key, queue);
  }
  let unmatchedRecords = 0;
  const requests = [...ledger]
    .sort((a, b) => a.at - b.at)
    .map((entry) => {
      const queue = queues.get(`${entry.method} ${entry.path}`) ?? [];
      // Records with no response that the sandbox never saw are skipped.
      while (queue.length > 0 && queue[0]!.status === 0 && entry.status !== 0) {
        queue.shift();
        unmatchedRecords += 1;
      }
      const sender = queue[0]?.status === entry.status ? queue.shift()! : null;
      return { ...entry, sender };
    });
  for (const queue of queues.values()) unmatchedRecords += queue.length;
  return { requests, unmatchedRecords };
}

/**
 * How a request that arrived inside a Retry-After window came to be sent, the worst over the windows
 * it fell in (this order, best first):
 * - `inFlight`: sent before the 429's response reached its process: nobody could have known.
 * - `gateClosing`: sent after the 429's headers had arrived but before its process had closed its
 *   gate: written it to the gate file when there is one, else read the body (the client closes its
 *   gate only then).
 * - `otherProcess`: sent by another worker process once the gate was closed in the receiving one
 *   (the shared gate file or the queue gate did not hold it back).
 * - `sameProcess`: sent by the process that had received the 429, after closing its own gate.
 * - `unattributed`: no worker record matched, so it cannot be cleared.
 * Every class but `inFlight` counts against the target of 0.
 */
export const WINDOW_CLASSES = [
  'inFlight',
  'gateClosing',
  'otherProcess',
  'sameProcess',
  'unattributed',
] as const;
export type WindowClass = (typeof WINDOW_CLASSES)[number];

export interface RetryAfterFigures {
  /** 429 answers in the ledger. */
  rateLimited: number;
  /** Of those, the ones no worker record matched (their window uses `fallbackRetryAfterMs`). */
  rateLimitedUnattributed: number;
  /** Requests that arrived strictly inside some window, by class. */
  inside: Record<WindowClass, number>;
  /** Everything inside but `inFlight`: the figure with the target of 0. */
  violations: number;
  /**
   * Of the `otherProcess` ones, sent before any worker had closed the shared queue (QueueGate): the
   * server had handed their activity out before the closure took effect.
   */
  otherProcessBeforeQueueClosed: number;
  /**
   * The first few violations: ms after the 429 arrived at the sandbox, ms after its receiver had
   * read it (headers; null when unattributed), class, method and path.
   */
  examples: Array<{
    afterMs: number;
    sentAfterKnownMs: number | null;
    class: WindowClass;
    method: string;
    path: string;
  }>;
}

const SEVERITY: Record<WindowClass, number> = {
  inFlight: 0,
  gateClosing: 1,
  otherProcess: 2,
  sameProcess: 3,
  unattributed: 4,
};

function classify(request: MatchedRequest, limited: MatchedRequest): WindowClass {
  const sender = request.sender;
  const receiver = limited.sender;
  if (!sender) return 'unattributed';
  // An unmatched 429 was still answered when the sandbox sent it: take its arrival as the moment.
  const knownAt = receiver?.respondedAt ?? limited.at;
  if (sender.sentAt < knownAt) return 'inFlight';
  const closedAt = receiver?.gateClosedAt ?? receiver?.bodyReadAt ?? receiver?.respondedAt;
  if (closedAt !== undefined && sender.sentAt < closedAt) return 'gateClosing';
  return receiver && sender.pid === receiver.pid ? 'sameProcess' : 'otherProcess';
}

/**
 * Retry-After windows from the ledger: each 429 opens [its arrival, arrival + Retry-After), with the
 * Retry-After its receiver read, as the product's client reads it (parseRetryAfter: at least 1 s), or
 * `fallbackRetryAfterMs` (the sandbox's own rule) when no record matched. A request is inside when it arrived strictly after the 429 and before the window ends.
 * `queueClosedAt`: when workers closed the shared HeyGen queue (their QueueGate log), on the clock of
 * the worker records.
 */
export function retryAfterFigures(
  requests: readonly MatchedRequest[],
  opts: { fallbackRetryAfterMs: number; queueClosedAt?: readonly number[]; maxExamples?: number },
): RetryAfterFigures {
  const sorted = [...requests].sort((a, b) => a.at - b.at);
  const closures = [...(opts.queueClosedAt ?? [])].sort((a, b) => a - b);
  const worst = new Map<number, { cls: WindowClass; limited: MatchedRequest }>();
  let rateLimited = 0;
  let rateLimitedUnattributed = 0;
  for (let i = 0; i < sorted.length; i++) {
    const limited = sorted[i]!;
    if (limited.status !== 429) continue;
    rateLimited += 1;
    if (!limited.sender) rateLimitedUnattributed += 1;
    const waitMs = parseRetryAfter(limited.sender?.retryAfter, limited.at, {
      defaultMs: opts.fallbackRetryAfterMs,
    });
    const end = limited.at + waitMs;
    for (let j = i + 1; j < sorted.length && sorted[j]!.at < end; j++) {
      const request = sorted[j]!;
      if (request.at <= limited.at) continue;
      const cls = classify(request, limited);
      const seen = worst.get(j);
      if (!seen || SEVERITY[cls] > SEVERITY[seen.cls]) worst.set(j, { cls, limited });
    }
  }
  const inside = Object.fromEntries(WINDOW_CLASSES.map((c) => [c, 0])) as Record<WindowClass, number>;
  let otherProcessBeforeQueueClosed = 0;
  const examples: RetryAfterFigures['examples'] = [];
  for (const [index, { cls, limited }] of [...worst.entries()].sort((a, b) => a[0] - b[0])) {
    inside[cls] += 1;
    if (cls === 'inFlight') continue;
    const request = sorted[index]!;
    if (cls === 'otherProcess') {
      const knownAt = limited.sender?.respondedAt ?? limited.at;
      const closedAt = closures.find((t) => t >= knownAt);
      if (closedAt === undefined || request.sender!.sentAt < closedAt) otherProcessBeforeQueueClosed += 1;
    }
    if (examples.length < (opts.maxExamples ?? 10)) {
      const knownAt = limited.sender?.respondedAt;
      examples.push({
        afterMs: Math.round((request.at - limited.at) * 1000) / 1000,
        sentAfterKnownMs:
          request.sender && knownAt !== undefined
            ? Math.round((request.sender.sentAt - knownAt) * 1000) / 1000
            : null,
        class: cls,
        method: request.method,
        path: request.path,
      });
    }
  }
  return {
    rateLimited,
    rateLimitedUnattributed,
    inside,
    violations: rateLimitedViolations(inside),
    otherProcessBeforeQueueClosed,
    examples,
  };
}

function rateLimitedViolations(inside: Record<WindowClass, number>): number {
  return WINDOW_CLASSES.filter((c) => c !== 'inFlight').reduce((sum, c) => sum + inside[c], 0);
}

/**
 * When a 429's process had written its closure to the gate file: `deadlines` are the deadlines the file
 * held (`monotonicUntil`, host monotonic ms), and a closure for a 429 whose Retry-After asked for
 * `waitMs` was written at its deadline − waitMs. Null when no write matches (an earlier, longer
 * closure already covered it).
 */
export function closureWrittenAt(
  response: { respondedAt: number; waitMs: number },
  deadlines: readonly number[],
): number | null {
  const { respondedAt, waitMs } = response;
  // Whole milliseconds on the writer's side: allow the one it was rounded down by.
  const written = [...deadlines]
    .sort((a, b) => a - b)
    .map((d) => d - waitMs)
    .find((at) => at >= respondedAt - 1);
  return written !== undefined && written - respondedAt < waitMs ? written : null;
}
