import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import {
  classifySmtpError,
  escapeHtml,
  formatExpiryUtc,
  isSafeLinkUrl,
  isValidEmailAddress,
  isValidMessageId,
  mailSafeName,
  MailError,
  parseConsentEmail,
  redactSmtpUrl,
  renderConsentEmail,
} from '../../src/email/index.js';
import type { ConsentEmail } from '../../src/email/index.js';

function consentEmail(overrides: Partial<ConsentEmail> = {}): ConsentEmail {
  return {
    to: { email: 'alice@example.com', name: 'Alice Example' },
    avatarName: 'Studio Alice',
    groupId: 'grp_4f2a9c',
    consentUrl: 'https://app.heygen.com/consent/abc123?lang=en&ref=mail',
    expiresAt: '2025-12-01T14:05:59Z',
    messageId: '<avatar-consent.0123abcd@avatar-consent.local>',
    generation: 1,
    ...overrides,
  };
}

describe('renderConsentEmail', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('escapes <script> and quotes from the recipient name and the avatar name in the HTML part', () => {
    const { html, text } = renderConsentEmail(
      consentEmail({
        to: { email: 'alice@example.com', name: '<script>alert("name")</script> O\'Hara' },
        avatarName: 'Avatar <script>alert(1)</script> "quoted" <img src=x onerror=alert(2)>',
      }),
    );
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('"quoted"');
    expect(html).not.toContain('"name"');
    expect(html).toContain('&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt; O&#39;Hara');
    expect(html).toContain('Avatar &lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot; &lt;img src=x');
    // Our own markup is intact: exactly the two links we write, nothing injected.
    expect(html.match(/<a /g)).toHaveLength(2);
    // The text part carries the names as plain text (it is never interpreted as HTML).
    expect(text).toContain('Avatar <script>alert(1)</script> "quoted"');
  });

  it('escapes a consent URL that tries to break out of the href attribute', () => {
    const url = "https://consent.example.com/c?a=1&b=\"><script>alert(1)</script>&c='x'";
    const { html, text } = renderConsentEmail(consentEmail({ consentUrl: url }));
    const escaped = escapeHtml(url);
    expect(escaped).not.toMatch(/[<>"']/);
    expect(html).toContain(`<a href="${escaped}" style=`);
    expect(html).toContain(`<a href="${escaped}">${escaped}</a>`);
    expect(html).not.toContain('<script');
    expect(text.split('\n')).toContain(url);
  });

  it('contains the link in both parts', () => {
    const e = consentEmail();
    const { html, text } = renderConsentEmail(e);
    expect(text.split('\n')).toContain(e.consentUrl);
    expect(html).toContain(`href="${escapeHtml(e.consentUrl)}"`);
    expect(html).toContain('https://app.heygen.com/consent/abc123?lang=en&amp;ref=mail');
  });

  it('shows the expiry in UTC, human readable, in both parts', () => {
    // 15:05 at +01:00 is 14:05 UTC; seconds are dropped, never rounded up.
    const { html, text } = renderConsentEmail(consentEmail({ expiresAt: '2025-12-01T15:05:59+01:00' }));
    expect(text).toContain('The link expires on Monday, 1 December 2025, 14:05 UTC.');
    expect(html).toContain('The link expires on Monday, 1 December 2025, 14:05 UTC.');
  });

  it('includes the group id, an explanation and the "ignore if unexpected" note', () => {
    const { html, text } = renderConsentEmail(consentEmail());
    for (const part of [text, html]) {
      expect(part).toContain('Reference: avatar group grp_4f2a9c');
      expect(part).toContain('HeyGen needs your consent to use your likeness');
      expect(part).toContain('If you did not expect this email, you can ignore it');
    }
    expect(text.startsWith('Hello Alice Example,\n')).toBe(true);
  });

  it('builds the subject from the avatar name, with prefixes for new links and reminders', () => {
    expect(renderConsentEmail(consentEmail()).subject).toBe(
      'Please approve the use of your likeness for avatar “Studio Alice”',
    );
    const second = renderConsentEmail(consentEmail({ generation: 2 }));
    expect(second.subject).toBe(
      'New link: Please approve the use of your likeness for avatar “Studio Alice”',
    );
    expect(second.text).toContain('here is a new link');
    const reminder = renderConsentEmail(consentEmail({ reminder: true }));
    expect(reminder.subject).toBe(
      'Reminder: Please approve the use of your likeness for avatar “Studio Alice”',
    );
    expect(reminder.text).toContain('This is a reminder');
    expect(renderConsentEmail(consentEmail()).text).not.toContain('new link');
  });

  it('cleans line breaks out of names so the subject and greeting stay on one line', () => {
    const { subject, text } = renderConsentEmail(
      consentEmail({
        to: { email: 'a@example.com', name: 'Alice\r\nBcc: evil@x' },
        avatarName: 'Av\r\natar',
      }),
    );
    expect(subject).not.toMatch(/[\r\n]/);
    expect(subject).toContain('“Av atar”');
    expect(text.split('\n')[0]).toBe('Hello Alice Bcc: evil@x,');
  });

  it('greets without a name when none (or only whitespace) is given', () => {
    expect(
      renderConsentEmail(consentEmail({ to: { email: 'a@example.com' } })).text.startsWith('Hello,\n'),
    ).toBe(true);
    expect(
      renderConsentEmail(consentEmail({ to: { email: 'a@example.com', name: ' \r\n\t ' } })).text.startsWith(
        'Hello,\n',
      ),
    ).toBe(true);
  });

  it('is byte-for-byte deterministic: independent of the clock and of repeated calls', () => {
    const e = consentEmail({ generation: 3, reminder: true });
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2020-01-01T00:00:00Z'));
    const first = renderConsentEmail(e);
    vi.setSystemTime(new Date('2031-07-15T23:59:59Z'));
    const second = renderConsentEmail(structuredClone(e));
    expect(second).toStrictEqual(first);
    expect(JSON.stringify(second)).toBe(JSON.stringify(first));
  });

  it('refuses invalid input without echoing the values', () => {
    expect(() => renderConsentEmail(consentEmail({ consentUrl: 'javascript:alert(1)' }))).toThrow(
      /consentUrl/,
    );
    expect(() => renderConsentEmail(consentEmail({ expiresAt: 'tomorrow-ish' }))).toThrow(/expiresAt/);
    expect(() => renderConsentEmail(consentEmail({ messageId: 'no-brackets@x' }))).toThrow(/messageId/);
    expect(() => renderConsentEmail(consentEmail({ generation: 0 }))).toThrow(/generation/);
    try {
      renderConsentEmail(consentEmail({ to: { email: 'secret-person@example.com\r\nBcc: x@y' } }));
      expect.unreachable('should have thrown');
    } catch (err) {
      expect(err).toBeInstanceOf(TypeError);
      expect((err as Error).message).toContain('to.email');
      expect((err as Error).message).not.toContain('secret-person');
    }
  });
});

describe('formatExpiryUtc', () => {
  it('formats in UTC regardless of the offset given', () => {
    expect(formatExpiryUtc('2024-02-29T23:30:00-05:00')).toBe('Friday, 1 March 2024, 04:30 UTC');
    expect(formatExpiryUtc('2025-01-05T00:00:00.999Z')).toBe('Sunday, 5 January 2025, 00:00 UTC');
  });
});

describe('mailSafeName', () => {
  it('turns CR, LF, TAB and other controls into single spaces and trims', () => {
    expect(mailSafeName('Alice\r\nBcc: evil@x')).toBe('Alice Bcc: evil@x');
    expect(mailSafeName('\t Bob \u0000\u0007 Smith\u2028\u0085 ')).toBe('Bob Smith');
    expect(mailSafeName('Eve\u202Egnp.exe')).toBe('Evegnp.exe');
    expect(mailSafeName('')).toBe('');
  });

  it('never returns control characters, line breaks, outer whitespace or too many code points', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc.integer({ min: 1, max: 150 }),
        (s, max) => {
          const out = mailSafeName(s, max);
          expect(out).not.toMatch(/[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/u);
          expect(out).toBe(out.trim());
          expect(Array.from(out).length).toBeLessThanOrEqual(max);
          expect(mailSafeName(out, max)).toBe(out);
        },
      ),
    );
  });
});

