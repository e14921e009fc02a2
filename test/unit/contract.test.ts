import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  InvalidInputError,
  cancelInputSchema,
  changeRecipientInputProblems,
  changeRecipientInputSchema,
  fieldIssues,
  formatDuration,
  parseAvatarConsentInput,
  parseDuration,
  resendEmailInputProblems,
  resendEmailInputSchema,
  resolvePolicy,
  trustedInput,
  workflowIdForGroup,
} from '../../src/contract/index.js';
import type { AvatarConsentInput } from '../../src/contract/index.js';
import { completeInputExample } from '../../tools/contract/examples.js';

const valid = { groupId: 'ag_123', recipient: { email: 'ada@example.com', name: 'Ada Lovelace' } };

function issuesOf(raw: unknown): string {
  try {
    parseAvatarConsentInput(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    return (err as InvalidInputError).issues;
  }
  throw new Error('expected the input to be rejected');
}

describe('avatarConsentWorkflow input', () => {
  it('accepts a minimal input and fills the documented policy defaults', () => {
    const parsed = parseAvatarConsentInput(valid);
    expect(parsed.groupId).toBe('ag_123');
    expect(resolvePolicy(parsed.policy)).toEqual({
      pollInitialIntervalMs: 15_000,
      pollMaxIntervalMs: 30 * 60_000,
      pollBackoffCoefficient: 2,
      pollWindowMs: 4 * 3_600_000,
      deadlineMs: 7 * 86_400_000,
      linkTtlMs: 23 * 3_600_000,
      maxLinkRefreshes: 6,
    });
    expect(workflowIdForGroup('ag_123')).toBe('avatar-consent-ag_123');
  });

  it('keeps line feeds in the consent text: paragraphs are fine', () => {
    expect(parseAvatarConsentInput({ ...valid, consentText: 'I agree.\n\nSigned, Ada' }).consentText).toBe(
      'I agree.\n\nSigned, Ada',
    );
  });

  it('parses durations given as strings', () => {
    const parsed = parseAvatarConsentInput({
      ...valid,
      policy: { deadline: '3d', pollInitialInterval: '30s' },
    });
    expect(parsed.policy).toEqual({ deadline: 3 * 86_400_000, pollInitialInterval: 30_000 });
  });

  it.each<[unknown, RegExp]>([
    [{ ...valid, groupId: '../admin' }, /groupId: must be 1-128 characters/],
    [{ ...valid, groupId: 'ag 1' }, /groupId/],
    [{ ...valid, recipient: { email: 'nobody' } }, /recipient\.email: must be a plain email address/],
    [
      { ...valid, recipient: { email: 'a@example.com', name: 'Eve\r\nBcc: x@example.com' } },
      /recipient\.name: must not contain control characters/,
    ],
    [{ ...valid, rerouteUrl: 'http://example.com/done' }, /rerouteUrl: must be an https URL/],
    [{ ...valid, rerouteUrl: 'javascript:alert(1)' }, /rerouteUrl/],
    [{ ...valid, consentText: 'I <b>agree</b>' }, /consentText: must not contain "<" or ">"/],
    [{ ...valid, consentText: 'x'.repeat(1001) }, /consentText: must be at most 1000 characters/],
    // Control and bidi characters would reach HeyGen's consent page; only line feeds may pass.
    ...[
      'I agree\r\nto it',
      'I agree\u0000',
      'I agree \u001b[31m',
      'I agree \u202etxet',
      'I \u2066agree\u2069',
    ].map(
      (consentText) =>
        [{ ...valid, consentText }, /consentText: must not contain control characters/] as [unknown, RegExp],
    ),
    [{ ...valid, recipient: { email: 'a@example.com', name: 'Eve \u202eevil' } }, /recipient\.name: .*bidi/],
    [
      { ...valid, recipient: { email: `${'a'.repeat(65)}@example.com` } },
      /recipient\.email: must be a plain email/,
    ],
    [{ ...valid, recipient: { email: 'a@bad-.example.com' } }, /recipient\.email: must be a plain email/],
    [
      { ...valid, recipient: { email: `a@${'l'.repeat(70)}.example.com` } },
      /recipient\.email: must be a plain email/,
    ],
    [{ ...valid, policy: { deadline: 'forever' } }, /policy\.deadline: "forever" is not a duration/],
    [{ ...valid, policy: { deadline: '500ms' } }, /policy\.deadline: must be between 1s and 90d/],
    [{ ...valid, policy: { maxLinkRefreshes: -1 } }, /policy\.maxLinkRefreshes/],
    [{ ...valid, notify: { workflowId: '' } }, /notify\.workflowId: must not be empty/],
    [
      { ...valid, recipient: { emial: 'typo@example.com' } },
      /recipient\.emial: is not a field here \(allowed: email, name\)/,
    ],
    [{ ...valid, extra: true }, /(^|; )extra: is not a field here \(allowed: groupId, recipient,/],
    [{ ...valid, policy: { deadLine: '7d' } }, /policy\.deadLine: is not a field here/],
    [{ ...valid, notify: { workflowId: 'w', signal: 's' } }, /notify\.signal: is not a field here/],
    [null, /\(input\)/],
  ])('rejects %j naming the field', (raw, pattern) => {
    expect(issuesOf(raw)).toMatch(pattern);
  });

  it('lists every bad field at once', () => {
    const issues = issuesOf({ groupId: '', recipient: { email: 'x' }, consentText: '<' });
    expect(issues).toMatch(/groupId/);
    expect(issues).toMatch(/recipient\.email/);
    expect(issues).toMatch(/consentText/);
  });

  it('allows plain http reroute URLs only for localhost', () => {
    expect(parseAvatarConsentInput({ ...valid, rerouteUrl: 'http://localhost:3000/done' }).rerouteUrl).toBe(
      'http://localhost:3000/done',
    );
  });

  it('never throws anything but InvalidInputError, whatever the input', () => {
    fc.assert(
      fc.property(fc.anything(), (raw) => {
        try {
          parseAvatarConsentInput(raw);
        } catch (err) {
          if (!(err instanceof InvalidInputError)) throw err;
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('durations', () => {
  it('round-trips the units it formats', () => {
    for (const text of ['250ms', '30s', '15m', '23h', '6d', '2w']) {
      expect(formatDuration(parseDuration(text)!)).toBe(text);
    }
    expect(formatDuration(parseDuration('7d')!)).toBe('1w');
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('7 days')).toBeUndefined();
    expect(parseDuration('')).toBeUndefined();
  });
});

describe('input other languages send', () => {
  const full = completeInputExample;

  it.each([
    ['recipient.name', { ...full, recipient: { email: 'ada@example.com', name: null } }],
    ['rerouteUrl', { ...full, rerouteUrl: null }],
    ['consentText', { ...full, consentText: null }],
    ['notify', { ...full, notify: null }],
    ['notify.runId', { ...full, notify: { ...full.notify, runId: null } }],
    ['notify.signalName', { ...full, notify: { ...full.notify, signalName: null } }],
    ['policy', { ...full, policy: null }],
    ['policy.deadline', { ...full, policy: { ...full.policy, deadline: null } }],
    ['policy.pollBackoffCoefficient', { ...full, policy: { ...full.policy, pollBackoffCoefficient: null } }],
    ['policy.maxLinkRefreshes', { ...full, policy: { ...full.policy, maxLinkRefreshes: null } }],
  ])('null for %s means absent: the parsed input has no such field', (path, raw) => {
    const parsed = parseAvatarConsentInput(raw);
    const [parent, field] = path.includes('.') ? path.split('.') : [undefined, path];
    const holder = (parent ? (parsed as Record<string, unknown>)[parent] : parsed) as Record<string, unknown>;
    expect(holder).not.toHaveProperty(field);
    expect(JSON.stringify(parsed)).not.toContain('null');
  });

  it('a null required field is still an error naming it', () => {
    expect(issuesOf({ ...full, groupId: null })).toMatch(/groupId/);
    expect(issuesOf({ ...full, recipient: null })).toMatch(/recipient/);
    expect(issuesOf({ ...full, recipient: { email: null } })).toMatch(/recipient\.email/);
    expect(issuesOf({ ...full, notify: { workflowId: null } })).toMatch(/notify\.workflowId/);
  });

  it.each([
    ['PT30S', 30_000],
    ['P7D', 7 * 86_400_000],
    ['PT1H30M', 90 * 60_000],
    ['P1DT2H', 26 * 3_600_000],
    ['P2W', 14 * 86_400_000],
    ['PT0.5S', 500],
    ['PT1,5H', 90 * 60_000],
    ['P1DT2H3M4.5S', 93_784_500],
  ])('parses the ISO-8601 duration %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['P', 'PT', 'P1DT', 'P1Y', 'P1M', 'P1Y2M', '-PT30S', 'pt30s', 'PT30', '30', 'T30S', 'P1H'])(
    'refuses %j as a duration',
    (text) => {
      expect(parseDuration(text)).toBeUndefined();
    },
  );

  it('takes ISO-8601 durations in the policy, and says why years, months and numbers are refused', () => {
    const parsed = parseAvatarConsentInput({
      ...valid,
      policy: { pollInitialInterval: 'PT30S', deadline: 'P7D', linkTtl: 'PT23H' },
    });
    expect(parsed.policy).toEqual({
      pollInitialInterval: 30_000,
      deadline: 7 * 86_400_000,
      linkTtl: 23 * 3_600_000,
    });
    expect(issuesOf({ ...valid, policy: { deadline: 'P1M' } })).toMatch(
      /policy\.deadline: "P1M" is not a duration .*no years or months/,
    );
    expect(issuesOf({ ...valid, policy: { deadline: 30 } })).toMatch(
      /policy\.deadline: must be a duration .*a bare number is ambiguous/,
    );
    expect(issuesOf({ ...valid, policy: { deadline: 'P91D' } })).toMatch(
      /policy\.deadline: must be between 1s and 90d/,
    );
  });

  it.each([
    ['a line break', 'caller\nInjected: yes'],
    ['a backtick (Markdown code span)', 'caller`**bold**`'],
    ['a space', 'caller 1'],
    ['brackets (a Markdown link)', '[click](https://evil.example)'],
    ['angle brackets', '<img src=x>'],
    ['a non-ASCII letter', 'callér'],
    ['256 characters', 'w'.repeat(256)],
  ])('refuses a notify.workflowId with %s', (_what, workflowId) => {
    expect(issuesOf({ ...valid, notify: { workflowId } })).toMatch(
      /notify\.workflowId: must be 1-255 characters of A-Z, a-z, 0-9 and \. _ : \/ @ = \+ -/,
    );
  });

  it('accepts the notify.workflowId shapes callers use', () => {
    for (const workflowId of [
      'w'.repeat(255),
      '0b9e7c52-6f0e-4f2b-9a43-1c5d2e8f7a10',
      'acme:orders/4711',
      'svc@eu-1.example',
      'b64+/AbC=',
    ]) {
      expect(parseAvatarConsentInput({ ...valid, notify: { workflowId } }).notify?.workflowId).toBe(
        workflowId,
      );
    }
  });

  it.each([
    ['user and password', 'https://user:pass@example.com/done'],
    ['a user name', 'https://user@example.com/done'],
    ['a trusted-looking user name', 'https://trusted.example.com@evil.example/done'],
    ['only a password', 'https://:secret@example.com/done'],
    ['an empty user info', 'https://@example.com/done'],
    ['an empty user and password', 'https://:@example.com/done'],
  ])('refuses a rerouteUrl with %s', (_what, rerouteUrl) => {
    expect(issuesOf({ ...valid, rerouteUrl })).toMatch(
      /rerouteUrl: must not contain a user name or password/,
    );
  });

  it.each([
    ['a leading space', ' https://example.com/done'],
    ['a leading tab', '\thttps://example.com/done'],
    ['a tab inside', 'https://exam\tple.com/done'],
    ['a line break inside', 'https://example.com/do\nne'],
    ['a trailing space', 'https://example.com/done '],
  ])('refuses a rerouteUrl with %s, which the URL parser would silently drop', (_what, rerouteUrl) => {
    expect(issuesOf({ ...valid, rerouteUrl })).toMatch(
      /rerouteUrl: must not contain spaces or control characters/,
    );
  });

  it('gives the normalised URL (URL.href), never the raw text', () => {
    const cases = [
      ['HTTPS://Example.COM:443/done', 'https://example.com/done'],
      ['https://example.com', 'https://example.com/'],
      ['https://bücher.example/ä', 'https://xn--bcher-kva.example/%C3%A4'],
      ['https://example.com/a/../b?q=1#x', 'https://example.com/b?q=1#x'],
    ];
    for (const [raw, href] of cases)
      expect(parseAvatarConsentInput({ ...valid, rerouteUrl: raw }).rerouteUrl).toBe(href);
  });

  it('refuses a rerouteUrl that grows past 2048 characters once percent-encoded', () => {
    const rerouteUrl = `https://example.com/${'ä'.repeat(1000)}`;
    expect(rerouteUrl.length).toBeLessThanOrEqual(2048);
    expect(issuesOf({ ...valid, rerouteUrl })).toMatch(
      /rerouteUrl: must be at most 2048 characters once normalised/,
    );
  });

  it('update and signal inputs: null means absent there too, unknown fields are named', () => {
    expect(resendEmailInputSchema.parse(null)).toBeUndefined();
    expect(resendEmailInputSchema.parse({ reason: null })).toEqual({});
    expect(cancelInputSchema.parse(null)).toBeUndefined();
    expect(cancelInputSchema.parse({ reason: null })).toEqual({});
    expect(changeRecipientInputSchema.parse({ email: 'b@example.com', name: null, reason: null })).toEqual({
      email: 'b@example.com',
    });
    const unknown = changeRecipientInputSchema.safeParse({ email: 'b@example.com', nmae: 'B' });
    expect(unknown.success).toBe(false);
    expect(fieldIssues(unknown.error!)).toEqual([
      { path: 'nmae', message: 'is not a field here (allowed: email, name, reason)' },
    ]);
    // The workflow's own validators (zod-free) agree on nulls.
    expect(resendEmailInputProblems({ reason: null })).toEqual([]);
    expect(changeRecipientInputProblems({ email: 'b@example.com', name: null, reason: null })).toEqual([]);
  });

  it('a continued run rebuilds the parsed input the same way: no nulls, milliseconds, the normalised URL', () => {
    const raw: AvatarConsentInput = {
      groupId: 'ag_1',
      recipient: { email: 'ada@example.com', name: null },
      rerouteUrl: 'HTTPS://Example.com:443/done',
      consentText: null,
      notify: { workflowId: 'caller-1', runId: null, signalName: null },
      policy: { deadline: 'P7D', pollInitialInterval: 'PT30S', linkTtl: null, maxLinkRefreshes: 3 },
    };
    expect(trustedInput(raw)).toEqual(parseAvatarConsentInput(raw));
    expect(trustedInput({ ...raw, notify: null, policy: null })).toEqual(
      parseAvatarConsentInput({ ...raw, notify: null, policy: null }),
    );
  });
});
