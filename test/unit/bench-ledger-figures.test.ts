/** The benchmark's ledger arithmetic: the busiest second, request matching, Retry-After windows. */
import { describe, expect, it } from 'vitest';
import { closureWrittenAt, matchRequests, retryAfterFigures } from '../../tools/bench/ledger-figures.js';
import { busiestWindow } from '../../tools/kit/busiest-window.js';
import type { ArrivedRequest, MatchedRequest, SentRequest } from '../../tools/bench/ledger-figures.js';

const GROUP = '/v3/avatars/ag_1';

function sent(pid: number, sentAt: number, status = 200, extra: Partial<SentRequest> = {}): SentRequest {
  return {
    pid,
    sentAt,
    respondedAt: sentAt + 1,
    bodyReadAt: status === 429 ? sentAt + 2 : null,
    status,
    retryAfter: status === 429 ? '1' : null,
    method: 'GET',
    path: GROUP,
    ...extra,
  };
}

/** A request that arrived at `at` (ledger clock) sent by `sender`. */
function arrived(at: number, sender: SentRequest | null, status = sender?.status ?? 200): MatchedRequest {
  return { at, method: 'GET', path: GROUP, status, sender };
}

describe('busiestWindow', () => {
  it('finds the busiest sliding window, even across a fixed-window boundary', () => {
    // Fixed one-second windows see 4 and 3; the 6 from 950 ms on fall within one second.
    const arrivals = [0, 950, 960, 990, 1_010, 1_020, 1_040, 2_500];
    expect(busiestWindow(arrivals, 1_000)).toEqual({ count: 6, at: 950 });
  });

  it('counts a request at exactly start + window in the next window only', () => {
    expect(busiestWindow([0, 1_000], 1_000).count).toBe(1);
    expect(busiestWindow([0, 999], 1_000).count).toBe(2);
  });

  it('is zero without requests', () => {
    expect(busiestWindow([], 1_000).count).toBe(0);
  });
});

describe('matchRequests', () => {
  it('pairs ledger entries with the records of the same path in order, and counts the rest', () => {
    const a = sent(1, 10);
    const b = sent(2, 20, 429);
    const lost = sent(1, 25, 0); // the connection failed before the sandbox saw it
    const c = sent(1, 30);
    const ledger: ArrivedRequest[] = [
      { at: 11, method: 'GET', path: GROUP, status: 200 },
      { at: 21, method: 'GET', path: GROUP, status: 429 },
      { at: 31, method: 'GET', path: GROUP, status: 200 },
      { at: 40, method: 'POST', path: `${GROUP}/consent`, status: 200 },
    ];
    const { requests, unmatchedRecords } = matchRequests(ledger, [c, lost, b, a]);
    expect(requests.map((r) => r.sender)).toEqual([a, b, c, null]);
    expect(unmatchedRecords).toBe(1);
  });
});