describe('escapeHtml', () => {
  it('leaves no character that could open a tag or end an attribute', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 100 }), (s) => {
        expect(escapeHtml(s)).not.toMatch(/[<>"'`]/);
      }),
    );
    expect(escapeHtml('a&b')).toBe('a&amp;b');
  });
});

describe('address and input validation', () => {
  it('accepts plain addresses and refuses anything that could carry a second address or a header', () => {
    expect(isValidEmailAddress('alice+tag@example.co.uk')).toBe(true);
    expect(isValidEmailAddress('person@localhost')).toBe(true);
    for (const bad of [
      'alice@example.com\r\nBcc: evil@x',
      'Alice <alice@example.com>',
      'alice@example.com, evil@x.com',
      '"quoted"@example.com',
      'no-at-sign',
      `${'a'.repeat(65)}@example.com`,
      '',
    ]) {
      expect(isValidEmailAddress(bad), bad).toBe(false);
    }
  });

  it('checks Message-IDs and links', () => {
    expect(isValidMessageId('<avatar-consent.abc123@avatar-consent.local>')).toBe(true);
    expect(isValidMessageId('avatar-consent.abc123@avatar-consent.local')).toBe(false);
    expect(isValidMessageId('<a b@c>')).toBe(false);
    expect(isValidMessageId('<a@c>\r\nBcc: x@y')).toBe(false);
    expect(isSafeLinkUrl('http://localhost:8080/consent/1')).toBe(true);
    expect(isSafeLinkUrl('javascript:alert(1)')).toBe(false);
    expect(isSafeLinkUrl('data:text/html,hi')).toBe(false);
    expect(isSafeLinkUrl('https://x.example/a b')).toBe(false);
    expect(isSafeLinkUrl('/relative/path')).toBe(false);
  });

  it('reports problems by field', () => {
    const result = parseConsentEmail({ ...consentEmail(), groupId: 'has space', generation: 1.5 });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.problems.some((p) => p.startsWith('groupId:'))).toBe(true);
      expect(result.problems.some((p) => p.startsWith('generation:'))).toBe(true);
    }
    expect(parseConsentEmail(consentEmail()).ok).toBe(true);
  });
});

