/**
 * The chaos run, short: the same code as `npm run chaos`, with 24 workflows and a 45-second chaos
 * phase (worker SIGKILLs, a Temporal restart, HeyGen faults and outage, an SMTP outage). First, the
 * invariant checks on hand-made records, so a check that cannot fail would be caught here.
 */
import { describe, expect, it } from 'vitest';

import { checkConsentRequests, checkEmails } from '../../tools/chaos/checks.js';
import type { GroupFinal } from '../../tools/chaos/checks.js';
import { formatReport, writeReport } from '../../tools/chaos/report.js';
import { analyzeRetryAfter, retryAfterDeadline } from '../../tools/chaos/retry-after.js';
import type { ProxyRecord } from '../../tools/chaos/retry-after.js';
import { runChaos } from '../../tools/chaos/run.js';
import type { ConsentRecord, LedgerEntry } from '../../tools/heygen-sandbox/index.js';
import type { ReceivedMail } from '../../tools/kit/smtp-catcher.js';

let nextId = 1;
function record(partial: Partial<ProxyRecord> & { at: number }): ProxyRecord {
  return {
    id: nextId++,
    method: 'GET',
    path: '/v3/avatars/ag_1',
    keyId: 'k1',
    pid: 100,
    knownUntil: 0,
    status: 200,
    retryAfter: null,
    respondedAt: partial.at + 5,
    clientAborted: false,
    ...partial,
  };
}

describe('Retry-After invariant', () => {
  const limited = (at: number, pid = 100, extra: Partial<ProxyRecord> = {}): ProxyRecord =>
    record({ at, pid, status: 429, retryAfter: '10', ...extra });

  it('reads delay-seconds and HTTP-dates, and nothing else', () => {
    expect(retryAfterDeadline(1_000, '3')).toBe(4_000);
    expect(retryAfterDeadline(1_000, '1.5')).toBe(2_500);
    expect(retryAfterDeadline(0, 'Thu, 01 Jan 1970 00:00:07 GMT')).toBe(7_000);
    expect(retryAfterDeadline(0, 'soon')).toBeNull();
    expect(retryAfterDeadline(0, null)).toBeNull();
  });

  it('a request already in flight when the 429 was answered is raced, not a violation', () => {
    const analysis = analyzeRetryAfter(
      [limited(1_000), record({ at: 1_010, knownUntil: 0 })],
      [{ pid: 100, startedAt: 0, endedAt: null }],
    );
    expect(analysis.inWindow.raced).toBe(1);
    expect(analysis.violations).toBe(0);
  });

  it('a request sent by a process that knew the Retry-After is a violation', () => {
    const analysis = analyzeRetryAfter(
      [limited(1_000), record({ at: 5_000, knownUntil: 11_000 })],
      [{ pid: 100, startedAt: 0, endedAt: null }],
    );
    expect(analysis.inWindow.same_process).toBe(1);
    expect(analysis.violations).toBe(1);
    expect(analysis.examples[0]).toMatchObject({ class: 'same_process', earlyByMs: 6_000 });
  });

  it('a restarted worker sending inside its predecessor’s Retry-After is a violation', () => {
    const lives = [
      { pid: 100, startedAt: 0, endedAt: 2_000 },
      { pid: 200, startedAt: 2_000, endedAt: null },
    ];
    const analysis = analyzeRetryAfter(
      [limited(1_000), record({ at: 6_000, pid: 200, knownUntil: 0 })],
      lives,
    );
    expect(analysis.inWindow.across_restart).toBe(1);
    expect(analysis.violations).toBe(1);
  });

  it('unless the predecessor died before it could read the 429', () => {
    const lives = [
      { pid: 100, startedAt: 0, endedAt: 1_020 },
      { pid: 200, startedAt: 1_100, endedAt: null },
    ];
    const analysis = analyzeRetryAfter([limited(1_000), record({ at: 6_000, pid: 200 })], lives);
    expect(analysis.inWindow.unreceived).toBe(1);
    expect(analysis.violations).toBe(0);
  });

  it('ignores other API keys, and requests once Retry-After has passed', () => {
    const analysis = analyzeRetryAfter(
      [
        limited(1_000),
        record({ at: 5_000, keyId: 'k2', knownUntil: 11_000 }),
        record({ at: 11_000, knownUntil: 11_000 }),
      ],
      [{ pid: 100, startedAt: 0, endedAt: null }],
    );
    expect(analysis.rateLimited).toBe(1);
    expect(analysis.violations).toBe(0);
    expect(analysis.inWindow.raced).toBe(0);
  });

  it('a request without the probe’s tags cannot be cleared', () => {
    const analysis = analyzeRetryAfter(
      [limited(1_000), record({ at: 2_000, pid: null, knownUntil: null })],
      [],
    );
    expect(analysis.inWindow.unattributed).toBe(1);
    expect(analysis.violations).toBe(1);
  });
});