describe('retryAfterFigures', () => {
  const limitedBy1 = sent(1, 1_000, 429); // arrives at 1_000.5, answered 1_001, body read 1_002

  it('sorts the requests inside a window by what their sender could know', () => {
    const requests = [
      arrived(1_000, limitedBy1),
      arrived(1_001, sent(2, 1_000.6)), // sent before the 429 reached anyone
      arrived(1_002, sent(2, 1_001.5)), // after the headers, before the body was read
      arrived(1_010, sent(2, 1_009)), // another process, its gate long closed
      arrived(1_020, sent(1, 1_019)), // the receiving process itself
      arrived(1_030, null), // no record: cannot be cleared
      arrived(2_000, sent(2, 1_999)), // the window [1_000, 2_000) is over
    ];
    const figures = retryAfterFigures(requests, { fallbackRetryAfterMs: 1_000 });
    expect(figures.rateLimited).toBe(1);
    expect(figures.inside).toEqual({
      inFlight: 1,
      gateClosing: 1,
      otherProcess: 1,
      sameProcess: 1,
      unattributed: 1,
    });
    expect(figures.violations).toBe(4);
    expect(figures.examples.map((e) => e.class)).toEqual([
      'gateClosing',
      'otherProcess',
      'sameProcess',
      'unattributed',
    ]);
  });

  it('uses the Retry-After the receiver read (as the client reads it), or the fallback when no record matched', () => {
    const longWait = sent(1, 1_000, 429, { retryAfter: '3' });
    const later = arrived(3_500, sent(2, 3_499));
    expect(
      retryAfterFigures([arrived(1_000, longWait), later], { fallbackRetryAfterMs: 1_000 }).violations,
    ).toBe(1);
    expect(
      retryAfterFigures([arrived(1_000, null, 429), later], { fallbackRetryAfterMs: 1_000 }),
    ).toMatchObject({ violations: 0, rateLimitedUnattributed: 1 });
    // "0.2" is honoured as the client's minimum, 1 s.
    const short = sent(1, 1_000, 429, { retryAfter: '0.2' });
    expect(
      retryAfterFigures([arrived(1_000, short), arrived(1_500, sent(2, 1_499))], {
        fallbackRetryAfterMs: 1_000,
      }).violations,
    ).toBe(1);
  });

  it('counts a request once, in its worst class, when windows overlap', () => {
    const second = sent(2, 1_500, 429);
    const requests = [
      arrived(1_000, limitedBy1),
      arrived(1_500, second),
      // In flight for the second 429 (sent before it was answered), but sent by process 1 long after
      // it had closed its gate for the first one.
      arrived(1_501, sent(1, 1_500.2)),
    ];
    const figures = retryAfterFigures(requests, { fallbackRetryAfterMs: 1_000 });
    // The second 429 itself arrived inside the first window, from another process.
    expect(figures.inside.otherProcess).toBe(1);
    expect(figures.inside.sameProcess).toBe(1);
    expect(figures.violations).toBe(2);
  });

  it('tells apart the other processes that sent before the shared queue was closed', () => {
    const requests = [
      arrived(1_000, limitedBy1),
      arrived(1_010, sent(2, 1_009)),
      arrived(1_050, sent(2, 1_049)),
    ];
    const figures = retryAfterFigures(requests, { fallbackRetryAfterMs: 1_000, queueClosedAt: [1_030] });
    expect(figures.inside.otherProcess).toBe(2);
    expect(figures.otherProcessBeforeQueueClosed).toBe(1);
  });

  it('finds nothing inside when no 429 was answered', () => {
    const figures = retryAfterFigures([arrived(1, sent(1, 0)), arrived(2, sent(2, 1))], {
      fallbackRetryAfterMs: 1_000,
    });
    expect(figures).toMatchObject({ rateLimited: 0, violations: 0 });
  });
});

describe('closureWrittenAt', () => {
  it("finds when a 429's closure reached the gate file", () => {
    const deadlines = [7_050, 2_003, 2_003];
    // Deadline 2_003 with Retry-After 1 s: written at 1_003, 2.6 ms after the headers.
    expect(closureWrittenAt({ respondedAt: 1_000.4, waitMs: 1_000 }, deadlines)).toBe(1_003);
    expect(closureWrittenAt({ respondedAt: 5_000, waitMs: 2_000 }, deadlines)).toBe(5_050);
    // A longer closure already covered this one: nothing was written for it.
    expect(closureWrittenAt({ respondedAt: 9_000, waitMs: 1_000 }, deadlines)).toBeNull();
  });

  it('moves the end of "gate closing" to the write, when known', () => {
    const limited = sent(1, 1_000, 429, { gateClosedAt: 1_020 });
    const requests = [
      arrived(1_000, limited),
      arrived(1_016, sent(2, 1_015)),
      arrived(1_031, sent(2, 1_030)),
    ];
    const figures = retryAfterFigures(requests, { fallbackRetryAfterMs: 1_000 });
    expect(figures.inside).toMatchObject({ gateClosing: 1, otherProcess: 1 });
  });
});
