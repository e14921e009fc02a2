// Faults, rate limiting, the ledger and shutdown of the sandbox, over real HTTP.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { startSandbox } from '../../tools/heygen-sandbox/server.js';
import type { Sandbox } from '../../tools/heygen-sandbox/types.js';
import { eventually } from '../../tools/kit/eventually.js';

const KEY = 'fault-key';
const BASE_MS = 1_800_000_000_000;

let sandbox: Sandbox;
let groupPath: string;

beforeAll(async () => {
  sandbox = await startSandbox({ apiKeys: [KEY], now: () => BASE_MS });
  groupPath = `/v3/avatars/${sandbox.createGroup().id}`;
});

beforeEach(() => {
  sandbox.clearFaults();
  sandbox.clearLedger();
});

afterAll(async () => {
  await sandbox.close();
});

function get(path: string, init: RequestInit = {}, target: Sandbox = sandbox): Promise<Response> {
  return fetch(`${target.url}${path}`, { ...init, headers: { 'x-api-key': KEY, ...init.headers } });
}

describe('faults', () => {
  it('503 twice, then the real answer; the ledger marks the faulted requests', async () => {
    sandbox.injectFault({ kind: 'status', status: 503, count: 2, pathPrefix: '/v3/avatars/' });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await get(groupPath)).status);
    expect(statuses).toEqual([503, 503, 200]);
    const first = await (await get(groupPath)).json();
    expect(first).toHaveProperty('data');
    expect(sandbox.ledger().map((e) => [e.status, e.fault])).toEqual([
      [503, 'status'],
      [503, 'status'],
      [200, null],
      [200, null],
    ]);
    expect(sandbox.faults()).toEqual([]);
  });

  it('answers status faults in the error envelope with a code per status', async () => {
    const codes: Record<number, string> = {
      500: 'internal_error',
      502: 'bad_gateway',
      503: 'service_unavailable',
      504: 'gateway_timeout',
    };
    for (const status of [500, 502, 503, 504] as const) {
      sandbox.injectFault({ kind: 'status', status, count: 1 });
      const res = await get(groupPath);
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({
        error: { code: codes[status], message: expect.any(String) as string, param: null, doc_url: null },
      });
    }
  });

  it('applies faults in injection order, only to matching method and path', async () => {
    sandbox.injectFault({ kind: 'status', status: 500, count: 1, method: 'post' });
    sandbox.injectFault({ kind: 'status', status: 502, count: 1, pathPrefix: '/v3/avatars?' }); // never matches a path
    sandbox.injectFault({ kind: 'status', status: 503, count: 1, pathPrefix: '/v3/avatars' });
    sandbox.injectFault({ kind: 'status', status: 504, count: 1 });
    expect((await get(groupPath)).status).toBe(503);
    expect((await get(groupPath)).status).toBe(504);
    expect((await get(groupPath)).status).toBe(200);
    const post = await get(`${groupPath}/consent`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(500);
    expect(sandbox.faults()).toEqual([{ kind: 'status', status: 502, count: 1, pathPrefix: '/v3/avatars?' }]);
  });

  it('applies to /v3 only: the admin API and the consent page are never faulted', async () => {
    sandbox.injectFault({ kind: 'status', status: 500, count: 1 });
    expect((await fetch(`${sandbox.url}/_sandbox/groups`)).status).toBe(200);
    expect((await fetch(`${sandbox.url}/consent/cst_nope`)).status).toBe(404);
    expect(sandbox.faults()).toHaveLength(1);
    expect((await get(groupPath)).status).toBe(500);
  });

  it('faults even unauthenticated requests (they stand for the infrastructure in front of the API)', async () => {
    sandbox.injectFault({ kind: 'status', status: 502, count: 1 });
    expect((await fetch(`${sandbox.url}${groupPath}`)).status).toBe(502);
    expect((await fetch(`${sandbox.url}${groupPath}`)).status).toBe(401);
  });

  it('hang: the request is never answered, the client times out, and the next one works', async () => {
    sandbox.injectFault({ kind: 'hang', count: 1, pathPrefix: '/v3/' });
    const hung = get(groupPath, { signal: AbortSignal.timeout(200) });
    await expect(hung).rejects.toMatchObject({ name: 'TimeoutError' });
    expect((await get(groupPath)).status).toBe(200);
    expect(sandbox.ledger().map((e) => [e.status, e.fault])).toEqual([
      [0, 'hang'],
      [200, null],
    ]);
  });

  it('rate_limit: 429 rate_limit_exceeded with the given raw Retry-After', async () => {
    for (const retryAfter of ['120', 'Wed, 21 Oct 2026 07:28:00 GMT']) {
      sandbox.injectFault({ kind: 'rate_limit', count: 1, retryAfter });
      const res = await get(groupPath);
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe(retryAfter);
      expect(await res.json()).toMatchObject({ error: { code: 'rate_limit_exceeded', param: null } });
    }
  });

  it('latency: delays by real time, then answers normally', async () => {
    sandbox.injectFault({ kind: 'latency', ms: 150, count: 1 });
    const started = performance.now();
    const res = await get(groupPath);
    expect(res.status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(145);
    expect(sandbox.ledger()[0]).toMatchObject({ status: 200, fault: 'latency' });
  });

  it('body: raw bodies such as truncated JSON or an HTML error page', async () => {
    sandbox.injectFault({ kind: 'body', count: 1, body: '{"data":{"id":"ag_' });
    const truncated = await get(groupPath);
    expect(truncated.status).toBe(200);
    expect(truncated.headers.get('content-type')).toBe('application/json');
    expect(await truncated.text()).toBe('{"data":{"id":"ag_');

    const page = '<html><body><h1>502 Bad Gateway</h1></body></html>';
    sandbox.injectFault({ kind: 'body', count: 1, body: page, status: 502, contentType: 'text/html' });
    const html = await get(groupPath);
    expect(html.status).toBe(502);
    expect(html.headers.get('content-type')).toBe('text/html');
    expect(await html.text()).toBe(page);
    expect(sandbox.ledger().map((e) => [e.status, e.fault])).toEqual([
      [200, 'body'],
      [502, 'body'],
    ]);
  });

  it('rejects invalid fault specs (no silent match-everything typos)', () => {
    const bad: unknown[] = [
      { kind: 'status', status: 418, count: 1 },
      { kind: 'status', status: 500, count: 0 },
      { kind: 'hang', count: 1, pathprefix: '/v3/' },
      { kind: 'latency', count: 1 },
      { kind: 'explode', count: 1 },
    ];
    for (const fault of bad) {
      expect(() => sandbox.injectFault(fault as never), JSON.stringify(fault)).toThrow();
    }
    expect(sandbox.faults()).toEqual([]);
  });
});

