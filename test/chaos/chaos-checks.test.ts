/**
 * The chaos run's checks on hand-made records: each one passes what it should and fails what it
 * must, so a check that cannot fail is caught here rather than trusted in a green run.
 */
import proto from '@temporalio/proto';
import { describe, expect, it } from 'vitest';

import type { AvatarConsentResult } from '../../src/contract/index.js';
import { checkConsentRequests } from '../../tools/chaos/checks.js';
import type { GroupFinal } from '../../tools/chaos/checks.js';
import { checkEmails } from '../../tools/chaos/emails.js';
import type { Disruptions, EmailInput } from '../../tools/chaos/emails.js';
import type { HistoryEvent } from '../../tools/chaos/history.js';
import { scanForPlaintext } from '../../tools/chaos/plaintext.js';
import { checkPolls } from '../../tools/chaos/polls.js';
import { analyzeRateCap } from '../../tools/chaos/rate-cap.js';
import { analyzeRetryAfter, retryAfterDeadline } from '../../tools/chaos/retry-after.js';
import type { ProxyRecord } from '../../tools/chaos/retry-after.js';
import type { ConsentRecord, LedgerEntry } from '../../tools/heygen-sandbox/index.js';
import type { ReceivedMail, SmtpEvent } from '../../tools/kit/smtp-catcher.js';