describe('redactSmtpUrl', () => {
  it('hides the password and keeps user, host and port', () => {
    expect(redactSmtpUrl('smtps://mailer:s3cr3t@smtp.example.com:465')).toBe(
      'smtps://mailer:****@smtp.example.com:465',
    );
    expect(redactSmtpUrl('smtp://localhost:1025')).toBe('smtp://localhost:1025');
    const encoded = redactSmtpUrl(`smtp://u%40x:${encodeURIComponent('p@ss:w/rd')}@h:25?pool=true`);
    expect(encoded).toBe('smtp://u@x:****@h:25');
    expect(encoded).not.toContain('ss');
  });

  it('does not echo a URL it cannot parse', () => {
    expect(redactSmtpUrl('smtp://user:hunter2@[not a host')).not.toContain('hunter2');
  });
});

describe('classifySmtpError', () => {
  const smtp = (responseCode: number, command: string, response = `${responseCode} something`) =>
    Object.assign(new Error('Something failed'), { code: 'EENVELOPE', responseCode, command, response });

  it.each([
    [550, 'RCPT TO'],
    [551, 'RCPT TO'],
    [553, 'RCPT TO'],
    [501, 'RCPT TO'],
    [554, 'DATA'],
    [552, 'DATA'],
  ])('%i at %s is a permanent rejection', (code, command) => {
    const err = classifySmtpError(smtp(code, command));
    expect(err).toBeInstanceOf(MailError);
    expect(err.kind).toBe('permanent');
    expect(err.reason).toBe('rejected');
    expect(err.responseCode).toBe(code);
    expect(err.command).toBe(command);
  });

  it.each([
    [451, 'DATA', 'temporary'],
    [450, 'RCPT TO', 'temporary'],
    [421, 'RCPT TO', 'temporary'],
    [452, 'RCPT TO', 'temporary'],
    [552, 'RCPT TO', 'temporary'],
    [503, 'DATA', 'protocol'],
    [535, 'AUTH PLAIN', 'auth'],
    [530, 'MAIL FROM', 'auth'],
    [550, 'MAIL FROM', 'config'],
    [554, 'CONN', 'config'],
  ])('%i at %s is transient (%s)', (code, command, reason) => {
    const err = classifySmtpError(smtp(code, command));
    expect(err.kind).toBe('transient');
    expect(err.reason).toBe(reason);
  });

  it('treats an auth failure as transient and flags it for an operator', () => {
    const err = classifySmtpError(
      Object.assign(new Error('Missing credentials for "PLAIN"'), { code: 'EAUTH' }),
    );
    expect(err.kind).toBe('transient');
    expect(err.reason).toBe('auth');
    expect(err.needsOperator).toBe(true);
  });

  it('treats "relay access denied" as our configuration, not the recipient', () => {
    const err = classifySmtpError(smtp(554, 'RCPT TO', '554 5.7.1 <x@y.z>: Relay access denied'));
    expect(err.kind).toBe('transient');
    expect(err.reason).toBe('config');
    expect(err.enhancedStatus).toBe('5.7.1');
  });

  it('reads the enhanced status code: 552 5.2.2 (mailbox full) is transient', () => {
    const err = classifySmtpError(smtp(552, 'DATA', '552 5.2.2 Mailbox full'));
    expect(err.kind).toBe('transient');
    expect(err.enhancedStatus).toBe('5.2.2');
  });

  it.each([
    ['ECONNREFUSED', 'connection'],
    ['ECONNRESET', 'connection'],
    ['ETIMEDOUT', 'timeout'],
    ['ENOTFOUND', 'dns'],
    ['EAI_AGAIN', 'dns'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'tls'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'tls'],
    ['ECONNECTION', 'connection'],
  ])('network error %s is transient (%s)', (code, reason) => {
    const err = classifySmtpError(Object.assign(new Error(`failed ${code}`), { code }));
    expect(err.kind).toBe('transient');
    expect(err.reason).toBe(reason);
    expect(err.responseCode).toBeNull();
  });

  it('uses the original code nodemailer keeps under ESOCKET', () => {
    const err = classifySmtpError(
      Object.assign(new Error('getaddrinfo ENOTFOUND nowhere'), {
        code: 'ESOCKET',
        originalCode: 'ENOTFOUND',
      }),
    );
    expect(err.reason).toBe('dns');
    expect(err.originalCode).toBe('ENOTFOUND');
  });

  it('is transient for unknown errors and for thrown non-errors, and passes a MailError through', () => {
    expect(classifySmtpError(new Error('weird')).kind).toBe('transient');
    expect(classifySmtpError('a string').kind).toBe('transient');
    expect(classifySmtpError(undefined).reason).toBe('unknown');
    const original = new MailError('x', { kind: 'permanent', reason: 'rejected' });
    expect(classifySmtpError(original)).toBe(original);
  });

  it('refuses an invalid recipient found by nodemailer permanently, an invalid sender transiently', () => {
    const recipient = Object.assign(new Error('Invalid recipient "x"'), { code: 'EENVELOPE' });
    expect(classifySmtpError(recipient).kind).toBe('permanent');
    const sender = Object.assign(new Error('Invalid sender "x"'), { code: 'EENVELOPE' });
    expect(classifySmtpError(sender).kind).toBe('transient');
  });

  it('never carries credentials: URLs with user info and given secrets are scrubbed, no cause is kept', () => {
    const raw = Object.assign(new Error('connect failed for smtps://mailer:hunter2@smtp.example.com:465'), {
      code: 'ECONNREFUSED',
      response: undefined,
    });
    const err = classifySmtpError(raw);
    expect(err.message).not.toContain('hunter2');
    expect(err.message).toContain('smtps://mailer:****@smtp.example.com:465');
    expect(err.cause).toBeUndefined();
    const withSecret = classifySmtpError(
      Object.assign(new Error('x'), {
        responseCode: 535,
        response: '535 bad password TopSecret99',
        command: 'AUTH',
      }),
      { secrets: ['TopSecret99'] },
    );
    expect(withSecret.message).not.toContain('TopSecret99');
    expect(JSON.stringify(withSecret)).not.toContain('TopSecret99');
  });

  it('serialises to JSON with its classification', () => {
    const err = classifySmtpError(smtp(550, 'RCPT TO', '550 5.1.1 No such user'));
    const json = JSON.parse(JSON.stringify(err)) as Record<string, unknown>;
    expect(json).toMatchObject({
      name: 'MailError',
      kind: 'permanent',
      reason: 'rejected',
      responseCode: 550,
      smtpCode: 'EENVELOPE',
      enhancedStatus: '5.1.1',
    });
    expect(err.name).toBe('MailError');
    expect(err.retryable).toBe(false);
  });
});
