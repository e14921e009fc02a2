// Return tokens of the consent-return gateway: format, tampering, expiry, rotation, secret parsing.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseGatewayEnv } from '../../src/gateway/main.js';
import {
  buildReturnUrl,
  GatewayConfigError,
  GatewaySecrets,
  loadReturnLinkConfig,
  MAX_RETURN_URL_LENGTH,
  parseGatewaySecretsEnv,
  ReturnLinkError,
  ReturnTokenError,
  signReturnToken,
  verifyReturnToken,
} from '../../src/gateway/tokens.js';
import type { ReturnTokenErrorCode, ReturnTokenPayload } from '../../src/gateway/tokens.js';

const NOW = Date.UTC(2030, 0, 1, 12, 0, 0);
const EXP = NOW / 1000 + 3600;
// Fixed, but not a repeated byte: the environment refuses such secrets.
const keyA = createHash('sha256').update('key A').digest();
const keyB = createHash('sha512').update('key B').digest().subarray(0, 40);
const secretsA = new GatewaySecrets([keyA]);
const secretsB = new GatewaySecrets([keyB]);
const payload: ReturnTokenPayload = {
  v: 1,
  wid: 'avatar-consent-grp_123',
  rid: '3f0c7d2e-4b8e-4a0f-9a55-0d6f2c1e9b10',
  exp: EXP,
  to: 'https://app.example.com/avatars/grp_123/done?from=consent',
};
const base64UrlAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const errorCodes: ReturnTokenErrorCode[] = ['malformed', 'bad_signature', 'expired', 'unsupported_version'];

/** The v1 format written out independently of the implementation, so the two must agree. */
function handMadeToken(json: string, key: Buffer): string {
  const payloadPart = Buffer.from(json, 'utf8').toString('base64url');
  const mac = createHmac('sha256', key)
    .update(`avatar-consent/consent-return/v1\n${payloadPart}`)
    .digest('base64url');
  return `${payloadPart}.${mac}`;
}

function codeOf(fn: () => unknown): ReturnTokenErrorCode {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ReturnTokenError);
    return (err as ReturnTokenError).code;
  }
  throw new Error('expected a ReturnTokenError');
}