let nextId = 1;
function record(partial: Partial<ProxyRecord> & { at: number }): ProxyRecord {
  return {
    id: nextId++,
    method: 'GET',
    path: '/v3/avatars/ag_1',
    keyId: 'k1',
    pid: 100,
    knownUntil: 0,
    sentAt: partial.at - 2,
    activity: null,
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
  const alive = (pid: number, startedAt = 0) => ({ pid, startedAt, endedAt: null });

  it('reads delay-seconds and HTTP-dates, and nothing else', () => {
    expect(retryAfterDeadline(1_000, '3')).toBe(4_000);
    expect(retryAfterDeadline(1_000, '1.5')).toBe(2_500);
    expect(retryAfterDeadline(0, 'Thu, 01 Jan 1970 00:00:07 GMT')).toBe(7_000);
    expect(retryAfterDeadline(0, 'soon')).toBeNull();
    expect(retryAfterDeadline(0, null)).toBeNull();
  });

  it('a request already in flight when the 429 was answered is raced, not a violation', () => {
    const analysis = analyzeRetryAfter([limited(1_000), record({ at: 1_010, knownUntil: 0 })], [alive(100)]);
    expect(analysis.inWindow.raced).toBe(1);
    expect(analysis.violations).toBe(0);
  });

  it('a request sent by a process that knew the Retry-After is a violation', () => {
    const analysis = analyzeRetryAfter(
      [limited(1_000), record({ at: 5_000, knownUntil: 11_000 })],
      [alive(100)],
    );
    expect(analysis.inWindow.same_process).toBe(1);
    expect(analysis.examples[0]).toMatchObject({ class: 'same_process', earlyByMs: 6_000 });
  });

  it('a worker started after the 429 was read, sending inside it, is a violation', () => {
    const lives = [
      { pid: 100, startedAt: 0, endedAt: 2_000 },
      { pid: 200, startedAt: 2_000, endedAt: null },
    ];
    const analysis = analyzeRetryAfter([limited(1_000), record({ at: 6_000, pid: 200 })], lives);
    expect(analysis.inWindow.across_restart).toBe(1);
    expect(analysis.violations).toBe(1);
  });

  it('unless its predecessor died before it could read the 429', () => {
    const lives = [
      { pid: 100, startedAt: 0, endedAt: 1_020 },
      { pid: 200, startedAt: 1_100, endedAt: null },
    ];
    const analysis = analyzeRetryAfter([limited(1_000), record({ at: 6_000, pid: 200 })], lives);
    expect(analysis.inWindow.unreceived).toBe(1);
    expect(analysis.violations).toBe(0);
  });

  it('another running worker: raced before the 429 could be shared, a violation after', () => {
    const lives = [alive(100), alive(300)];
    const beforeShared = analyzeRetryAfter(
      [limited(1_000), record({ at: 1_015, sentAt: 1_010, pid: 300 })],
      lives,
    );
    expect(beforeShared.inWindow.raced).toBe(1);
    expect(beforeShared.violations).toBe(0);
    const afterShared = analyzeRetryAfter([limited(1_000), record({ at: 3_000, pid: 300 })], lives);
    expect(afterShared.inWindow.across_processes).toBe(1);
    expect(afterShared.violations).toBe(1);
  });

  it('ignores other API keys, and requests once Retry-After has passed', () => {
    const analysis = analyzeRetryAfter(
      [
        limited(1_000),
        record({ at: 5_000, keyId: 'k2', knownUntil: 11_000 }),
        record({ at: 11_000, knownUntil: 11_000 }),
      ],
      [alive(100)],
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

describe('rate cap', () => {
  /** `perSecond` requests a second, evenly, for `seconds`. */
  const steady = (perSecond: number, seconds: number, from = 0): number[] =>
    Array.from({ length: perSecond * seconds }, (_, i) => from + Math.floor((i * 1000) / perSecond));

  it('the cap held: a full bucket at the start, then the refill rate', () => {
    const analysis = analyzeRateCap([...steady(10, 1), ...steady(10, 20, 1_000)], 10);
    expect(analysis.ok).toBe(true);
    expect(analysis.maxIn10s).toBeLessThanOrEqual(analysis.bound10s);
  });

  it('a cap applied per worker (three times the rate) fails', () => {
    const analysis = analyzeRateCap(steady(30, 20), 10);
    expect(analysis.ok).toBe(false);
    expect(analysis.maxIn10s).toBe(300);
  });

  it('a rate a little above the cap, held for a minute, fails though no 10 s shows it', () => {
    const analysis = analyzeRateCap(steady(12, 70), 10);
    expect(analysis.maxIn10s).toBeLessThanOrEqual(analysis.bound10s);
    expect(analysis.maxIn60s).toBeGreaterThan(analysis.bound60s);
    expect(analysis.ok).toBe(false);
  });

  it('a run that never met the cap proves nothing', () => {
    const analysis = analyzeRateCap(steady(3, 30), 10);
    expect(analysis.reached).toBe(false);
    expect(analysis.ok).toBe(false);
  });
});

describe('polls counted', () => {
  const result = (polls: number): AvatarConsentResult => ({
    outcome: 'approved',
    groupId: 'ag_1',
    consentStatus: 'approved',
    avatarStatus: 'completed',
    consentUrl: 'http://h/consent/cst_1',
    polls,
    emailsSent: 1,
    linkGeneration: 1,
  });
  const final = (polls: number): GroupFinal => ({
    groupId: 'ag_1',
    email: 'a@people.example',
    fate: 'approved',
    expectedOutcome: 'approved',
    status: 'COMPLETED',
    result: result(polls),
    approvedAt: 1,
    decidedAt: 1,
    closedAt: 2,
    deadlineAt: null,
  });
  const poll = (window: string, attempt: number): ProxyRecord =>
    record({ at: attempt, activity: { type: 'pollConsentStatus', attempt, id: window, runId: 'r1' } });
  // Two windows: attempts 1..4 seen of the first, 1..3 of the second (the 3rd's worker died with it).
  const records = [1, 2, 3, 4].map((a) => poll('5', a)).concat([1, 2, 3].map((a) => poll('8', a)));

  it('a workflow that counts its lost window’s polls passes; one that drops them fails', () => {
    expect(checkPolls([final(7)], records).checks[0]!.ok).toBe(true);
    expect(checkPolls([final(9)], records).figures.maxOvercount).toBe(2);
    const under = checkPolls([final(4)], records);
    expect(under.checks[0]!.ok).toBe(false);
    expect(under.figures.undercountedGroups).toBe(1);
  });

  it('the poll that found the group deleted is a poll too', () => {
    const deleted: GroupFinal = { ...final(0), result: { ...result(0), outcome: 'group_not_found' } };
    const notFound = record({
      at: 1,
      status: 404,
      activity: { type: 'pollConsentStatus', attempt: 1, id: '5', runId: 'r1' },
    });
    const checked = checkPolls([deleted], [notFound]);
    expect(checked.checks[0]!.ok).toBe(false);
    expect(checked.checks[0]!.detail).toMatch(/group_not_found.*answered 404/);
  });

  it('look-ups are not polls', () => {
    const lookup = record({
      at: 1,
      activity: { type: 'lookupAvatarGroup', attempt: 3, id: '2', runId: 'r1' },
    });
    expect(checkPolls([final(7)], [...records, lookup]).figures.seenAttempts).toBe(7);
  });
});

describe('consent requests', () => {
  const post = (seq: number, key: string, replayed = false): LedgerEntry => ({
    seq,
    at: seq,
    method: 'POST',
    path: '/v3/avatars/ag_1/consent',
    query: '',
    idempotencyKey: key,
    status: 200,
    replayed,
    fault: null,
    authScheme: 'x-api-key',
  });
  const consent = (key: string): ConsentRecord => ({
    groupId: 'ag_1',
    idempotencyKey: key,
    url: 'http://h/consent/cst_1',
    token: 'cst_1',
    rerouteUrl: null,
    consentText: null,
    createdAt: 1,
    decision: 'approved',
    decidedAt: 10,
  });
  const finals: GroupFinal[] = [];

  it('a replay is fine; a key processed twice fails', () => {
    const key = 'avatar-consent:run-1:g1';
    expect(
      checkConsentRequests([post(1, key), post(2, key, true)], [consent(key)], finals).checks[0]!.ok,
    ).toBe(true);
    const twice = checkConsentRequests([post(1, key), post(2, key)], [consent(key)], finals);
    expect(twice.checks[0]!.ok).toBe(false);
    expect(twice.figures.keysProcessedMoreThanOnce).toBe(1);
  });

  it('two executions making a link for the same group and generation fail (a lost workflow started again)', () => {
    const keys = ['avatar-consent:run-1:g1', 'avatar-consent:run-2:g1'];
    const again = checkConsentRequests(
      keys.map((k, i) => post(i + 1, k)),
      keys.map(consent),
      finals,
    );
    expect(again.checks[0]!.ok).toBe(false);
    expect(again.figures.generationsProcessedMoreThanOnce).toBe(1);
  });
});

describe('emails, their excuses and the one-message-per-generation guarantee', () => {
  const EMAIL = 'ann@people.example';
  const LINK1 = 'http://h/consent/cst_1';
  const LINK2 = 'http://h/consent/cst_2';
  const consents = [LINK1, LINK2].map((url, i) => ({
    groupId: 'ag_1',
    idempotencyKey: `avatar-consent:r1:g${i + 1}`,
    url,
    token: `cst_${i + 1}`,
    rerouteUrl: null,
    consentText: null,
    createdAt: 1,
    decision: 'pending' as const,
    decidedAt: null,
  }));
  let mailId = 1;
  const mail = (generation: number, receivedAt: number, replyDropped = false): ReceivedMail =>
    ({
      id: mailId++,
      messageId: `<avatar-consent.r1.g${generation}@x.example>`,
      to: [EMAIL],
      text: `Open ${generation === 1 ? LINK1 : LINK2} to agree`,
      subject: 'Consent',
      receivedAt,
      replyDropped,
    }) as ReceivedMail;
  const final = (over: Partial<AvatarConsentResult>, extra: Partial<GroupFinal> = {}): GroupFinal => ({
    groupId: 'ag_1',
    email: EMAIL,
    fate: 'approved',
    expectedOutcome: 'approved',
    status: 'COMPLETED',
    result: {
      outcome: 'approved',
      groupId: 'ag_1',
      consentStatus: 'approved',
      avatarStatus: 'completed',
      consentUrl: LINK1,
      polls: 3,
      emailsSent: 1,
      linkGeneration: 1,
      ...over,
    },
    approvedAt: 50_000,
    decidedAt: 50_000,
    closedAt: 60_000,
    deadlineAt: 60_000,
    ...extra,
  });
  /** A history: link g1 at 1 s, then each email step [from, to, how it ended]. */
  const history = (
    emailSteps: Array<[number, number, 'completed' | 'timed_out']>,
    links: number[] = [1_000],
  ): HistoryEvent[] => {
    const events: HistoryEvent[] = [];
    let id = 1;
    const at = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });
    const step = (type: string, from: number, to: number, end: 'completed' | 'timed_out') => {
      const scheduledEventId = id;
      events.push({
        eventId: id++,
        eventTime: at(from),
        activityTaskScheduledEventAttributes: { activityType: { name: type } },
      } as unknown as HistoryEvent);
      events.push({
        eventId: id++,
        eventTime: at(to),
        ...(end === 'completed'
          ? { activityTaskCompletedEventAttributes: { scheduledEventId } }
          : { activityTaskTimedOutEventAttributes: { scheduledEventId, failure: { message: 'timeout' } } }),
      } as unknown as HistoryEvent);
    };
    for (const link of links) step('requestConsentLink', link - 500, link, 'completed');
    for (const [from, to, end] of emailSteps) step('sendConsentEmail', from, to, end);
    return events;
  };
  const calm: Disruptions = { workerKills: [], temporalDown: [], smtpDown: [] };
  const run = (over: Partial<EmailInput>) => {
    const input: EmailInput = {
      messages: [],
      smtpEvents: [],
      consents,
      finals: [final({})],
      histories: new Map([['ag_1', history([[1_100, 1_300, 'completed']])]]),
      disruptions: calm,
      t0: 0,
      ...over,
    };
    return checkEmails(input);
  };

  it('an email that arrived passes; one counted as sent that never arrived fails', () => {
    expect(run({ messages: [mail(1, 1_200)] }).checks.every((c) => c.ok)).toBe(true);
    const lost = run({ messages: [] });
    expect(lost.checks[0]!.ok).toBe(false);
    expect(lost.checks[0]!.detail).toMatch(/counted as sent but never arrived/);
  });

  it('a lost email cannot hide behind expired: no evidence, no excuse', () => {
    const expired = final(
      { outcome: 'expired', emailsSent: 0 },
      { fate: 'never_approved', closedAt: 40_000 },
    );
    // The email step ran 30 s until the deadline, failing at nothing, with nothing broken.
    const silent = run({
      finals: [expired],
      histories: new Map([['ag_1', history([[2_000, 32_000, 'timed_out']])]]),
    });
    expect(silent.checks[0]!.ok).toBe(false);
    expect(silent.checks[0]!.detail).toMatch(/lost email/);
    // The same, while the SMTP server was down: excused, and the evidence names the outage.
    const down = run({
      finals: [expired],
      histories: new Map([['ag_1', history([[2_000, 32_000, 'timed_out']])]]),
      disruptions: { ...calm, smtpDown: [[1_500, 40_000]] },
    });
    expect(down.checks[0]!.ok).toBe(true);
    expect(down.excuses.map((e) => e.kind)).toEqual(['deadline_while_email_retried']);
    expect(down.excuses[0]!.evidence).toMatch(/SMTP down/);
  });

  it('a link never emailed, with no email step and no decision, fails', () => {
    const result = run({
      finals: [final({ outcome: 'expired', emailsSent: 0 }, { decidedAt: null, deadlineAt: 60_000 })],
      histories: new Map([['ag_1', history([])]]),
    });
    expect(result.checks[0]!.ok).toBe(false);
    expect(result.checks[0]!.detail).toMatch(/record holds no reason/);
  });

  it('decided before the email, or refused for good by the server: excused with the evidence', () => {
    const decided = run({
      finals: [final({ emailsSent: 0 }, { decidedAt: 900 })],
      histories: new Map([['ag_1', history([])]]),
    });
    expect(decided.excuses.map((e) => e.kind)).toEqual(['decided_before_email']);
    const refusal: SmtpEvent = {
      at: 1_200,
      kind: 'rejected',
      stage: 'rcpt',
      code: 550,
      recipients: [EMAIL],
      messageId: null,
    };
    const refusedFinal = final({ outcome: 'email_undeliverable', emailsSent: 0 });
    expect(run({ finals: [refusedFinal], smtpEvents: [refusal] }).excuses).toEqual([
      expect.objectContaining({ kind: 'refused_by_mail_server', evidence: '550 at RCPT at +1.2 s' }),
    ]);
    expect(run({ finals: [refusedFinal], smtpEvents: [] }).checks[0]!.ok).toBe(false);
  });

  it('a copy after a dropped reply is explained; a copy nothing explains breaks the guarantee', () => {
    const explained = run({ messages: [mail(1, 1_200, true), mail(1, 2_300)] });
    expect(explained.checks[1]!.ok).toBe(true);
    expect(explained.figures).toMatchObject({ duplicates: 1, maxCopiesPerMessage: 2 });
    expect(explained.figures.duplicatesByCause.reply_dropped).toBe(1);
    const unexplained = run({ messages: [mail(1, 1_200), mail(1, 2_300)] });
    expect(unexplained.checks[1]!.ok).toBe(false);
    // A worker killed between the two copies explains it.
    expect(
      run({ messages: [mail(1, 1_200), mail(1, 2_300)], disruptions: { ...calm, workerKills: [1_500] } })
        .checks[1]!.ok,
    ).toBe(true);
  });

  it('two different messages for one link generation break the guarantee', () => {
    // Another execution's message for the same group and generation (a lost workflow started again).
    const other = { ...mail(1, 1_500), messageId: '<avatar-consent.r2.g1@x.example>' };
    const result = run({ messages: [mail(1, 1_200), other] });
    expect(result.checks[1]!.ok).toBe(false);
    expect(result.figures.maxMessagesPerGeneration).toBe(2);
    // An operator's resend is a message of its own, outside the guarantee.
    const resend = { ...mail(1, 1_500), messageId: '<avatar-consent.r1.g1.r1@x.example>' };
    expect(run({ messages: [mail(1, 1_200), resend] }).figures.maxMessagesPerGeneration).toBe(1);
  });

  it('a message delivered but never acknowledged at the end is excused by its dropped reply', () => {
    const expired = final({ outcome: 'expired', emailsSent: 0 }, { fate: 'never_approved' });
    const result = run({
      finals: [expired],
      messages: [mail(1, 20_000, true)],
      histories: new Map([['ag_1', history([[2_000, 32_000, 'timed_out']])]]),
    });
    expect(result.checks[0]!.ok).toBe(true);
    expect(result.excuses.map((e) => e.kind)).toEqual(['delivered_unacknowledged']);
  });
});

describe('plaintext scan', () => {
  const payload = (text: string, encoding = 'json/plain') => ({
    metadata: { encoding: new TextEncoder().encode(encoding) },
    data: new TextEncoder().encode(text),
  });
  const started = (p: ReturnType<typeof payload>): HistoryEvent =>
    proto.temporal.api.history.v1.HistoryEvent.fromObject({
      eventId: 1,
      workflowExecutionStartedEventAttributes: { input: { payloads: [p] } },
    });
  const patterns = { recipientDomain: 'people.chaos.example', recipientName: /Chaos Person \d+/ };

  it('finds an address, a name and a consent link in clear; not inside ciphertext; not a masked address', () => {
    const clear = scanForPlaintext(
      new Map([
        ['wf-1', [started(payload('{"email":"p1.x@people.chaos.example","name":"Chaos Person 1"}'))]],
        ['wf-2', [started(payload('{"url":"http://h/consent/cst_0123456789abcdef0123"}'))]],
        ['wf-3', [started(payload('opaque-bytes', 'binary/encrypted'))]],
      ]),
      [{ source: 'worker', lines: ['{"msg":"sent","to":"p***@people.chaos.example"}'] }],
      patterns,
    );
    expect(clear.historyHits.map((h) => h.kind).sort()).toEqual(['address', 'consent_link', 'name']);
    expect(clear.payloads).toBe(3);
    expect(clear.encryptedPayloads).toBe(1);
    expect(clear.logHits).toEqual([]);
  });

  it('finds a return link in a log line', () => {
    const scan = scanForPlaintext(
      new Map(),
      [{ source: 'gateway', lines: ['GET /consent-return?t=eyJ2IjoxLCJ3aWQiOiJhIn0.sig'] }],
      patterns,
    );
    expect(scan.logHits).toEqual([expect.objectContaining({ kind: 'return_link', where: 'gateway line 1' })]);
  });
});
