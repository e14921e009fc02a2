import { inspect } from 'node:util';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  HeyGenError,
  RETRY_AFTER_DEFAULTS,
  classifyHeyGenResponse,
  classifyHeyGenTransportError,
  invalidHeyGenResponse,
  isRetryableKind,
  parseHttpDate,
  parseRetryAfter,
} from '../../src/heygen/failures.js';
import type { HeyGenFailureKind } from '../../src/heygen/failures.js';
import { buildReturnUrl, GatewaySecrets } from '../../src/gateway/tokens.js';

const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);
const METHOD = 'POST';
const PATH = '/v3/avatars/ag_1/consent';
const SECRET = 'hg_live_SECRETKEY_0123456789abcdef';

function envelope(code: string, message: string, param: string | null = null): string {
  return JSON.stringify({ error: { code, message, param, doc_url: null } });
}

function classify(status: number, bodyText: string, headers: Record<string, string> = {}): HeyGenError {
  return classifyHeyGenResponse({
    status,
    headers: new Headers(headers),
    bodyText,
    method: METHOD,
    path: PATH,
    now: NOW,
    secrets: [SECRET],
  });
}

describe('classifyHeyGenResponse: every HeyGen error code from API-NOTES', () => {
  const cases: Array<{ status: number; code: string; kind: HeyGenFailureKind; param?: string }> = [
    { status: 400, code: 'invalid_parameter', kind: 'invalid', param: 'reroute_url' },
    { status: 401, code: 'unauthorized', kind: 'needs_operator' },
    { status: 401, code: 'authentication_failed', kind: 'needs_operator' },
    { status: 402, code: 'insufficient_credit', kind: 'needs_operator' },
    { status: 403, code: 'forbidden', kind: 'needs_operator' },
    { status: 403, code: 'resource_access_denied', kind: 'needs_operator' },
    { status: 404, code: 'avatar_group_not_found', kind: 'not_found' },
    { status: 404, code: 'not_found', kind: 'not_found' },
    { status: 409, code: 'request_in_progress', kind: 'in_progress' },
    { status: 429, code: 'rate_limit_exceeded', kind: 'rate_limited' },
    { status: 500, code: 'internal_error', kind: 'retryable' },
    { status: 504, code: 'gateway_timeout', kind: 'retryable' },
  ];

  it.each(cases)('$status $code -> $kind', ({ status, code, kind, param }) => {
    const err = classify(status, envelope(code, `message for ${code}`, param ?? null), {
      'retry-after': '7',
    });
    expect(err).toBeInstanceOf(HeyGenError);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('HeyGenError');
    expect(err.kind).toBe(kind);
    expect(err.status).toBe(status);
    expect(err.code).toBe(code);
    expect(err.param).toBe(param ?? null);
    expect(err.retryable).toBe(isRetryableKind(kind));
    expect(err.method).toBe(METHOD);
    expect(err.path).toBe(PATH);
    expect(err.message).toContain(`HeyGen ${status} ${code} on ${METHOD} ${PATH}: message for ${code}`);
    if (param) expect(err.message).toContain(`(param: ${param})`);
    // Retry-After only matters for 429.
    expect(err.retryAfterMs).toBe(kind === 'rate_limited' ? 7_000 : null);
  });

  it('formats a 429 as a short human message with the wait', () => {
    const err = classify(429, envelope('rate_limit_exceeded', 'Too many requests'), { 'Retry-After': '120' });
    expect(err.message).toBe(
      'HeyGen 429 rate_limit_exceeded on POST /v3/avatars/ag_1/consent: Too many requests (retry after 120s)',
    );
    expect(err.retryAfterMs).toBe(120_000);
  });

  it('429 without Retry-After uses the documented default (60 s)', () => {
    const err = classify(429, envelope('rate_limit_exceeded', 'slow down'));
    expect(err.kind).toBe('rate_limited');
    expect(err.retryAfterMs).toBe(RETRY_AFTER_DEFAULTS.defaultMs);
    expect(RETRY_AFTER_DEFAULTS.defaultMs).toBe(60_000);
  });

  it('429 with an HTTP-date Retry-After and an HTML body is still rate_limited with the wait', () => {
    const at = new Date(NOW + 45_000).toUTCString();
    const err = classify(429, '<html><body>Too Many Requests</body></html>', {
      'retry-after': at,
      'content-type': 'text/html',
    });
    expect(err.kind).toBe('rate_limited');
    expect(err.code).toBeNull();
    expect(err.retryAfterMs).toBe(45_000);
  });
});

