// Sends real consent emails through a real SMTP server (smtp-server on 127.0.0.1, port 0) and
// checks what arrives, how failures are classified, and that credentials never leak.
import net from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSmtpMailer, MailError, renderConsentEmail } from '../../src/email/index.js';
import type { ConsentEmail, Mailer } from '../../src/email/index.js';
import { startSmtpCatcher } from '../../tools/kit/smtp-catcher.js';
import type { SmtpCatcher } from '../../tools/kit/smtp-catcher.js';

const FROM = 'Avatar consent <consent@avatar-consent.test>';
let counter = 0;

/** A fresh recipient and Message-ID per call, so tests never see each other's messages. */
function consentEmail(overrides: Partial<ConsentEmail> = {}): ConsentEmail {
  counter += 1;
  return {
    to: { email: `person${counter}@example.com`, name: 'Alice Example' },
    avatarName: 'Studio Alice',
    groupId: `grp_${counter}`,
    consentUrl: `https://app.heygen.com/consent/${counter}?lang=en&ref=mail`,
    expiresAt: '2025-12-01T14:05:00Z',
    messageId: `<avatar-consent.t${counter}@avatar-consent.local>`,
    generation: 1,
    ...overrides,
  };
}

async function rejectionOf(promise: Promise<unknown>): Promise<MailError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(MailError);
    return err as MailError;
  }
  throw new Error('expected the promise to reject');
}

function headerValue(headers: Map<string, unknown>, name: string): string {
  const value = headers.get(name);
  return typeof value === 'string' ? value : JSON.stringify(value);
}