describe('rate limiting', () => {
  it('limits per key in a fixed window on the sandbox clock, with an integer Retry-After', async () => {
    const limited = await startSandbox({
      apiKeys: ['key-a', 'key-b'],
      rateLimit: { limit: 2, windowMs: 10_000 },
      now: () => BASE_MS,
    });
    const as = (key: string, headers: Record<string, string> = { 'x-api-key': key }) =>
      fetch(`${limited.url}/v3/avatars`, { headers });
    try {
      expect((await as('key-a')).status).toBe(200);
      // x-api-key and Bearer with the same key share one budget.
      expect((await as('key-a', { authorization: 'Bearer key-a' })).status).toBe(200);
      const limitedAnswer = await as('key-a');
      expect(limitedAnswer.status).toBe(429);
      expect(limitedAnswer.headers.get('retry-after')).toBe('10');
      expect(await limitedAnswer.json()).toMatchObject({ error: { code: 'rate_limit_exceeded' } });

      expect((await as('key-b')).status).toBe(200);
      // Unauthenticated requests are not counted against anyone and are answered 401.
      expect((await as('wrong')).status).toBe(401);

      limited.advanceClock(4_001);
      expect((await as('key-a')).headers.get('retry-after')).toBe('6');
      limited.advanceClock(5_500);
      expect((await as('key-a')).headers.get('retry-after')).toBe('1');
      limited.advanceClock(499);
      expect((await as('key-a')).status).toBe(200);
      expect(limited.ledger().map((e) => e.status)).toEqual([200, 200, 429, 200, 401, 429, 429, 200]);
    } finally {
      await limited.close();
    }
  });

  it('is off by default', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 30 }, async () => (await get('/v3/avatars')).status),
    );
    expect(new Set(statuses)).toEqual(new Set([200]));
  });
});