describe('signReturnToken / verifyReturnToken', () => {
  it('round-trips a full payload and a minimal one', () => {
    expect(verifyReturnToken(signReturnToken(payload, secretsA, NOW), secretsA, NOW)).toEqual(payload);
    const minimal: ReturnTokenPayload = { v: 1, wid: 'w', exp: EXP };
    expect(verifyReturnToken(signReturnToken(minimal, secretsA, NOW), secretsA, NOW)).toEqual(minimal);
  });

  it('is deterministic and matches the documented format', () => {
    const token = signReturnToken(payload, secretsA, NOW);
    expect(signReturnToken({ ...payload }, secretsA, NOW)).toBe(token);
    expect(token).toBe(handMadeToken(JSON.stringify(payload), keyA));
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
  });

  it('rejects every single-character change anywhere in the token', () => {
    const token = signReturnToken(payload, secretsA, NOW);
    const seen = new Set<ReturnTokenErrorCode>();
    for (let i = 0; i < token.length; i += 1) {
      if (token[i] === '.') continue;
      // Two replacements per position: one near the original (low bits), one far (high bits).
      for (const shift of [1, 32]) {
        const index = (base64UrlAlphabet.indexOf(token[i]!) + shift) % 64;
        const tampered = token.slice(0, i) + base64UrlAlphabet[index]! + token.slice(i + 1);
        const code = codeOf(() => verifyReturnToken(tampered, secretsA, NOW));
        expect(['bad_signature', 'malformed']).toContain(code);
        seen.add(code);
      }
    }
    // Both kinds occur: changed content fails the MAC, changed padding bits fail canonical decoding.
    expect(seen).toEqual(new Set(['bad_signature', 'malformed']));
  });

  it('rejects a swapped payload, a swapped MAC and a re-encoded destination', () => {
    const token = signReturnToken(payload, secretsA, NOW);
    const other = signReturnToken({ ...payload, wid: 'avatar-consent-other' }, secretsA, NOW);
    const [payloadPart, macPart] = token.split('.') as [string, string];
    const [otherPayload, otherMac] = other.split('.') as [string, string];
    expect(codeOf(() => verifyReturnToken(`${otherPayload}.${macPart}`, secretsA, NOW))).toBe(
      'bad_signature',
    );
    expect(codeOf(() => verifyReturnToken(`${payloadPart}.${otherMac}`, secretsA, NOW))).toBe(
      'bad_signature',
    );
    const evil = Buffer.from(JSON.stringify({ ...payload, to: 'https://evil.example/' })).toString(
      'base64url',
    );
    expect(codeOf(() => verifyReturnToken(`${evil}.${macPart}`, secretsA, NOW))).toBe('bad_signature');
  });

  it('rejects shapes that are not tokens as malformed', () => {
    const token = signReturnToken(payload, secretsA, NOW);
    const [payloadPart, macPart] = token.split('.') as [string, string];
    for (const bad of [
      '',
      '.',
      payloadPart,
      `${payloadPart}.`,
      `.${macPart}`,
      `${token}.x`,
      `${payloadPart}=.${macPart}`,
      `${payloadPart}.${macPart.slice(0, -2)}`,
      ` ${token}`,
      'x'.repeat(5000),
    ]) {
      expect(
        codeOf(() => verifyReturnToken(bad, secretsA, NOW)),
        JSON.stringify(bad.slice(0, 40)),
      ).toBe('malformed');
    }
    expect(codeOf(() => verifyReturnToken(undefined, secretsA, NOW))).toBe('malformed');
  });

  it('gives authentic but invalid payloads their own codes', () => {
    const unsupported = handMadeToken(JSON.stringify({ ...payload, v: 2 }), keyA);
    expect(codeOf(() => verifyReturnToken(unsupported, secretsA, NOW))).toBe('unsupported_version');
    expect(codeOf(() => verifyReturnToken(handMadeToken('{"wid":"w"}', keyA), secretsA, NOW))).toBe(
      'unsupported_version',
    );
    expect(codeOf(() => verifyReturnToken(handMadeToken('not json', keyA), secretsA, NOW))).toBe('malformed');
    const extraField = handMadeToken(JSON.stringify({ ...payload, admin: true }), keyA);
    expect(codeOf(() => verifyReturnToken(extraField, secretsA, NOW))).toBe('malformed');
    const javascriptUrl = handMadeToken(JSON.stringify({ ...payload, to: 'javascript:alert(1)' }), keyA);
    expect(codeOf(() => verifyReturnToken(javascriptUrl, secretsA, NOW))).toBe('malformed');
    // And a correctly hand-made v1 token verifies: the documented format is the real one.
    expect(verifyReturnToken(handMadeToken(JSON.stringify(payload), keyA), secretsA, NOW)).toEqual(payload);
  });

  it('is valid until the last millisecond before exp and expired from exp on', () => {
    const token = signReturnToken(payload, secretsA, NOW);
    expect(verifyReturnToken(token, secretsA, EXP * 1000 - 1).wid).toBe(payload.wid);
    let error: unknown;
    try {
      verifyReturnToken(token, secretsA, EXP * 1000);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ReturnTokenError);
    expect((error as ReturnTokenError).code).toBe('expired');
    expect((error as ReturnTokenError).workflowId).toBe(payload.wid);
  });

  it('checks the MAC before the expiry: a forged expired token is a bad signature', () => {
    const forged = signReturnToken(payload, secretsB, NOW);
    expect(codeOf(() => verifyReturnToken(forged, secretsA, EXP * 1000 + 1))).toBe('bad_signature');
  });

  it('refuses to sign invalid payloads', () => {
    const bad: ReturnTokenPayload[] = [
      { ...payload, exp: NOW / 1000 },
      { ...payload, wid: '' },
      { ...payload, to: 'http://evil.example/' },
      { ...payload, to: 'javascript:alert(1)' },
      { ...payload, v: 2 as 1 },
    ];
    for (const p of bad) {
      expect(() => signReturnToken(p, secretsA, NOW)).toThrow(ReturnLinkError);
    }
    // http is allowed for local development, as for the workflow's rerouteUrl.
    expect(() =>
      signReturnToken({ ...payload, to: 'http://localhost:3000/done' }, secretsA, NOW),
    ).not.toThrow();
  });

  it('never puts the token in an error message', () => {
    const token = signReturnToken(payload, secretsA, NOW);
    for (const [candidate, now] of [
      [token, EXP * 1000],
      [token.replace(/.$/, (last) => (last === 'A' ? 'B' : 'A')), NOW],
      [`${token}.x`, NOW],
    ] as const) {
      try {
        verifyReturnToken(candidate, secretsA, now);
        throw new Error('expected a ReturnTokenError');
      } catch (err) {
        expect(err).toBeInstanceOf(ReturnTokenError);
        expect(inspect(err)).not.toContain(token.split('.')[0]!.slice(0, 20));
        expect(inspect(err)).not.toContain(token.split('.')[1]!.slice(0, 20));
      }
    }
  });
});