describe('email over a real SMTP server', () => {
  let server: SmtpCatcher;
  let mailer: Mailer;
  const closers: Array<() => unknown> = [];

  beforeAll(async () => {
    server = await startSmtpCatcher();
    mailer = createSmtpMailer({ smtpUrl: server.url, from: FROM, connectionTimeoutMs: 2_000 });
    closers.push(() => mailer.close());
  });

  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await server.close();
  });

  it('delivers both parts with the caller-given Message-ID and the consent headers', async () => {
    const e = consentEmail({ generation: 2 });
    const rendered = renderConsentEmail(e);
    const result = await mailer.sendConsentEmail(e);
    expect(result.messageId).toBe(e.messageId);
    expect(result.accepted).toEqual([e.to.email]);
    expect(result.response).toMatch(/^250\b/);

    const [mail] = await server.waitForMessages(1, { to: e.to.email, timeoutMs: 5_000 });
    expect(mail).toBeDefined();
    if (!mail) return;
    expect(mail.messageId).toBe(e.messageId);
    expect(mail.subject).toBe(rendered.subject);
    expect(mail.text.trim()).toBe(rendered.text.trim());
    expect(mail.html).toContain(`href="${e.consentUrl.replace('&', '&amp;')}"`);
    expect(mail.text).toContain(e.consentUrl);
    expect(mail.raw).toMatch(/Content-Type: multipart\/alternative/i);
    expect(mail.raw).toMatch(/Content-Type: text\/plain/i);
    expect(mail.raw).toMatch(/Content-Type: text\/html/i);
    expect(headerValue(mail.headers, 'x-avatar-consent-group')).toBe(e.groupId);
    expect(headerValue(mail.headers, 'x-avatar-consent-generation')).toBe('2');
    expect(mail.from).toBe('"Avatar consent" <consent@avatar-consent.test>');
    expect(mail.envelopeFrom).toBe('consent@avatar-consent.test');
    expect(mail.to).toEqual([e.to.email]);
  });

  it.each([
    ['CRLF and a Bcc header', 'Alice\r\nBcc: evil@x'],
    ['a bare LF and a Cc header', 'Alice\nCc: evil@x\n'],
    ['an address list in the name', 'Mallory <evil@x>, Bob <evil2@x>'],
    ['quotes and an encoded word', '"=?UTF-8?Q?evil?=" <evil@x>'],
  ])('a recipient name with %s cannot add a header or a recipient', async (_label, name) => {
    const base = consentEmail();
    const e: ConsentEmail = { ...base, to: { email: `victim.${base.groupId}@example.com`, name } };
    await mailer.sendConsentEmail(e);
    const [mail] = await server.waitForMessages(1, { to: e.to.email, timeoutMs: 5_000 });
    if (!mail) throw new Error('no message');
    expect(mail.to).toEqual([e.to.email]);
    expect(mail.headerTo).toEqual([e.to.email]);
    expect(mail.headers.has('bcc')).toBe(false);
    expect(mail.headers.has('cc')).toBe(false);
    expect(mail.headerLines.map((h) => h.key)).not.toContain('bcc');
    expect(mail.headerLines.map((h) => h.key)).not.toContain('cc');
    expect(mail.headerLines.filter((h) => h.key === 'to')).toHaveLength(1);
    // Nobody else got anything.
    expect(server.messages.filter((m) => m.to.some((a) => a.startsWith('evil')))).toHaveLength(0);
  });

  it('classifies a 550 recipient rejection as permanent', async () => {
    const e = consentEmail();
    server.rejectNext({ code: 550, message: '5.1.1 No such user here' });
    const err = await rejectionOf(mailer.sendConsentEmail(e));
    expect(err.kind).toBe('permanent');
    expect(err.reason).toBe('rejected');
    expect(err.responseCode).toBe(550);
    expect(err.command).toBe('RCPT TO');
    expect(err.message).toContain('550');
    expect(server.messages.filter((m) => m.to.includes(e.to.email))).toHaveLength(0);
  });

  it('classifies a 554 refusal of the message (DATA) as permanent', async () => {
    server.rejectNext({ code: 554, message: 'Message refused', stage: 'data' });
    const err = await rejectionOf(mailer.sendConsentEmail(consentEmail()));
    expect(err.kind).toBe('permanent');
    expect(err.responseCode).toBe(554);
  });

  it('classifies a 451 as transient, and the same email goes through on the next attempt', async () => {
    const e = consentEmail();
    server.rejectNext({ code: 451, message: 'Greylisted, try again later', stage: 'data' });
    const err = await rejectionOf(mailer.sendConsentEmail(e));
    expect(err.kind).toBe('transient');
    expect(err.reason).toBe('temporary');
    expect(err.responseCode).toBe(451);

    const retried = await mailer.sendConsentEmail(e);
    expect(retried.messageId).toBe(e.messageId);
    const received = await server.waitForMessages(1, { to: e.to.email, timeoutMs: 5_000 });
    expect(received.map((m) => m.messageId)).toEqual([e.messageId]);
  });

  it('classifies a 421 at RCPT as transient', async () => {
    server.rejectNext({ code: 421, message: 'Too busy, closing' });
    const err = await rejectionOf(mailer.sendConsentEmail(consentEmail()));
    expect(err.kind).toBe('transient');
    expect(err.responseCode).toBe(421);
  });

  it('refuses invalid input before connecting, permanently', async () => {
    const before = server.messages.length;
    const err = await rejectionOf(
      mailer.sendConsentEmail(consentEmail({ to: { email: 'a@example.com\r\nBcc: evil@x' } })),
    );
    expect(err.kind).toBe('permanent');
    expect(err.reason).toBe('invalid-input');
    expect(err.message).toContain('to.email');
    expect(server.messages.length).toBe(before);
  });

  it('is transient while the server is down, and the same send succeeds once it is back', async () => {
    const e = consentEmail();
    const port = server.port;
    await mailer.verify();
    await server.stop();
    try {
      const err = await rejectionOf(mailer.sendConsentEmail(e));
      expect(err.kind).toBe('transient');
      expect(err.reason).toBe('connection');
      expect(err.originalCode ?? err.smtpCode).toBe('ECONNREFUSED');
      expect(err.responseCode).toBeNull();
      const verifyErr = await rejectionOf(mailer.verify());
      expect(verifyErr.kind).toBe('transient');
    } finally {
      await server.start();
    }
    expect(server.port).toBe(port);
    const result = await mailer.sendConsentEmail(e);
    expect(result.messageId).toBe(e.messageId);
    const received = await server.waitForMessages(1, { to: e.to.email, timeoutMs: 5_000 });
    expect(received).toHaveLength(1);
    expect(received[0]?.messageId).toBe(e.messageId);
  });

  it('fails fast and transiently when the server accepts TCP but never greets', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    const slow = createSmtpMailer({
      smtpUrl: `smtp://127.0.0.1:${address.port}`,
      from: FROM,
      connectionTimeoutMs: 300,
    });
    try {
      const started = Date.now();
      const err = await rejectionOf(slow.sendConsentEmail(consentEmail()));
      expect(err.kind).toBe('transient');
      expect(err.reason).toBe('timeout');
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      slow.close();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('rejects a bad SMTP URL or From at creation without echoing the password', () => {
    const attempt = (): Mailer =>
      createSmtpMailer({ smtpUrl: 'http://user:NotForLogs1@host:25', from: FROM });
    expect(attempt).toThrow(TypeError);
    expect(attempt).toThrow(/smtp: or smtps:/);
    try {
      attempt();
    } catch (err) {
      expect(inspect(err)).not.toContain('NotForLogs1');
    }
    expect(() => createSmtpMailer({ smtpUrl: server.url, from: 'a@b.example\r\nBcc: evil@x' })).toThrow(
      TypeError,
    );
    expect(() => createSmtpMailer({ smtpUrl: server.url, from: 'a@b.example, c@d.example' })).toThrow(
      TypeError,
    );
  });
});