describe('consent and email invariants', () => {
  const final = (extra: Partial<GroupFinal> = {}): GroupFinal => ({
    groupId: 'ag_1',
    email: 'a@example.com',
    fate: 'approved',
    expectedOutcome: 'approved',
    status: 'COMPLETED',
    result: {
      outcome: 'approved',
      groupId: 'ag_1',
      consentStatus: 'approved',
      avatarStatus: 'completed',
      consentUrl: 'http://h/consent/cst_1',
      polls: 3,
      emailsSent: 1,
      linkGeneration: 1,
    },
    approvedAt: 10,
    decidedAt: 10,
    closedAt: 20,
    ...extra,
  });
  const post = (seq: number, replayed: boolean): LedgerEntry => ({
    seq,
    at: seq,
    method: 'POST',
    path: '/v3/avatars/ag_1/consent',
    query: '',
    idempotencyKey: 'avatar-consent:run-1:g1',
    status: 200,
    replayed,
    fault: null,
    authScheme: 'x-api-key',
  });
  const consent: ConsentRecord = {
    groupId: 'ag_1',
    idempotencyKey: 'avatar-consent:run-1:g1',
    url: 'http://h/consent/cst_1',
    token: 'cst_1',
    rerouteUrl: null,
    consentText: null,
    createdAt: 1,
    decision: 'approved',
    decidedAt: 10,
  };
  const mail = (messageId: string, link: string): ReceivedMail =>
    ({ messageId, to: ['a@example.com'], text: `Open ${link} to agree`, subject: 'Consent' }) as ReceivedMail;

  it('a replay is fine; a key HeyGen processed twice fails', () => {
    expect(
      checkConsentRequests([post(1, false), post(2, true)], [consent], [final()]).checks.every((c) => c.ok),
    ).toBe(true);
    const twice = checkConsentRequests([post(1, false), post(2, false)], [consent, consent], [final()]);
    expect(twice.checks[0]!.ok).toBe(false);
    expect(twice.figures.keysProcessedMoreThanOnce).toBe(1);
  });

  it('a duplicate email with the same Message-ID is counted; a missing or foreign link fails', () => {
    const ok = checkEmails(
      [mail('<m1@x>', consent.url), mail('<m1@x>', consent.url)],
      [consent],
      [final()],
      new Map([['ag_1', 1]]),
    );
    expect(ok.checks[0]!.ok).toBe(true);
    expect(ok.figures.duplicates).toBe(1);
    expect(checkEmails([], [consent], [final()], new Map()).checks[0]!.ok).toBe(false);
    expect(
      checkEmails([mail('<m1@x>', 'http://h/consent/cst_other')], [consent], [final()], new Map()).checks[0]!
        .ok,
    ).toBe(false);
  });
});

describe('chaos run (short)', () => {
  it('24 consent workflows come through worker kills, a Temporal restart, HeyGen and SMTP outages with every invariant intact', async () => {
    const seed = Number(process.env.CHAOS_SEED ?? 20_251_130);
    const report = await runChaos({
      workflows: 24,
      durationMs: 45_000,
      seed,
      profile: 'short',
      settleTimeoutMs: 100_000,
      log: process.env.CHAOS_VERBOSE ? (line) => console.error(line) : () => undefined,
    });
    const table = formatReport(report);
    const path = writeReport(report, 'artifacts');
    console.log(`${table}\n\nreport: ${path}`);

    expect(report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`)).toEqual([]);
    // The chaos really happened.
    expect(report.stats.workerKills).toBeGreaterThanOrEqual(2);
    expect(report.stats.targeted429).toMatch(/^yes/);
    expect(report.stats.temporalRestarts).toBe(1);
    expect(report.stats.heygenOutageMs).toBeGreaterThan(5_000);
    expect(report.stats.smtpDowntimeMs).toBeGreaterThan(5_000);
    expect(report.retryAfter.rateLimited).toBeGreaterThan(0);
    expect(report.stats.faultAnswers).toBeGreaterThan(0);
    expect(report.wrongGroups).toEqual([]);
  }, 240_000);
});