describe('secret rotation', () => {
  it('signs with the first secret and verifies with any', () => {
    const rotated = new GatewaySecrets([keyB, keyA]);
    const oldToken = signReturnToken(payload, secretsA, NOW);
    expect(verifyReturnToken(oldToken, rotated, NOW)).toEqual(payload);

    const newToken = signReturnToken(payload, rotated, NOW);
    expect(newToken).toBe(signReturnToken(payload, secretsB, NOW));
    expect(verifyReturnToken(newToken, secretsB, NOW)).toEqual(payload);
    expect(codeOf(() => verifyReturnToken(newToken, secretsA, NOW))).toBe('bad_signature');
    // Once the old secret is dropped, its tokens stop working.
    expect(codeOf(() => verifyReturnToken(oldToken, secretsB, NOW))).toBe('bad_signature');
  });
});

function catchConfigError(env: Record<string, string>): GatewayConfigError {
  try {
    parseGatewaySecretsEnv(env);
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayConfigError);
    return err as GatewayConfigError;
  }
  throw new Error('expected a GatewayConfigError');
}

describe('secret parsing', () => {
  const raw = randomBytes(32);
  const plain = 'correct horse battery staple and then some';

  it('decodes hex:, base64: (and base64url) and plain secrets to the same keys', () => {
    const reference = signReturnToken(payload, new GatewaySecrets([raw]), NOW);
    for (const text of [
      `hex:${raw.toString('hex')}`,
      `base64:${raw.toString('base64')}`,
      `base64:${raw.toString('base64url')}`,
      `  hex:${raw.toString('hex').toUpperCase()}\n`,
    ]) {
      expect(signReturnToken(payload, parseGatewaySecretsEnv({ GATEWAY_SECRET: text }), NOW)).toBe(reference);
    }
    expect(signReturnToken(payload, parseGatewaySecretsEnv({ GATEWAY_SECRET: plain }), NOW)).toBe(
      signReturnToken(payload, new GatewaySecrets([Buffer.from(plain)]), NOW),
    );
  });

  it('reads GATEWAY_SECRETS as a comma list whose first entry signs', () => {
    const secrets = parseGatewaySecretsEnv({ GATEWAY_SECRETS: `hex:${keyB.toString('hex')}, ${plain}` });
    expect(secrets.count).toBe(2);
    expect(signReturnToken(payload, secrets, NOW)).toBe(signReturnToken(payload, secretsB, NOW));
    const plainToken = signReturnToken(payload, new GatewaySecrets([Buffer.from(plain)]), NOW);
    expect(verifyReturnToken(plainToken, secrets, NOW)).toEqual(payload);
  });

  it('reports every problem at once, naming variables but never values', () => {
    const shortSecret = 'tooshort-secret-value';
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{}, /GATEWAY_SECRET: is required/],
      [{ GATEWAY_SECRET: '   ' }, /GATEWAY_SECRET: is required/],
      [{ GATEWAY_SECRET: shortSecret }, /GATEWAY_SECRET: must be at least 32 bytes/],
      [{ GATEWAY_SECRET: 'hex:abc' }, /GATEWAY_SECRET: after "hex:"/],
      [{ GATEWAY_SECRET: 'base64:!!!' }, /GATEWAY_SECRET: after "base64:"/],
      [{ GATEWAY_SECRET: plain, GATEWAY_SECRETS: plain }, /not both/],
      [
        { GATEWAY_SECRETS: `${shortSecret},,${plain}` },
        /GATEWAY_SECRETS\.0: must be at least 32 bytes.*GATEWAY_SECRETS\.1: must not contain an empty entry/,
      ],
    ];
    for (const [env, message] of cases) {
      let error: unknown;
      try {
        parseGatewaySecretsEnv(env);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(GatewayConfigError);
      expect((error as Error).message).toMatch(message);
      expect(inspect(error)).not.toContain(shortSecret);
      expect(inspect(error)).not.toContain(plain);
    }
  });

  it('refuses a secret that is one character or a short pattern repeated, naming only the variable', () => {
    const weak = [
      'a'.repeat(40),
      `hex:${'00'.repeat(32)}`,
      `hex:${'5a'.repeat(32)}`,
      `base64:${Buffer.alloc(32, 7).toString('base64')}`,
      'ab'.repeat(20),
      'abcd'.repeat(10),
    ];
    for (const text of weak) {
      const error = catchConfigError({ GATEWAY_SECRET: text });
      expect(error.message).toMatch(
        /GATEWAY_SECRET: must not be one character \(or a short pattern\) repeated/,
      );
      expect(inspect(error)).not.toContain(text);
      const inList = catchConfigError({ GATEWAY_SECRETS: `${plain},${text}` });
      expect(inList.message).toMatch(/GATEWAY_SECRETS\.1: must not be one character/);
    }
    // Not a pattern: accepted.
    expect(parseGatewaySecretsEnv({ GATEWAY_SECRET: `${'a'.repeat(39)}b` }).count).toBe(1);
  });

  it('refuses the same secret listed twice in GATEWAY_SECRETS, however it is spelled', () => {
    const hex = `hex:${raw.toString('hex')}`;
    const b64 = `base64:${raw.toString('base64')}`;
    const error = catchConfigError({ GATEWAY_SECRETS: `${hex},${plain},${b64}` });
    expect(error.message).toContain('GATEWAY_SECRETS: entries 1 and 3 are the same secret');
    expect(inspect(error)).not.toContain(raw.toString('hex'));
    expect(inspect(error)).not.toContain(plain);
    expect(catchConfigError({ GATEWAY_SECRETS: `${plain}, ${plain}` }).message).toContain(
      'entries 1 and 2 are the same secret',
    );
  });

  it('never prints key material', () => {
    const secrets = parseGatewaySecretsEnv({ GATEWAY_SECRET: `hex:${raw.toString('hex')}` });
    for (const printed of [
      inspect(secrets),
      JSON.stringify({ secrets }),
      String(secrets),
      inspect({ secrets }),
    ]) {
      expect(printed).toContain('GatewaySecrets: 1 key(s)');
      expect(printed).not.toContain(raw.toString('hex').slice(0, 16));
      expect(printed).not.toContain(raw.toString('base64').slice(0, 16));
    }
  });

  it('refuses short raw keys and empty key lists', () => {
    expect(() => new GatewaySecrets([Buffer.alloc(31)])).toThrow(GatewayConfigError);
    expect(() => new GatewaySecrets([])).toThrow(GatewayConfigError);
  });
});