describe('classifyHeyGenResponse: status classes', () => {
  it.each([
    [301, 'needs_operator'],
    [302, 'needs_operator'],
    [307, 'needs_operator'],
    [400, 'invalid'],
    [401, 'needs_operator'],
    [402, 'needs_operator'],
    [403, 'needs_operator'],
    [404, 'not_found'],
    [405, 'invalid'],
    [407, 'needs_operator'],
    [408, 'retryable'],
    [409, 'in_progress'],
    [410, 'not_found'],
    [413, 'invalid'],
    [422, 'invalid'],
    [425, 'retryable'],
    [429, 'rate_limited'],
    [499, 'invalid'],
    [500, 'retryable'],
    [502, 'retryable'],
    [503, 'retryable'],
    [504, 'retryable'],
    [599, 'retryable'],
  ] as const)('%i with an empty body -> %s', (status, kind) => {
    const err = classify(status, '');
    expect(err.kind).toBe(kind);
    expect(err.status).toBe(status);
    expect(err.message).toContain(`HeyGen ${status}`);
  });

  it('a redirect is an unexpected_redirect for an operator (the base URL is wrong)', () => {
    const err = classify(302, '', { location: 'https://elsewhere.example/' });
    expect(err.kind).toBe('needs_operator');
    expect(err.code).toBe('unexpected_redirect');
    expect(err.message).toContain('not followed');
    expect(err.message).not.toContain('elsewhere.example');
  });

  it('409 with a code other than request_in_progress is invalid (an undocumented conflict, not looped on)', () => {
    const err = classify(409, envelope('consent_already_approved', 'Already approved'));
    expect(err.kind).toBe('invalid');
    expect(err.code).toBe('consent_already_approved');
  });

  it('409 whose body cannot be read is in_progress (the only documented 409)', () => {
    const err = classify(409, '<html>Conflict</html>', { 'content-type': 'text/html' });
    expect(err.kind).toBe('in_progress');
    expect(err.code).toBeNull();
  });

  it('503 carrying Retry-After exposes the hint, but stays retryable', () => {
    const err = classify(503, '', { 'retry-after': '30' });
    expect(err.kind).toBe('retryable');
    expect(err.retryAfterMs).toBe(30_000);
  });
});