describe('email with SMTP authentication', () => {
  const USER = 'mailer@avatar-consent.test';
  const PASSWORD = 'c0rrect:h@rse/battery%staple';
  const WRONG_PASSWORD = 'Wr0ng-P@ss:word/123';
  let server: SmtpCatcher;
  const mailers: Mailer[] = [];

  const urlWith = (password: string): string =>
    `smtp://${encodeURIComponent(USER)}:${encodeURIComponent(password)}@127.0.0.1:${server.port}`;

  beforeAll(async () => {
    server = await startSmtpCatcher({ auth: { user: USER, pass: PASSWORD } });
  });

  afterAll(async () => {
    for (const m of mailers) m.close();
    await server.close();
  });

  /** Everything an error could show in a log, a stack trace or a Temporal failure. */
  function everyRendering(err: MailError): string[] {
    return [
      err.message,
      err.stack ?? '',
      String(err),
      JSON.stringify(err),
      inspect(err, { depth: 10, showHidden: true }),
      JSON.stringify(Object.fromEntries(Object.entries(err))),
    ];
  }

  function expectNoSecret(err: MailError, url: string, password: string): void {
    const forbidden = [
      password,
      encodeURIComponent(password),
      url,
      Buffer.from(`\u0000${USER}\u0000${password}`).toString('base64'),
      Buffer.from(password).toString('base64'),
    ];
    for (const text of everyRendering(err)) {
      for (const secret of forbidden) expect(text).not.toContain(secret);
    }
    expect(err.cause).toBeUndefined();
  }

  it('classifies a wrong password as transient (auth) and never shows the password or the URL', async () => {
    const url = urlWith(WRONG_PASSWORD);
    const mailer = createSmtpMailer({ smtpUrl: url, from: FROM, connectionTimeoutMs: 2_000 });
    mailers.push(mailer);
    const attemptsBefore = server.authAttempts;

    const err = await rejectionOf(mailer.sendConsentEmail(consentEmail()));
    expect(server.authAttempts).toBeGreaterThan(attemptsBefore);
    expect(err.kind).toBe('transient');
    expect(err.reason).toBe('auth');
    expect(err.needsOperator).toBe(true);
    expect(err.responseCode).toBe(535);
    expectNoSecret(err, url, WRONG_PASSWORD);

    const verifyErr = await rejectionOf(mailer.verify());
    expect(verifyErr.reason).toBe('auth');
    expectNoSecret(verifyErr, url, WRONG_PASSWORD);
  });

  it('classifies a missing login (530) as transient (auth)', async () => {
    const mailer = createSmtpMailer({ smtpUrl: server.url, from: FROM, connectionTimeoutMs: 2_000 });
    mailers.push(mailer);
    const err = await rejectionOf(mailer.sendConsentEmail(consentEmail()));
    expect(err.kind).toBe('transient');
    expect(err.reason).toBe('auth');
    expect(err.responseCode).toBe(530);
  });

  it('delivers with the right password (percent-encoded in the URL)', async () => {
    const mailer = createSmtpMailer({ smtpUrl: urlWith(PASSWORD), from: FROM, connectionTimeoutMs: 2_000 });
    mailers.push(mailer);
    await mailer.verify();
    const e = consentEmail();
    const result = await mailer.sendConsentEmail(e);
    expect(result.messageId).toBe(e.messageId);
    const [mail] = await server.waitForMessages(1, { to: e.to.email, timeoutMs: 5_000 });
    expect(mail?.messageId).toBe(e.messageId);
  });
});
