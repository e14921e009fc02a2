// The remote codec server: auth, CORS, limits, wire format, and configuration from the environment.
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  CodecConfigError,
  createCodecKeyring,
  createEncryptionCodec,
  loadCodecServerConfig,
  payloadFromJson,
  payloadToJson,
  startCodecServer,
} from '../../src/codec/index.js';
import type { JsonPayload, RunningCodecServer } from '../../src/codec/index.js';

const TOKEN = `test-token-${randomBytes(12).toString('hex')}`;
const UI_ORIGIN = 'http://localhost:8233';
const MAX_BODY = 64 * 1024;
const key1 = randomBytes(32);
const key2 = randomBytes(32);
const email = 'grace.hopper@example.com';

let server: RunningCodecServer;
const logLines: string[] = [];

beforeAll(async () => {
  server = await startCodecServer({
    keyring: createCodecKeyring({ k1: key1, k2: key2 }, 'k2'),
    token: TOKEN,
    port: 0,
    host: '127.0.0.1',
    allowedOrigin: UI_ORIGIN,
    maxBodyBytes: MAX_BODY,
    log: (line) => logLines.push(line),
  });
});
afterAll(async () => {
  await server?.close();
});

const plainJson = (value: unknown): JsonPayload => payloadToJson(defaultPayloadConverter.toPayload(value));

function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function errorOf(res: Response): Promise<string> {
  const body = (await res.json()) as { error: string };
  return body.error;
}