describe('classifyHeyGenResponse: bodies that are not the StandardAPIError envelope', () => {
  it('an HTML page from a proxy is classified by status, without dumping the page', () => {
    const html = `<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>${'x'.repeat(5000)}</body></html>`;
    const err = classify(502, html, { 'content-type': 'text/html; charset=utf-8' });
    expect(err.kind).toBe('retryable');
    expect(err.code).toBeNull();
    expect(err.message).toBe('HeyGen 502 on POST /v3/avatars/ag_1/consent: non-JSON body, text/html');
  });

  it('truncated JSON is classified by status', () => {
    const err = classify(500, '{"error":{"code":"internal_er');
    expect(err.kind).toBe('retryable');
    expect(err.code).toBeNull();
    expect(err.message).toContain('non-JSON body');
  });

  it('truncated JSON on a 404 is still not_found; on a 400 still invalid', () => {
    expect(classify(404, '{"error":').kind).toBe('not_found');
    expect(classify(400, '{"error":').kind).toBe('invalid');
  });

  it('JSON without the envelope, or an envelope missing required fields, yields no code', () => {
    const a = classify(500, JSON.stringify({ message: 'oops' }));
    expect(a.code).toBeNull();
    expect(a.message).toContain('JSON body without an error envelope');
    const b = classify(400, JSON.stringify({ error: { code: 'invalid_parameter' } }));
    expect(b.code).toBeNull();
    expect(b.kind).toBe('invalid');
  });

  it('an oversized body (cut off by the client) is not parsed', () => {
    const err = classifyHeyGenResponse({
      status: 500,
      headers: new Headers(),
      bodyText: envelope('internal_error', 'x'),
      bodyTruncated: true,
      method: 'GET',
      path: '/v3/avatars/ag_1',
    });
    expect(err.code).toBeNull();
    expect(err.message).toContain('oversized body');
  });

  it('tolerates extra fields in the envelope', () => {
    const body = JSON.stringify({ error: { code: 'forbidden', message: 'No', extra: 1 }, request_id: 'r' });
    expect(classify(403, body).code).toBe('forbidden');
  });

  it('truncates a long HeyGen message and strips control characters', () => {
    const err = classify(
      400,
      envelope('invalid_parameter', `bad\r\nInjected: header ${'y'.repeat(1000)}`, 'x'),
    );
    expect(err.message).not.toMatch(/[\r\n]/);
    expect(err.message.length).toBeLessThan(400);
    expect(err.message).toContain('…');
  });

  it('keeps a well-formed x-request-id and ignores a malformed one', () => {
    expect(classify(500, '', { 'x-request-id': 'req_abc-123' }).requestId).toBe('req_abc-123');
    expect(classify(500, '', { 'x-request-id': 'bad value <script>' }).requestId).toBeNull();
    expect(classify(500, '').requestId).toBeNull();
  });
});

describe('secrets never leak from classified errors', () => {
  function expectNoSecret(err: HeyGenError): void {
    for (const text of [
      String(err),
      err.message,
      err.stack ?? '',
      JSON.stringify(err),
      inspect(err, { depth: 10 }),
      inspect(err, { depth: 10, showHidden: true }),
    ]) {
      expect(text).not.toContain(SECRET);
    }
    expect((err as { cause?: unknown }).cause).toBeUndefined();
  }

  it('scrubs a key echoed by HeyGen in message, code and param', () => {
    const err = classify(401, envelope(`code_${SECRET}`, `Invalid API key ${SECRET}.`, SECRET));
    expect(err.message).toContain('Invalid API key [redacted]');
    expectNoSecret(err);
  });

  it('scrubs the key from the path (if a caller passed it where an id belongs)', () => {
    const err = classifyHeyGenResponse({
      status: 404,
      headers: new Headers(),
      bodyText: '',
      method: 'GET',
      path: `/v3/avatars/${SECRET}`,
      secrets: [SECRET],
    });
    expectNoSecret(err);
  });

  it('an invalid 2xx body echoing the key is described by type and length only', () => {
    const bodyText = `<html>your key is ${SECRET} ${'z'.repeat(1000)}</html>`;
    const err = invalidHeyGenResponse({
      status: 200,
      method: 'GET',
      path: '/v3/avatars/ag_1',
      problem: 'body is not JSON',
      bodyText,
      headers: new Headers({ 'content-type': 'text/html; charset=utf-8' }),
      secrets: [SECRET],
    });
    expect(err.kind).toBe('retryable');
    expect(err.code).toBe('invalid_response');
    expect(err.message).toBe(
      `HeyGen 200 on GET /v3/avatars/ag_1: invalid response: body is not JSON (text/html, ${bodyText.length} bytes)`,
    );
    expectNoSecret(err);
  });

  it('scrubs a key that HeyGen echoes shortened to its first characters', () => {
    const err = classify(401, envelope('unauthorized', `Invalid API key ${SECRET.slice(0, 10)}…`));
    expect(err.message).toContain('Invalid API key [redacted]…');
    expect(err.message).not.toContain(SECRET.slice(0, 8));
  });

  it('transport errors keep no cause object, not even one holding request headers', () => {
    const cause = Object.assign(new Error(`connect ECONNREFUSED (key ${SECRET})`), {
      code: 'ECONNREFUSED',
      headers: { 'x-api-key': SECRET },
      request: { headers: { 'x-api-key': SECRET } },
    });
    const err = classifyHeyGenTransportError(new TypeError('fetch failed', { cause }), {
      method: 'GET',
      path: '/v3/avatars/ag_1',
      timeoutMs: 1000,
      secrets: [SECRET],
    });
    expect(err.code).toBe('network_error');
    expect(err.message).toContain('ECONNREFUSED');
    expectNoSecret(err);
  });

  it('toJSON is a plain object of known, secret-free fields', () => {
    const err = classify(429, envelope('rate_limit_exceeded', 'Too many'), { 'retry-after': '3' });
    expect(err.toJSON()).toEqual({
      name: 'HeyGenError',
      kind: 'rate_limited',
      retryable: true,
      status: 429,
      code: 'rate_limit_exceeded',
      param: null,
      retryAfterMs: 3_000,
      requestId: null,
      method: 'POST',
      path: PATH,
      message: err.message,
    });
    expect(JSON.parse(JSON.stringify(err))).toEqual(err.toJSON());
  });
});