describe('ledger', () => {
  it('records every /v3 request with method, path, query, key, status, time; not the admin API', async () => {
    sandbox.advanceClock(5_000);
    await get('/v3/avatars?limit=5&token=');
    await get(`${groupPath}/consent`, { method: 'POST', body: '{}', headers: { 'idempotency-key': 'k-1' } });
    await get(`${groupPath}/consent`, { method: 'POST', body: '{}', headers: { 'idempotency-key': 'k-1' } });
    await fetch(`${sandbox.url}/_sandbox/ledger`);
    await fetch(`${sandbox.url}/v3/avatars`, { headers: { 'idempotency-key': 'ignored-on-get' } });
    const entries = sandbox.ledger();
    expect(entries).toEqual([
      {
        seq: expect.any(Number) as number,
        at: sandbox.now(),
        method: 'GET',
        path: '/v3/avatars',
        query: 'limit=5&token=',
        idempotencyKey: null,
        status: 200,
        replayed: false,
        fault: null,
        authScheme: 'x-api-key',
      },
      expect.objectContaining({
        method: 'POST',
        path: `${groupPath}/consent`,
        idempotencyKey: 'k-1',
        replayed: false,
      }),
      expect.objectContaining({ status: 200, idempotencyKey: 'k-1', replayed: true }),
      expect.objectContaining({ status: 401, idempotencyKey: 'ignored-on-get', authScheme: null }),
    ]);
    expect(entries.map((e) => e.seq)).toEqual([0, 1, 2, 3].map((i) => entries[0]!.seq + i));
  });

  it('clearLedger empties it while sequence numbers keep increasing; entries are copies', async () => {
    await get(groupPath);
    const before = sandbox.ledger()[0]!;
    before.status = 999;
    expect(sandbox.ledger()[0]!.status).toBe(200);
    sandbox.clearLedger();
    expect(sandbox.ledger()).toEqual([]);
    await get(groupPath);
    expect(sandbox.ledger()[0]!.seq).toBeGreaterThan(before.seq);
  });
});

describe('close()', () => {
  it('returns promptly with a hanging request, an in-flight request and keep-alive sockets', async () => {
    const doomed = await startSandbox({ apiKeys: [KEY], processingLatencyMs: 60_000 });
    const group = doomed.createGroup();
    expect((await get(`/v3/avatars/${group.id}`, {}, doomed)).status).toBe(200); // leaves a keep-alive socket
    doomed.injectFault({ kind: 'hang', count: 1, method: 'GET' });
    // Settled at once into values, so their rejections (expected) are never unhandled.
    const outcome = (request: Promise<Response>) =>
      request.then(
        (res) => `answered ${res.status}`,
        () => 'connection closed',
      );
    const hanging = outcome(get(`/v3/avatars/${group.id}`, {}, doomed));
    const inFlight = outcome(get(`/v3/avatars/${group.id}/consent`, { method: 'POST', body: '{}' }, doomed));
    await eventually('three requests in the ledger', () => doomed.ledger().length === 3, {
      intervalMs: 5,
      timeoutMs: 2_000,
    });

    const started = performance.now();
    await doomed.close();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(await hanging).toBe('connection closed');
    expect(await inFlight).toBe('connection closed');
    await expect(fetch(`${doomed.url}/v3/avatars`)).rejects.toThrow();
    await doomed.close(); // idempotent
  });
});
