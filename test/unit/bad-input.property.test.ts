/**
 * Whatever arrives (from a caller, from HeyGen, from the environment), the answer is a clear,
 * typed error naming what was wrong, never a crash or a silent default.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadWorkerConfig } from '../../src/config/worker-config.js';
import {
  DURATION_PATTERN,
  InvalidInputError,
  formatDuration,
  parseAvatarConsentInput,
  parseDuration,
} from '../../src/contract/index.js';
import { HeyGenClient, HeyGenError } from '../../src/heygen/index.js';
import { completeInputExample } from '../../tools/contract/examples.js';
import { startFakeHttpServer } from '../helpers/fake-http-server.js';
import type { FakeHttpServer } from '../helpers/fake-http-server.js';

const API_KEY = 'hg-property-test-key';
const validGroup = {
  id: 'ag_1',
  name: 'Ada',
  created_at: 1_700_000_000,
  looks_count: 1,
  consent_status: 'pending',
  status: 'pending_consent',
};

let server: FakeHttpServer;
let client: HeyGenClient;

beforeAll(async () => {
  server = await startFakeHttpServer();
  client = new HeyGenClient({ baseUrl: server.url, apiKey: API_KEY, timeoutMs: 2_000 });
});
afterAll(async () => {
  await server?.close();
});

describe('caller input', () => {
  const hostile = fc.oneof(
    fc.string({ maxLength: 50 }),
    fc.string({ minLength: 1_000, maxLength: 5_000 }),
    fc.constantFrom(
      'Eve\r\nBcc: x@example.com',
      '<script>alert(1)</script>',
      '\u0000',
      '../../etc',
      'a'.repeat(10_000),
    ),
    fc.integer(),
    fc.constant(null),
    fc.array(fc.string(), { maxLength: 3 }),
  );

  it('any value in any field is accepted or rejected with the field named', () => {
    fc.assert(
      fc.property(
        fc.record(
          {
            groupId: hostile,
            recipient: fc.record({ email: hostile, name: hostile }, { requiredKeys: [] }),
            rerouteUrl: hostile,
            consentText: hostile,
            policy: fc.record({ deadline: hostile, pollMaxInterval: hostile }, { requiredKeys: [] }),
          },
          { requiredKeys: [] },
        ),
        (raw) => {
          try {
            parseAvatarConsentInput(raw);
          } catch (err) {
            expect(err).toBeInstanceOf(InvalidInputError);
            const issues = (err as InvalidInputError).issues;
            expect(issues).toMatch(/^(groupId|recipient|rerouteUrl|consentText|policy)/);
            // The message names fields; it does not echo a 10 kB value back.
            expect(issues.length).toBeLessThan(4_000);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('CR/LF in names and "<" or ">" in consent text are always rejected', () => {
    fc.assert(
      fc.property(fc.string(), fc.constantFrom('\r', '\n', '\r\n', '\u0007'), fc.string(), (a, bad, b) => {
        expect(() =>
          parseAvatarConsentInput({
            groupId: 'ag_1',
            recipient: { email: 'a@example.com', name: `x${a}${bad}y${b}` },
          }),
        ).toThrow(/recipient\.name/);
      }),
      { numRuns: 100 },
    );
    fc.assert(
      fc.property(fc.string(), fc.constantFrom('<', '>'), fc.string(), (a, bad, b) => {
        expect(() =>
          parseAvatarConsentInput({
            groupId: 'ag_1',
            recipient: { email: 'a@example.com' },
            consentText: `${a}${bad}${b}`,
          }),
        ).toThrow(/consentText/);
      }),
      { numRuns: 100 },
    );
  });
});

describe('input from other languages', () => {
  const full = completeInputExample;
  const optionalPaths = [
    ['recipient', 'name'],
    ['rerouteUrl'],
    ['consentText'],
    ['notify'],
    ['notify', 'runId'],
    ['notify', 'signalName'],
    ['policy'],
    ...Object.keys(full.policy).map((key) => ['policy', key]),
  ];

  /** A deep copy of `full` with the fields at `paths` set to `value` (or deleted). */
  function withFields(paths: string[][], value: null | 'delete'): unknown {
    const copy = structuredClone(full) as Record<string, unknown>;
    for (const path of paths) {
      let holder: Record<string, unknown> | undefined = copy;
      for (const key of path.slice(0, -1)) holder = holder?.[key] as Record<string, unknown> | undefined;
      if (!holder || typeof holder !== 'object') continue;
      if (value === 'delete') delete holder[path.at(-1)!];
      else holder[path.at(-1)!] = null;
    }
    return copy;
  }

  it('any set of optional fields sent as null parses exactly as if they were absent', () => {
    fc.assert(
      fc.property(fc.subarray(optionalPaths, { minLength: 1 }), (paths) => {
        expect(parseAvatarConsentInput(withFields(paths, null))).toEqual(
          parseAvatarConsentInput(withFields(paths, 'delete')),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('any field the contract does not know is refused, named at its own path', () => {
    const known = new Set([
      ...Object.keys(full),
      ...Object.keys(full.recipient),
      ...Object.keys(full.notify),
      ...Object.keys(full.policy),
      '__proto__',
    ]);
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 20 }).filter((key) => !known.has(key) && !key.includes('.')),
        fc.constantFrom(undefined, 'recipient', 'notify', 'policy'),
        fc.jsonValue(),
        (key, where, value) => {
          const raw = structuredClone(full) as Record<string, unknown>;
          const holder = where ? (raw[where] as Record<string, unknown>) : raw;
          holder[key] = value;
          const error = (() => {
            try {
              parseAvatarConsentInput(raw);
            } catch (err) {
              return err;
            }
          })();
          expect(error).toBeInstanceOf(InvalidInputError);
          const path = where ? `${where}.${key}` : key;
          expect((error as InvalidInputError).fields).toContainEqual({
            path,
            message: expect.stringMatching(/^is not a field here \(allowed: /) as unknown,
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  const isoPart = fc.option(fc.integer({ min: 0, max: 500 }), { nil: undefined });

  it('an ISO-8601 duration of weeks, days, hours, minutes and seconds is their sum in milliseconds', () => {
    fc.assert(
      fc.property(
        isoPart,
        isoPart,
        isoPart,
        isoPart,
        fc.option(fc.integer({ min: 0, max: 59_999 }), { nil: undefined }),
        (w, d, h, m, ms) => {
          fc.pre([w, d, h, m, ms].some((part) => part !== undefined));
          const seconds =
            ms === undefined ? '' : `${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}S`;
          const time = [h === undefined ? '' : `${h}H`, m === undefined ? '' : `${m}M`, seconds].join('');
          const text = `P${w === undefined ? '' : `${w}W`}${d === undefined ? '' : `${d}D`}${time ? `T${time}` : ''}`;
          const expected =
            (w ?? 0) * 604_800_000 +
            (d ?? 0) * 86_400_000 +
            (h ?? 0) * 3_600_000 +
            (m ?? 0) * 60_000 +
            (ms ?? 0);
          expect(parseDuration(text)).toBe(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('the short form round-trips through formatDuration, and the published pattern is the parser', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 ** 10 }), (ms) => {
        expect(parseDuration(formatDuration(ms))).toBe(ms);
      }),
    );
    const pattern = new RegExp(DURATION_PATTERN);
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 12 }), fc.stringMatching(/^P[0-9WDTHMSY.,]{0,10}$/)),
        (text) => {
          expect(parseDuration(text) !== undefined).toBe(pattern.test(text.trim()));
          const ms = parseDuration(text);
          if (ms !== undefined) expect(Number.isSafeInteger(ms) && ms >= 0).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a notify.workflowId with any character outside A-Z a-z 0-9 . _ : / @ = + - is refused', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 20 }),
        fc.string({ minLength: 1, maxLength: 1 }).filter((c) => !/^[A-Za-z0-9._:/@=+-]$/.test(c)),
        fc.string({ maxLength: 20 }),
        (before, bad, after) => {
          expect(() =>
            parseAvatarConsentInput({ ...full, notify: { workflowId: `${before}${bad}${after}` } }),
          ).toThrow(/notify\.workflowId: must be 1-255 characters/);
        },
      ),
      { numRuns: 300 },
    );
  });

  const host = fc.domain();
  const path = fc.webPath();

  it('a rerouteUrl with credentials, whitespace or controls is refused; an accepted one is its URL.href', () => {
    fc.assert(
      fc.property(
        host,
        path,
        fc.webSegment(),
        fc.option(fc.webSegment(), { nil: undefined }),
        (domain, rest, user, password) => {
          const userinfo = password === undefined ? user : `${user}:${password}`;
          expect(() =>
            parseAvatarConsentInput({ ...full, rerouteUrl: `https://${userinfo}@${domain}${rest}` }),
          ).toThrow(/rerouteUrl: must not contain a user name or password/);
        },
      ),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(
        host,
        path,
        fc.constantFrom(' ', '\t', '\n', '\r', '\u0000', '\u007f', '\u0085', '\u2028'),
        fc.nat(),
        (domain, rest, bad, at) => {
          const url = `https://${domain}${rest}`;
          const i = at % (url.length + 1);
          expect(() =>
            parseAvatarConsentInput({ ...full, rerouteUrl: `${url.slice(0, i)}${bad}${url.slice(i)}` }),
          ).toThrow(/rerouteUrl: must not contain spaces or control characters/);
        },
      ),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(
        fc.webUrl({ validSchemes: ['https'], withQueryParameters: true, withFragments: true }),
        (url) => {
          let parsed;
          try {
            parsed = parseAvatarConsentInput({ ...full, rerouteUrl: url }).rerouteUrl!;
          } catch (err) {
            // fast-check's URLs may carry user info: that is the only reason to refuse one.
            expect(String(err)).toMatch(/rerouteUrl: must not contain a user name or password/);
            return;
          }
          expect(parsed).toBe(new URL(url).href);
          expect(new URL(parsed).username).toBe('');
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('HeyGen answers that are not what the spec says', () => {
  const body = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.json().map((json) => json),
    fc.constantFrom(
      '<html><body><h1>502 Bad Gateway</h1></body></html>',
      '{"data": {"id": "ag_1", "name": "Ada", "created_at": 17',
      '{}',
      '{"data": null}',
      '{"data": {"id": 5}}',
      JSON.stringify({ data: { ...validGroup, status: 'exploded' } }),
      JSON.stringify({ error: 'not an object' }),
    ),
  );

  it('a 2xx body that does not match the spec is a retryable invalid_response, never a crash', async () => {
    await fc.assert(
      fc.asyncProperty(body, fc.constantFrom(200, 201), async (text, status) => {
        server.enqueue({ status, headers: { 'content-type': 'application/json' }, body: text });
        try {
          const group = await client.getAvatarGroup('ag_1');
          // Only a body that really is a valid group may pass.
          expect(group.id).toBeTypeOf('string');
          expect(group.name).toBeTypeOf('string');
        } catch (err) {
          expect(err).toBeInstanceOf(HeyGenError);
          expect((err as HeyGenError).kind).toBe('retryable');
          expect((err as HeyGenError).code).toBe('invalid_response');
          expect(String((err as Error).message)).not.toContain(API_KEY);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('any error status with any body is classified, with the key nowhere in it', async () => {
    await fc.assert(
      fc.asyncProperty(body, fc.integer({ min: 400, max: 599 }), async (text, status) => {
        server.enqueue({ status, body: text });
        // A fresh client each run: a 429 closes a client's rate gate for its Retry-After.
        const fresh = new HeyGenClient({ baseUrl: server.url, apiKey: API_KEY, timeoutMs: 2_000 });
        const err = await fresh.getAvatarGroup('ag_1').then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(HeyGenError);
        const kind = (err as HeyGenError).kind;
        expect([
          'retryable',
          'rate_limited',
          'in_progress',
          'needs_operator',
          'invalid',
          'not_found',
        ]).toContain(kind);
        if (status >= 500) expect(kind).toBe('retryable');
        expect(JSON.stringify(err)).not.toContain(API_KEY);
      }),
      { numRuns: 60 },
    );
  });
});

describe('the environment', () => {
  it('any environment gives a config or one ConfigError naming variables, never a crash', () => {
    const value = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom('', ' ', 'smtp://', 'http://x', '-1', '1e9', 'true'),
    );
    fc.assert(
      fc.property(
        fc.record(
          {
            HEYGEN_API_KEY: value,
            HEYGEN_BASE_URL: value,
            HEYGEN_TIMEOUT_MS: value,
            HEYGEN_MAX_RPS: value,
            SMTP_URL: value,
            EMAIL_FROM: value,
            LOG_LEVEL: value,
            METRICS_PORT: value,
            AVATAR_CONSENT_REQUIRE_ENCRYPTION: value,
          },
          { requiredKeys: [] },
        ),
        (env) => {
          try {
            loadWorkerConfig({ ...env, TEMPORAL_CONFIG_FILE: '/nonexistent/avatar-consent.toml' });
          } catch (err) {
            expect(err).toBeInstanceOf(ConfigError);
            expect((err as Error).message).toMatch(/[A-Z_]{4,}/);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