describe("HeyGen's words in failures: no URLs, no signed tokens, no body content", () => {
  const secrets = GatewaySecrets.fromTexts([`hex:${'3c9a'.repeat(16)}`]);
  const returnUrl = buildReturnUrl({
    publicBaseUrl: 'https://consent.example.com',
    workflowId: 'avatar-consent-grp_1',
    finalRedirect: 'https://app.example.com/avatars/done?group=g1',
    ttlMs: 3_600_000,
    secrets,
    nowMs: NOW,
  });
  const token = new URL(returnUrl).searchParams.get('t')!;
  const [payloadPart, macPart] = token.split('.') as [string, string];
  const consentLink = 'https://app.heygen.com/consent/9f8e7d6c5b4a?sig=abcdef0123456789';

  function expectNothingOf(message: string, ...texts: string[]): void {
    for (const text of texts) expect(message).not.toContain(text);
    expect(message).not.toContain(payloadPart);
    expect(message).not.toContain(macPart);
  }

  it.each([
    ['a quoted URL', `reroute_url '${returnUrl}' is not reachable`],
    ['a URL in double quotes', `reroute_url "${returnUrl}" is not reachable`],
    ['a JSON-escaped URL', `reroute_url ${returnUrl.replaceAll('/', '\\/')} is not reachable`],
    ['a percent-encoded URL', `reroute_url ${encodeURIComponent(returnUrl)} is not reachable`],
    ['a URL without scheme', `reroute_url ${returnUrl.replace('https://', '')} is not reachable`],
    ['a protocol-relative URL', `reroute_url ${returnUrl.replace('https:', '')} is not reachable`],
    ['a path with the query', `reroute_url path /consent-return?t=${token} is not reachable`],
    ['the bare token', `reroute_url token ${token} is not reachable`],
    ['a URL glued to a word', `reroute_url:${returnUrl}`],
  ])('a 400 quoting reroute_url as %s keeps neither the link nor its token', (_label, heygenMessage) => {
    const err = classify(400, envelope('invalid_parameter', heygenMessage, 'reroute_url'));
    expect(err.kind).toBe('invalid');
    expect(err.param).toBe('reroute_url');
    expectNothingOf(err.message, 'consent.example.com', 'app.example.com', 'group=g1');
    expect(err.message).toMatch(/\[(url|token)\]/);
    expect(err.message).toContain('reroute_url');
  });

  it('a 400 quoting the consent text with a link in it keeps no link', () => {
    const err = classify(
      400,
      envelope(
        'invalid_parameter',
        `consent_text too long: "I agree, see www.example.org/terms and ${consentLink}"`,
      ),
    );
    expect(err.message).not.toContain('example.org');
    expect(err.message).not.toContain('app.heygen.com');
    expect(err.message).not.toContain('sig=');
  });

  it('URLs in code and param are scrubbed too', () => {
    const err = classify(400, envelope(`bad_${consentLink}`, 'no', `reroute_url=${returnUrl}`));
    expectNothingOf(`${err.code} ${err.param} ${err.message}`, 'app.heygen.com', 'consent.example.com');
  });

  it('leaves ordinary words, dotted field names and error codes alone', () => {
    const text = 'avatar_group.consent_text: must be at most 2000 characters (see field data.url: e.g. v1.2)';
    const err = classify(400, envelope('invalid_parameter', text, 'consent_text'));
    expect(err.message).toContain(text);
  });

  it('a 2xx that is not JSON holding the consent link is described by status, type and length only', () => {
    const body = `<html><body>Your link: <a href="${consentLink}">${consentLink}</a></body></html>`;
    const err = invalidHeyGenResponse({
      status: 200,
      method: 'POST',
      path: PATH,
      problem: 'body is not JSON',
      bodyText: body,
      headers: new Headers({ 'content-type': 'text/html' }),
    });
    expect(err.message).toBe(
      `HeyGen 200 on POST ${PATH}: invalid response: body is not JSON (text/html, ${Buffer.byteLength(body)} bytes)`,
    );
  });

  it('a 2xx body that is plain text names neither the text nor a strange content type', () => {
    const err = invalidHeyGenResponse({
      status: 201,
      method: 'POST',
      path: PATH,
      problem: 'body is not JSON',
      bodyText: consentLink,
      headers: new Headers({ 'content-type': `text/${consentLink.replaceAll('/', '_')}` }),
    });
    expect(err.message).not.toContain('heygen.com');
    expect(err.message).not.toContain('9f8e7d6c5b4a');
    expect(err.message).toContain('unrecognised content type');
    const empty = invalidHeyGenResponse({
      status: 200,
      method: 'GET',
      path: PATH,
      problem: 'body is not JSON',
      bodyText: '',
    });
    expect(empty.message).toContain('(empty body, no content type)');
  });

  it('property: a web URL anywhere in a HeyGen message never reaches the error', () => {
    const words = fc.stringMatching(/^[A-Za-z ,:;()']{0,20}$/);
    const url = fc.webUrl({ withQueryParameters: true, withFragments: true });
    fc.assert(
      fc.property(words, url, words, fc.boolean(), (before, link, after, glued) => {
        const sep = glued ? '' : ' ';
        const err = classify(400, envelope('invalid_parameter', `${before}${sep}${link}${sep}${after}`));
        const afterScheme = link.slice(link.indexOf('//') + 2);
        expect(err.message).not.toContain(afterScheme);
      }),
      { numRuns: 1_000 },
    );
  });

  it('a huge message is cut before it is scanned, and a URL across the cut is still removed', () => {
    const err = classify(
      400,
      envelope('invalid_parameter', `${' '.repeat(990)}${returnUrl}${' x'.repeat(1_000_000)}`),
    );
    expectNothingOf(err.message, 'consent.example.com');
    expect(err.message.length).toBeLessThan(400);
  });
});

describe('classifyHeyGenTransportError', () => {
  const ctx = { method: 'GET', path: '/v3/avatars/ag_1', timeoutMs: 250 };

  it.each([
    [
      'TimeoutError DOMException',
      new DOMException('The operation was aborted due to timeout', 'TimeoutError'),
    ],
    ['AbortError DOMException', new DOMException('This operation was aborted', 'AbortError')],
    [
      'TypeError wrapping a headers timeout',
      new TypeError('fetch failed', { cause: { code: 'UND_ERR_HEADERS_TIMEOUT' } }),
    ],
    ['ETIMEDOUT', Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' })],
  ])('%s -> retryable timeout', (_label, err) => {
    const out = classifyHeyGenTransportError(err, ctx);
    expect(out.kind).toBe('retryable');
    expect(out.code).toBe('timeout');
    expect(out.status).toBeNull();
    expect(out.message).toBe('HeyGen request GET /v3/avatars/ag_1 timed out after 250ms');
  });

  it.each([
    [
      'fetch TypeError with ECONNREFUSED cause',
      new TypeError('fetch failed', {
        cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }),
      }),
      'ECONNREFUSED',
    ],
    ['ECONNRESET', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'ECONNRESET'],
    ['plain fetch TypeError', new TypeError('fetch failed'), null],
    ['a thrown string', 'boom', null],
    ['undefined', undefined, null],
    [
      'a cyclic cause chain',
      (() => {
        const e: Error & { cause?: unknown } = new Error('loop');
        e.cause = e;
        return e;
      })(),
      null,
    ],
  ])('%s -> retryable network_error', (_label, err, causeCode) => {
    const out = classifyHeyGenTransportError(err, ctx);
    expect(out.kind).toBe('retryable');
    expect(out.code).toBe('network_error');
    expect(out.status).toBeNull();
    expect(out.message).toMatch(/^HeyGen request GET \/v3\/avatars\/ag_1 failed: network error/);
    if (causeCode) expect(out.message).toContain(causeCode);
  });
});

describe('isRetryableKind', () => {
  it('retries everything except invalid and not_found', () => {
    const kinds: Record<HeyGenFailureKind, boolean> = {
      retryable: true,
      rate_limited: true,
      in_progress: true,
      needs_operator: true,
      invalid: false,
      not_found: false,
    };
    for (const [kind, expected] of Object.entries(kinds)) {
      expect(isRetryableKind(kind as HeyGenFailureKind)).toBe(expected);
    }
  });
});

describe('parseRetryAfter', () => {
  const httpDate = (ms: number) => new Date(ms).toUTCString();

  it.each([
    ['integer seconds', '120', 120_000],
    ['one second', '1', 1_000],
    ['0 (clamped up to minMs: no hot loop)', '0', 1_000],
    ['negative (invalid) -> default', '-5', 60_000],
    ['huge -> maxMs (1 h)', '999999999', 3_600_000],
    ['absurdly long digits -> maxMs', '9'.repeat(400), 3_600_000],
    ['decimal seconds (accepted: meaning is unambiguous)', '1.5', 1_500],
    ['tiny decimal -> minMs', '0.0001', 1_000],
    ['garbage -> default', 'soon', 60_000],
    ['number with unit -> default', '10s', 60_000],
    ['exponent notation -> default', '1e3', 60_000],
    ['signed -> default', '+5', 60_000],
    ['empty -> default', '', 60_000],
    ['only whitespace -> default', '   ', 60_000],
    ['surrounding whitespace is ignored', '  30\t', 30_000],
    ['two joined header values -> default', '120, 120', 60_000],
    ['date in the future', httpDate(NOW + 90_000), 90_000],
    ['date far in the future -> maxMs', httpDate(NOW + 86_400_000), 3_600_000],
    ['date in the past -> minMs', httpDate(NOW - 3_600_000), 1_000],
    ['date equal to now -> minMs', httpDate(NOW), 1_000],
    ['date with whitespace', `  ${httpDate(NOW + 10_000)} `, 10_000],
    ['RFC 850 date', 'Wednesday, 15-Jan-25 12:02:00 GMT', 120_000],
    ['asctime date', 'Wed Jan 15 12:00:30 2025', 30_000],
    ['asctime date, single-digit day', 'Wed Jan  1 00:00:00 2025', 1_000],
    ['impossible date (31 Feb) -> default', 'Mon, 31 Feb 2025 12:00:00 GMT', 60_000],
    ['date without GMT -> default', 'Wed, 15 Jan 2025 12:02:00', 60_000],
    ['ISO date (not an HTTP-date) -> default', '2025-01-15T12:02:00Z', 60_000],
  ])('%s: %j -> %i', (_label, value, expected) => {
    expect(parseRetryAfter(value, NOW)).toBe(expected);
  });

  it('missing (null / undefined) -> default', () => {
    expect(parseRetryAfter(null, NOW)).toBe(60_000);
    expect(parseRetryAfter(undefined, NOW)).toBe(60_000);
  });

  it('honours custom bounds', () => {
    const opts = { minMs: 500, maxMs: 10_000, defaultMs: 2_000 };
    expect(parseRetryAfter('0', NOW, opts)).toBe(500);
    expect(parseRetryAfter('60', NOW, opts)).toBe(10_000);
    expect(parseRetryAfter('nope', NOW, opts)).toBe(2_000);
    expect(parseRetryAfter('3', NOW, opts)).toBe(3_000);
  });

  it('normalises nonsensical bounds instead of throwing', () => {
    const out = parseRetryAfter('5', NOW, { minMs: 10_000, maxMs: 1_000, defaultMs: Number.NaN });
    expect(out).toBe(10_000);
    expect(parseRetryAfter(httpDate(NOW + 5_000), Number.NaN)).toBe(60_000);
  });

  it('property: any string gives a finite integer in [minMs, maxMs] and never throws', () => {
    const values = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.integer().map(String),
      fc.double().map(String),
      fc.bigInt().map(String),
      fc.integer({ min: -10_000_000_000, max: 10_000_000_000 }).map((offset) => httpDate(NOW + offset)),
      fc.constantFrom(null, undefined),
    );
    const bounds = fc.record({
      minMs: fc.integer({ min: 0, max: 100_000 }),
      span: fc.integer({ min: 0, max: 10_000_000 }),
      defaultMs: fc.integer({ min: -1_000, max: 20_000_000 }),
    });
    fc.assert(
      fc.property(values, bounds, fc.integer({ min: 0, max: 4_000_000_000_000 }), (value, b, now) => {
        const opts = { minMs: b.minMs, maxMs: b.minMs + b.span, defaultMs: b.defaultMs };
        const out = parseRetryAfter(value, now, opts);
        expect(Number.isInteger(out)).toBe(true);
        expect(out).toBeGreaterThanOrEqual(opts.minMs);
        expect(out).toBeLessThanOrEqual(opts.maxMs);
      }),
      { numRuns: 2_000 },
    );
  });

  it('property: with default bounds the result is always within [1 s, 1 h]', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (value) => {
        const out = parseRetryAfter(value, NOW);
        return Number.isInteger(out) && out >= 1_000 && out <= 3_600_000;
      }),
      { numRuns: 2_000 },
    );
  });

  it('property: integer seconds within bounds parse exactly', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3_600 }),
        (seconds) => parseRetryAfter(String(seconds), NOW) === seconds * 1000,
      ),
    );
  });
});

describe('parseHttpDate', () => {
  it('round-trips toUTCString output', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_000_000_000 }), (seconds) => {
        const ms = seconds * 1000;
        return parseHttpDate(new Date(ms).toUTCString(), NOW) === ms;
      }),
    );
  });

  it('maps two-digit RFC 850 years more than 50 years ahead to the previous century', () => {
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW)).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
    expect(parseHttpDate('Friday, 06-Nov-26 08:49:37 GMT', NOW)).toBe(Date.UTC(2026, 10, 6, 8, 49, 37));
  });

  it('rejects out-of-range fields', () => {
    expect(parseHttpDate('Sun, 06 Nov 1994 24:00:00 GMT', NOW)).toBeNull();
    expect(parseHttpDate('Sun, 00 Nov 1994 08:00:00 GMT', NOW)).toBeNull();
    expect(parseHttpDate('Sun, 06 Foo 1994 08:00:00 GMT', NOW)).toBeNull();
  });
});