describe('buildReturnUrl', () => {
  const base = {
    publicBaseUrl: 'https://consent.example.com',
    workflowId: payload.wid,
    runId: payload.rid,
    finalRedirect: payload.to,
    ttlMs: 3_600_000,
    secrets: secretsA,
    nowMs: NOW,
  };

  it('builds <base>/consent-return?t=<token> with the expiry ttl from now', () => {
    const url = new URL(buildReturnUrl(base));
    expect(`${url.origin}${url.pathname}`).toBe('https://consent.example.com/consent-return');
    expect([...url.searchParams.keys()]).toEqual(['t']);
    expect(verifyReturnToken(url.searchParams.get('t'), secretsA, NOW)).toEqual(payload);
  });

  it('keeps a path prefix and drops trailing slashes', () => {
    const url = buildReturnUrl({ ...base, publicBaseUrl: 'https://example.com/gateway//' });
    expect(url.startsWith('https://example.com/gateway/consent-return?t=')).toBe(true);
  });

  it('stays well under 2048 characters for the longest realistic inputs', () => {
    const url = buildReturnUrl({
      ...base,
      publicBaseUrl: 'https://consent-gateway.some-long-company-name.example.com/avatar',
      workflowId: `avatar-consent-${'g'.repeat(128)}`,
      finalRedirect: `https://app.example.com/${'p'.repeat(500)}`,
    });
    expect(url.length).toBeLessThan(1500);
  });

  it('refuses a URL that would be too long instead of truncating it', () => {
    let error: unknown;
    try {
      buildReturnUrl({ ...base, finalRedirect: `https://app.example.com/${'p'.repeat(1500)}` });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ReturnLinkError);
    expect((error as ReturnLinkError).code).toBe('too_long');
    expect((error as Error).message).toContain(String(MAX_RETURN_URL_LENGTH));
  });

  it('refuses bad base URLs, non-https destinations and tiny TTLs', () => {
    for (const publicBaseUrl of [
      'http://consent.example.com',
      'https://consent.example.com/?x=1',
      'https://user:pw@consent.example.com',
      'not a url',
    ]) {
      expect(() => buildReturnUrl({ ...base, publicBaseUrl }), publicBaseUrl).toThrow(ReturnLinkError);
    }
    expect(buildReturnUrl({ ...base, publicBaseUrl: 'http://localhost:8090' })).toMatch(
      /^http:\/\/localhost:8090\/consent-return\?t=/,
    );
    expect(() => buildReturnUrl({ ...base, finalRedirect: 'http://evil.example/' })).toThrow(ReturnLinkError);
    expect(() => buildReturnUrl({ ...base, ttlMs: 999 })).toThrow(ReturnLinkError);
  });
});

