import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  InvalidInputError,
  formatDuration,
  parseAvatarConsentInput,
  parseDuration,
  resolvePolicy,
  workflowIdForGroup,
} from '../../src/contract/index.js';

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

  it('parses durations given as strings', () => {
    const parsed = parseAvatarConsentInput({
      ...valid,
      policy: { deadline: '3d', pollInitialInterval: '30s' },
    });
    expect(parsed.policy).toEqual({ deadline: 3 * 86_400_000, pollInitialInterval: 30_000 });
  });

  it.each([
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
    [{ ...valid, policy: { deadline: 'forever' } }, /policy\.deadline: "forever" is not a duration/],
    [{ ...valid, policy: { deadline: '500ms' } }, /policy\.deadline: must be between 1s and 90d/],
    [{ ...valid, policy: { maxLinkRefreshes: -1 } }, /policy\.maxLinkRefreshes/],
    [{ ...valid, notify: { workflowId: '' } }, /notify\.workflowId: must not be empty/],
    [{ ...valid, recipient: { emial: 'typo@example.com' } }, /recipient/],
    [{ ...valid, extra: true }, /extra/],
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
