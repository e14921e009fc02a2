/**
 * The harness's SMTP server and the faults the chaos run injects with it: refusals aimed at one
 * address, and a message taken whose 250 reply never comes. Sent with the product's own mailer, so
 * each fault is also shown as the product classifies it (transient: retried; permanent: the end).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createSmtpMailer } from '../../src/email/index.js';
import type { ConsentEmail, Mailer } from '../../src/email/index.js';
import { startSmtpCatcher } from '../../tools/kit/smtp-catcher.js';
import type { SmtpCatcher } from '../../tools/kit/smtp-catcher.js';

let counter = 0;
function email(to: string): ConsentEmail {
  counter += 1;
  return {
    to: { email: to },
    avatarName: 'Studio',
    groupId: `grp_${counter}`,
    consentUrl: `https://app.heygen.com/consent/cst_${counter}`,
    expiresAt: '2026-12-01T14:05:00Z',
    messageId: `<catcher.${counter}@catcher.test>`,
    generation: 1,
  };
}

describe('SMTP catcher faults', () => {
  let smtp: SmtpCatcher;
  let mailer: Mailer;

  beforeAll(async () => {
    smtp = await startSmtpCatcher();
    mailer = createSmtpMailer({
      smtpUrl: smtp.url,
      from: 'Consent <c@catcher.test>',
      connectionTimeoutMs: 2_000,
    });
  });

  afterAll(async () => {
    mailer.close();
    await smtp.close();
  });

  it('a refusal aimed at one address spares the others and is recorded as evidence', async () => {
    const aimed = smtp.rejectNext({ code: 550, stage: 'rcpt', to: 'Target@Example.com' });
    await mailer.sendConsentEmail(email('bystander@example.com'));
    expect(aimed.remaining).toBe(1);
    await expect(mailer.sendConsentEmail(email('target@example.com'))).rejects.toMatchObject({
      name: 'MailError',
      kind: 'permanent',
      reason: 'rejected',
      responseCode: 550,
    });
    expect(smtp.events.slice(-2)).toMatchObject([
      { kind: 'accepted', stage: 'data', code: 250, recipients: ['bystander@example.com'] },
      { kind: 'rejected', stage: 'rcpt', code: 550, recipients: ['target@example.com'], messageId: null },
    ]);
    expect(aimed.remaining).toBe(0);
  });

  it('421 and 451, at RCPT or at DATA, are temporary: the product retries them', async () => {
    for (const [code, stage] of [
      [421, 'rcpt'],
      [451, 'rcpt'],
      [421, 'data'],
      [451, 'data'],
    ] as const) {
      smtp.rejectNext({ code, stage });
      const sent = email(`temp-${code}-${stage}@example.com`);
      await expect(mailer.sendConsentEmail(sent), `${code} at ${stage}`).rejects.toMatchObject({
        kind: 'transient',
        responseCode: code,
      });
      expect(smtp.events.at(-1)).toMatchObject({
        kind: 'rejected',
        stage,
        code,
        messageId: stage === 'data' ? sent.messageId : null,
      });
      // The next attempt goes through: the fault was used up.
      await mailer.sendConsentEmail(sent);
    }
  });

  it('552 at DATA is permanent (the message is refused for good)', async () => {
    smtp.rejectNext({ code: 552, stage: 'data', message: 'Message too large for this mailbox' });
    const before = smtp.messages.length;
    await expect(mailer.sendConsentEmail(email('big@example.com'))).rejects.toMatchObject({
      kind: 'permanent',
      reason: 'rejected',
      responseCode: 552,
    });
    expect(smtp.messages.length).toBe(before);
  });

  it('a dropped reply: the message is delivered, the sender sees a connection failure, a retry makes a copy', async () => {
    smtp.dropNext({ to: 'dup@example.com' });
    const sent = email('dup@example.com');
    await expect(mailer.sendConsentEmail(sent)).rejects.toMatchObject({
      kind: 'transient',
      reason: 'connection',
      responseCode: null,
    });
    await mailer.sendConsentEmail(sent);

    const copies = smtp.messages.filter((m) => m.messageId === sent.messageId);
    expect(copies.map((m) => m.replyDropped)).toEqual([true, false]);
    expect(copies[0]!.text).toBe(copies[1]!.text);
    expect(smtp.events.filter((e) => e.messageId === sent.messageId).map((e) => e.kind)).toEqual([
      'dropped',
      'accepted',
    ]);
  });

  it('a fault can be withdrawn with what it had left (a burst that is over); bad counts are refused', async () => {
    const refusals = smtp.rejectNext({ code: 451, stage: 'data', count: 3 });
    const drops = smtp.dropNext({ count: 2 });
    expect(refusals.cancel()).toBe(3);
    expect(drops.cancel()).toBe(2);
    expect(drops.cancel()).toBe(0);
    await mailer.sendConsentEmail(email('after-cancel@example.com'));
    expect(smtp.events.at(-1)).toMatchObject({ kind: 'accepted', recipients: ['after-cancel@example.com'] });
    expect(() => smtp.dropNext({ count: 0 })).toThrow(/count must be a positive integer/);
    expect(() => smtp.rejectNext({ code: 250 })).toThrow(/4xx or 5xx/);
  });
});