describe('environment', () => {
  const secret = `hex:${keyA.toString('hex')}`;

  it('loadReturnLinkConfig is off without PUBLIC_BASE_URL and needs a secret with it', () => {
    expect(loadReturnLinkConfig({})).toBeUndefined();
    expect(loadReturnLinkConfig({ PUBLIC_BASE_URL: '', GATEWAY_SECRET: secret })).toBeUndefined();
    const config = loadReturnLinkConfig({
      PUBLIC_BASE_URL: 'https://gw.example.com/',
      GATEWAY_SECRET: secret,
    });
    expect(config?.publicBaseUrl).toBe('https://gw.example.com');
    expect(config?.ttlMs).toBe(8 * 86_400_000);
    expect(
      loadReturnLinkConfig({
        PUBLIC_BASE_URL: 'https://gw.example.com',
        GATEWAY_SECRET: secret,
        GATEWAY_TOKEN_TTL: '2d',
      })?.ttlMs,
    ).toBe(2 * 86_400_000);
    expect(() =>
      loadReturnLinkConfig({ PUBLIC_BASE_URL: 'http://gw.example.com', GATEWAY_TOKEN_TTL: '1y' }),
    ).toThrow(/PUBLIC_BASE_URL: .*GATEWAY_TOKEN_TTL: .*GATEWAY_SECRET: is required/);
  });

  it('parseGatewayEnv applies defaults and lists every problem at once', () => {
    const config = parseGatewayEnv({ GATEWAY_SECRET: secret });
    expect(config).toMatchObject({
      port: 8090,
      host: '127.0.0.1',
    });
    expect(config.secrets.count).toBe(1);
    expect(() =>
      parseGatewayEnv({ GATEWAY_PORT: '99999', GATEWAY_THANK_YOU_URL: 'http://example.com/thanks' }),
    ).toThrow(/GATEWAY_PORT: .*GATEWAY_THANK_YOU_URL: .*GATEWAY_SECRET: is required/);
  });
});

describe('properties', () => {
  function verifyOutcome(token: string): ReturnTokenErrorCode | 'valid' {
    try {
      verifyReturnToken(token, secretsA, NOW);
      return 'valid';
    } catch (err) {
      if (!(err instanceof ReturnTokenError) || !errorCodes.includes(err.code)) throw err;
      return err.code;
    }
  }

  it('no random string verifies, and verification only ever throws ReturnTokenError', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 3000 }), (text) => {
        expect(verifyOutcome(text)).not.toBe('valid');
      }),
      { numRuns: 2000 },
    );
  });

  it('no random token-shaped string verifies either', () => {
    const segment = fc.string({ unit: fc.constantFrom(...base64UrlAlphabet), minLength: 1, maxLength: 200 });
    const jsonish = fc.jsonValue().map((value) => Buffer.from(JSON.stringify(value)).toString('base64url'));
    fc.assert(
      fc.property(fc.oneof(segment, jsonish), segment, (left, right) => {
        expect(verifyOutcome(`${left}.${right}`)).not.toBe('valid');
      }),
      { numRuns: 2000 },
    );
  });

  it('every valid payload round-trips', () => {
    const payloads = fc.record(
      {
        v: fc.constant(1 as const),
        wid: fc.string({ minLength: 1, maxLength: 200 }),
        rid: fc.uuid(),
        exp: fc.integer({ min: NOW / 1000 + 1, max: NOW / 1000 + 90 * 86_400 }),
        to: fc.webUrl({ validSchemes: ['https'] }).filter((url) => url.length < 500),
      },
      { requiredKeys: ['v', 'wid', 'exp'] },
    );
    fc.assert(
      fc.property(payloads, (p) => {
        expect(verifyReturnToken(signReturnToken(p, secretsA, NOW), secretsA, NOW)).toEqual(p);
      }),
      { numRuns: 300 },
    );
  });
});