describe('authentication', () => {
  const body = { payloads: [plainJson('hello')] };

  it('answers 401 without a token, and gives no hint of it', async () => {
    const res = await fetch(`${server.url}/decode`, { method: 'POST', body: JSON.stringify(body) });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    const text = await res.text();
    expect(text).toBe('{"error":"unauthorized"}');
    expect(text).not.toContain(TOKEN.slice(0, 8));
  });

  it.each([
    ['a wrong token of the same length', `Bearer ${TOKEN.slice(0, -1)}x`],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, 12)}`],
    ['the token with extra characters', `Bearer ${TOKEN}x`],
    ['the token without the Bearer scheme', TOKEN],
    ['Basic auth', `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}`],
  ])('answers 401 for %s', async (_case, authorization) => {
    const res = await post('/decode', body, { authorization });
    expect(res.status).toBe(401);
    expect(await errorOf(res)).toBe('unauthorized');
  });

  it('answers 200 with the token', async () => {
    const res = await post('/decode', body);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  });
});

describe('encode and decode', () => {
  it('roundtrips through /encode and /decode, in Temporal proto JSON (base64 metadata and data)', async () => {
    const original = plainJson({ email });
    const encodedRes = await post('/encode', { payloads: [original] });
    expect(encodedRes.status).toBe(200);
    const encoded = (await encodedRes.json()) as { payloads: JsonPayload[] };
    expect(encoded.payloads).toHaveLength(1);
    const [wire] = encoded.payloads;
    expect(Buffer.from(wire!.metadata.encoding!, 'base64').toString()).toBe('binary/encrypted');
    expect(Buffer.from(wire!.metadata['encryption-key-id']!, 'base64').toString()).toBe('k2');
    expect(Buffer.from(wire!.data, 'base64').includes(email)).toBe(false);

    // As the UI calls it: namespace header, query string from newer UIs.
    const decodedRes = await post('/decode?preserveStorageRefs=true', encoded, { 'x-namespace': 'default' });
    expect(decodedRes.status).toBe(200);
    const decoded = (await decodedRes.json()) as { payloads: JsonPayload[] };
    expect(decoded.payloads).toEqual([original]);
    expect(defaultPayloadConverter.fromPayload(payloadFromJson(decoded.payloads[0]!))).toEqual({ email });
  });

  it('decodes what the in-process codec encrypted, with the key it names (rotation)', async () => {
    const oldCodec = createEncryptionCodec(createCodecKeyring({ k1: key1 }));
    const [encrypted] = await oldCodec.encode([defaultPayloadConverter.toPayload('from k1')]);
    const res = await post('/default/decode', { payloads: [payloadToJson(encrypted!)] });
    expect(res.status).toBe(200);
    const { payloads } = (await res.json()) as { payloads: JsonPayload[] };
    expect(defaultPayloadConverter.fromPayload(payloadFromJson(payloads[0]!))).toBe('from k1');
  });

  it('passes unencrypted payloads through, and accepts missing data and URL-safe base64', async () => {
    const plain = plainJson('plain');
    const res = await post('/decode', {
      payloads: [plain, { metadata: { encoding: Buffer.from('binary/null').toString('base64url') } }],
    });
    expect(res.status).toBe(200);
    const { payloads } = (await res.json()) as { payloads: JsonPayload[] };
    expect(payloads[0]).toEqual(plain);
    expect(payloads[1]).toEqual({
      metadata: { encoding: Buffer.from('binary/null').toString('base64') },
      data: '',
    });
  });

  it('answers 422 naming an unknown key ID, without key material', async () => {
    const [foreign] = await createEncryptionCodec(createCodecKeyring({ k9: randomBytes(32) })).encode([
      defaultPayloadConverter.toPayload(email),
    ]);
    const res = await post('/decode', { payloads: [payloadToJson(foreign!)] });
    expect(res.status).toBe(422);
    const message = await errorOf(res);
    expect(message).toContain('"k9"');
    for (const secret of [key1.toString('base64'), key2.toString('base64'), email, TOKEN]) {
      expect(message).not.toContain(secret);
    }
  });
});

describe('CORS', () => {
  it('adds CORS headers for the configured UI origin only', async () => {
    const allowed = await post('/decode', { payloads: [] }, { origin: UI_ORIGIN });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    // Bearer tokens need no credentialed CORS.
    expect(allowed.headers.get('access-control-allow-credentials')).toBeNull();
    expect(allowed.headers.get('vary')).toBe('Origin');

    const other = await post('/decode', { payloads: [] }, { origin: 'https://evil.example' });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect(other.headers.get('access-control-allow-credentials')).toBeNull();

    const sameHostOtherPort = await post('/decode', { payloads: [] }, { origin: 'http://localhost:8234' });
    expect(sameHostOtherPort.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers a preflight from the UI origin, without asking for the token', async () => {
    const res = await fetch(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: {
        origin: UI_ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type,x-namespace',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    expect(res.headers.get('access-control-allow-methods')).toBe('POST, OPTIONS');
    const allowedHeaders = res.headers
      .get('access-control-allow-headers')!
      .split(',')
      .map((h) => h.trim().toLowerCase());
    expect(allowedHeaders).toEqual(expect.arrayContaining(['authorization', 'content-type', 'x-namespace']));
  });

  it('refuses a preflight from any other origin, or without one, with no CORS headers', async () => {
    for (const headers of [{ origin: 'https://evil.example' }, {}] as Array<Record<string, string>>) {
      const res = await fetch(`${server.url}/encode`, {
        method: 'OPTIONS',
        headers: { ...headers, 'access-control-request-method': 'POST' },
      });
      expect(res.status).toBe(403);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('access-control-allow-methods')).toBeNull();
      expect(res.headers.get('access-control-allow-headers')).toBeNull();
    }
  });
});

describe('request validation', () => {
  it('answers 413 for a body over the limit (declared length)', async () => {
    const big = JSON.stringify({ payloads: [{ data: 'A'.repeat(MAX_BODY + 4) }] });
    const res = await post('/decode', big);
    expect(res.status).toBe(413);
    expect(await errorOf(res)).toBe(`request body is larger than ${MAX_BODY} bytes`);
  });

  it('answers 413 for a chunked body that grows over the limit', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(`${server.url}/decode`);
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      // The server may drop the connection after answering; only the status matters here.
      req.on('error', (error) => (error.message.includes('ECONNRESET') ? undefined : reject(error)));
      req.write('{"payloads":[{"data":"');
      const chunk = 'A'.repeat(16 * 1024);
      for (let sent = 0; sent <= MAX_BODY; sent += chunk.length) req.write(chunk);
      req.end('"}]}');
    });
    expect(status).toBe(413);
  });

  it('answers 400 for a body that is not JSON, without echoing it', async () => {
    const res = await post('/decode', `{"payloads": [${email}`);
    expect(res.status).toBe(400);
    const message = await errorOf(res);
    expect(message).toBe('request body is not valid JSON');
  });

  it('answers 400 naming the field for JSON of the wrong shape', async () => {
    const missing = await post('/decode', { payload: [] });
    expect(missing.status).toBe(400);
    expect(await errorOf(missing)).toMatch(/payloads: /);

    const notBase64 = await post('/decode', {
      payloads: [{ metadata: { encoding: 'json/plain!' }, data: '' }],
    });
    expect(notBase64.status).toBe(400);
    expect(await errorOf(notBase64)).toContain('payloads.0.metadata.encoding: must be base64');
  });

  it('answers 404 for other paths and 405 for other methods', async () => {
    expect((await post('/', { payloads: [] })).status).toBe(404);
    expect((await post('/a/b/decode', { payloads: [] })).status).toBe(404);
    const get = await fetch(`${server.url}/decode`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST, OPTIONS');
  });

  it('logs one line per request with no token, key or payload content', () => {
    expect(logLines.length).toBeGreaterThan(10);
    expect(logLines.some((line) => /^POST \/decode 200 1 payload\(s\) \d+ms$/.test(line))).toBe(true);
    expect(logLines.some((line) => /^POST \/decode 401 \d+ms$/.test(line))).toBe(true);
    const all = logLines.join('\n');
    for (const secret of [TOKEN, key1.toString('base64'), key2.toString('base64'), email]) {
      expect(all).not.toContain(secret);
    }
  });
});

describe('startCodecServer options', () => {
  const keyring = createCodecKeyring({ k1: key1 });

  it('refuses a short token and a bad origin', async () => {
    await expect(startCodecServer({ keyring, token: 'short', port: 0 })).rejects.toThrow(
      /at least 16 characters/,
    );
    await expect(
      startCodecServer({ keyring, token: TOKEN, port: 0, allowedOrigin: 'http://localhost:8233/path' }),
    ).rejects.toThrow(CodecConfigError);
  });

  it('limits bodies to 4 MiB by default (judged by Content-Length before reading)', async () => {
    const defaults = await startCodecServer({ keyring, token: TOKEN, port: 0 });
    try {
      const { port } = defaults;
      // A raw request that announces 4 MiB + 1 and sends nothing: only the header can trigger the 413.
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port }, () => {
          socket.write(
            `POST /decode HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n` +
              `Content-Type: application/json\r\nContent-Length: ${4 * 1024 * 1024 + 1}\r\n\r\n`,
          );
        });
        let text = '';
        socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(answer).toContain('request body is larger than 4194304 bytes');
    } finally {
      await defaults.close();
    }
  });

  it('accepts several UI origins', async () => {
    const multi = await startCodecServer({
      keyring,
      token: TOKEN,
      port: 0,
      allowedOrigin: ['http://localhost:8233', 'http://127.0.0.1:8233'],
    });
    try {
      for (const origin of ['http://localhost:8233', 'http://127.0.0.1:8233']) {
        const res = await fetch(`${multi.url}/decode`, {
          method: 'OPTIONS',
          headers: { origin, 'access-control-request-method': 'POST' },
        });
        expect(res.status).toBe(204);
        expect(res.headers.get('access-control-allow-origin')).toBe(origin);
      }
    } finally {
      await multi.close();
    }
  });
});

function configErrorOf(env: NodeJS.ProcessEnv): string {
  try {
    loadCodecServerConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(CodecConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a CodecConfigError');
}

describe('loadCodecServerConfig', () => {
  const keys = `k1:${key1.toString('base64')}`;

  it('has local defaults', () => {
    const config = loadCodecServerConfig({ CODEC_SERVER_TOKEN: TOKEN, AVATAR_CONSENT_CODEC_KEYS: keys });
    expect(config).toMatchObject({
      port: 8888,
      host: '127.0.0.1',
      token: TOKEN,
      allowedOrigins: ['http://localhost:8233'],
    });
    expect(config.keyring.activeKeyId).toBe('k1');
  });

  it('reads every variable', () => {
    const config = loadCodecServerConfig({
      CODEC_SERVER_TOKEN: TOKEN,
      CODEC_SERVER_PORT: '9999',
      CODEC_SERVER_HOST: '0.0.0.0',
      CODEC_SERVER_ALLOWED_ORIGIN: 'https://temporal.example.com, http://localhost:8233/',
      AVATAR_CONSENT_CODEC_KEYS: keys,
    });
    expect(config).toMatchObject({
      port: 9999,
      host: '0.0.0.0',
      allowedOrigins: ['https://temporal.example.com', 'http://localhost:8233'],
    });
  });

  it('lists every problem at once, without the token or keys', () => {
    const shortToken = 'too-short-tok';
    const badKey = randomBytes(24).toString('base64');
    let message = '';
    try {
      loadCodecServerConfig({
        CODEC_SERVER_TOKEN: shortToken,
        CODEC_SERVER_PORT: '70000',
        CODEC_SERVER_ALLOWED_ORIGIN: 'localhost:8233',
        AVATAR_CONSENT_CODEC_KEYS: `k1:${badKey}`,
      });
    } catch (error) {
      expect(error).toBeInstanceOf(CodecConfigError);
      message = (error as Error).message;
    }
    expect(message).toContain('CODEC_SERVER_TOKEN: must be at least 16 characters');
    expect(message).toContain('CODEC_SERVER_PORT: must be 0-65535');
    expect(message).toContain('CODEC_SERVER_ALLOWED_ORIGIN');
    expect(message).toContain('AVATAR_CONSENT_CODEC_KEYS: entry 1 (key "k1")');
    expect(message).not.toContain(shortToken);
    expect(message).not.toContain(badKey);
  });

  it('refuses a token that is one character or a short pattern repeated, or a codec key', () => {
    const weak = ['x'.repeat(32), 'ab'.repeat(12), '1234'.repeat(5)];
    for (const token of weak) {
      const message = configErrorOf({ CODEC_SERVER_TOKEN: token, AVATAR_CONSENT_CODEC_KEYS: keys });
      expect(message).toContain(
        'CODEC_SERVER_TOKEN: must not be one character (or a short pattern) repeated',
      );
      expect(message).not.toContain(token);
    }
    for (const token of [key1.toString('base64'), key1.toString('hex')]) {
      const message = configErrorOf({ CODEC_SERVER_TOKEN: token, AVATAR_CONSENT_CODEC_KEYS: keys });
      expect(message).toContain('CODEC_SERVER_TOKEN: must not be one of the codec keys');
      expect(message).not.toContain(token);
    }
  });

  it('startCodecServer refuses a repeated-pattern token too', async () => {
    await expect(
      startCodecServer({ keyring: createCodecKeyring({ k1: key1 }), token: 'z'.repeat(20), port: 0 }),
    ).rejects.toThrow(/token must not be one character/);
  });

  it('requires a token and keys', () => {
    expect(() => loadCodecServerConfig({})).toThrow(/CODEC_SERVER_TOKEN: is required.*no codec keys/);
  });
});
