/**
 * Whatever arrives (from a caller, from HeyGen, from the environment), the answer is a clear,
 * typed error naming what was wrong, never a crash or a silent default.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadWorkerConfig } from '../../src/config/worker-config.js';
import { InvalidInputError, parseAvatarConsentInput } from '../../src/contract/index.js';
import { HeyGenClient, HeyGenError } from '../../src/heygen/index.js';
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
