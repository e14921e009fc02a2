// The consent-return gateway under a flood: per-client request limit, trusted proxy header, and a
// bounded number of log lines however many requests arrive. The gateway runs over real HTTP with a
// fake checkNow sender and a fixed clock, so counts are exact and nothing depends on timing.
import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { RecordingLogger } from '../helpers/recording-logger.js';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway } from '../../src/gateway/server.js';
import type { Gateway, GatewayOptions } from '../../src/gateway/server.js';
import { buildReturnUrl, GatewaySecrets } from '../../src/gateway/tokens.js';

const NOW = Date.UTC(2030, 0, 1, 12, 0, 0);
const secrets = GatewaySecrets.fromTexts([`hex:${'6b1f'.repeat(16)}`]);
const otherSecrets = GatewaySecrets.fromTexts([`hex:${'93ce'.repeat(16)}`]);

interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
}

/**
 * One GET with the exact target. `from` picks the local address: the whole of 127.0.0.0/8 is
 * loopback on Linux, so 127.0.0.1 and 127.0.0.2 are two clients to the gateway.
 */
function get(
  gateway: Gateway,
  target: string,
  options: { from?: string; headers?: Record<string, string> } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: gateway.host,
        port: gateway.port,
        path: target,
        localAddress: options.from ?? '127.0.0.1',
        headers: options.headers ?? {},
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function getMany(gateway: Gateway, targets: string[]): Promise<number[]> {
  const statuses: number[] = [];
  // Sequential: the order of refusals, and so which lines are written, is then fixed.
  for (const target of targets) statuses.push((await get(gateway, target)).status);
  return statuses;
}

const open: Gateway[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((gateway) => gateway.close()));
});

async function start(
  overrides: Partial<GatewayOptions> = {},
): Promise<{ gateway: Gateway; logger: RecordingLogger; clock: { now: number }; signals: string[] }> {
  const logger = new RecordingLogger();
  const clock = { now: NOW };
  const signals: string[] = [];
  const gateway = await startGateway({
    host: '127.0.0.1',
    port: 0,
    secrets,
    signal: (workflowId) => {
      signals.push(workflowId);
      return Promise.resolve();
    },
    logger,
    now: () => clock.now,
    // Long enough that the summary timer never fires during a test: close() writes the summary.
    refusedLog: { perReason: 5, intervalMs: 3_600_000 },
    ...overrides,
  });
  open.push(gateway);
  return { gateway, logger, clock, signals };
}

function returnTarget(gateway: Gateway, workflowId: string, signedWith = secrets): string {
  const url = new URL(
    buildReturnUrl({
      publicBaseUrl: gateway.url,
      workflowId,
      ttlMs: 3_600_000,
      secrets: signedWith,
      nowMs: NOW,
    }),
  );
  return `${url.pathname}${url.search}`;
}

describe('per-client request limit', () => {
  it('answers 429 with Retry-After to a client over the limit while another client is still served', async () => {
    const { gateway, clock } = await start({ rateLimit: { perMinute: 60, burst: 5 } });

    for (let i = 0; i < 5; i++) expect((await get(gateway, '/thank-you')).status).toBe(200);
    const refused = await get(gateway, '/thank-you');
    expect(refused.status).toBe(429);
    // 60 a minute: the next request is allowed one second later.
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.headers['content-security-policy']).toBe("default-src 'none'; style-src 'unsafe-inline'");
    expect(refused.headers['cache-control']).toBe('no-store');

    // Another client is not affected, and health checks are never limited.
    expect((await get(gateway, '/thank-you', { from: '127.0.0.2' })).status).toBe(200);
    expect((await get(gateway, '/healthz')).status).toBe(200);
    // A valid return link does not get through either while the bucket is empty.
    expect((await get(gateway, returnTarget(gateway, 'avatar-consent-g1'))).status).toBe(429);

    // The bucket refills at the sustained rate: one more request per second.
    clock.now += 1_000;
    expect((await get(gateway, '/thank-you')).status).toBe(200);
    expect((await get(gateway, '/thank-you')).status).toBe(429);
  });

  it('limits by the address a trusted proxy appended, not by what the client wrote', async () => {
    const { gateway } = await start({ rateLimit: { perMinute: 60, burst: 2 }, trustedProxies: 1 });
    const via = (xff: string) => get(gateway, '/thank-you', { headers: { 'x-forwarded-for': xff } });

    expect((await via('203.0.113.7')).status).toBe(200);
    expect((await via('203.0.113.7')).status).toBe(200);
    expect((await via('203.0.113.7')).status).toBe(429);
    // The client's own entries come first; the proxy appends the real address last.
    expect((await via('198.51.100.1, 203.0.113.7')).status).toBe(429);
    expect((await via('203.0.113.8')).status).toBe(200);
    // IPv4-mapped and port-suffixed spellings of the same address are the same client.
    expect((await via('::ffff:203.0.113.7')).status).toBe(429);
    expect((await via('203.0.113.7:51234')).status).toBe(429);
  });

  it('limits an IPv6 client by its /64, so new addresses from the same network do not help', async () => {
    const { gateway } = await start({ rateLimit: { perMinute: 60, burst: 2 }, trustedProxies: 1 });
    const via = (xff: string) => get(gateway, '/thank-you', { headers: { 'x-forwarded-for': xff } });
    expect((await via('2001:db8:1:2::10')).status).toBe(200);
    expect((await via('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).status).toBe(200);
    expect((await via('[2001:db8:1:2::99]:443')).status).toBe(429);
    expect((await via('2001:db8:1:3::10')).status).toBe(200);
  });

  it('ignores X-Forwarded-For unless a proxy is trusted: a client cannot pose as many', async () => {
    const { gateway } = await start({ rateLimit: { perMinute: 60, burst: 3 } });
    const statuses: number[] = [];
    for (let i = 1; i <= 5; i++) {
      statuses.push(
        (await get(gateway, '/thank-you', { headers: { 'x-forwarded-for': `198.51.100.${i}` } })).status,
      );
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
  });

  it('perMinute 0 turns the limit off', async () => {
    const { gateway } = await start({ rateLimit: { perMinute: 0, burst: 1 } });
    expect(await getMany(gateway, Array<string>(20).fill('/thank-you'))).toEqual(Array<number>(20).fill(200));
  });
});

describe('log volume under a flood', () => {
  it('a flood of N bad requests writes at most 5 lines per reason and one summary', async () => {
    const { gateway, logger, signals } = await start({ rateLimit: { perMinute: 0, burst: 1 } });
    const forged = returnTarget(gateway, 'avatar-consent-victim', otherSecrets);
    const N = 200;
    const targets = [
      ...Array<string>(N).fill('/consent-return?t=not-a-token'),
      ...Array<string>(N).fill(forged),
      ...Array<string>(N).fill(`/consent-return?t=${'x'.repeat(5000)}`),
    ];
    const statuses = await getMany(gateway, targets);
    expect(statuses.filter((s) => s === 400)).toHaveLength(2 * N);
    expect(statuses.filter((s) => s === 414)).toHaveLength(N);
    expect(signals).toEqual([]);

    await gateway.close();
    const reasons = logger.lines.map((line) => line.fields.reason);
    expect(reasons.filter((r) => r === 'malformed')).toHaveLength(5);
    expect(reasons.filter((r) => r === 'bad_signature')).toHaveLength(5);
    expect(reasons.filter((r) => r === 'uri_too_long')).toHaveLength(5);
    const summaries = logger.lines.filter((line) => line.fields.suppressed !== undefined);
    expect(summaries).toHaveLength(1);
    expect(summaries[0]!.fields).toMatchObject({
      suppressed: 3 * N - 15,
      reasons: `malformed=${N - 5}, bad_signature=${N - 5}, uri_too_long=${N - 5}`,
    });
    expect(logger.lines).toHaveLength(16);
  });

  it('the log line count does not grow with the flood', async () => {
    const countLines = async (n: number): Promise<number> => {
      const { gateway, logger } = await start({ rateLimit: { perMinute: 0, burst: 1 } });
      await getMany(gateway, Array<string>(n).fill('/consent-return?t=bogus'));
      await gateway.close();
      return logger.lines.length;
    };
    expect(await countLines(50)).toBe(6);
    expect(await countLines(400)).toBe(6);
  });

  it('a replayed valid link signals once and logs a bounded number of lines', async () => {
    const { gateway, logger, signals } = await start({ rateLimit: { perMinute: 0, burst: 1 } });
    const target = returnTarget(gateway, 'avatar-consent-replayed');
    const statuses = await getMany(gateway, Array<string>(300).fill(target));
    expect(new Set(statuses)).toEqual(new Set([303]));
    expect(signals).toEqual(['avatar-consent-replayed']);

    await gateway.close();
    const outcomes = logger.lines.map((line) => line.fields.outcome ?? line.message);
    expect(outcomes).toEqual([
      'signalled',
      'consent return',
      'cooldown',
      'cooldown',
      'cooldown',
      'cooldown',
      'cooldown',
      'refused or repeated requests not logged one by one',
    ]);
    expect(logger.lines.at(-1)!.fields).toMatchObject({ suppressed: 294, reasons: 'cooldown=294' });
  });

  it('a flood over the rate limit is refused and logged in a bounded way too', async () => {
    const { gateway, logger } = await start({ rateLimit: { perMinute: 60, burst: 10 } });
    const statuses = await getMany(gateway, Array<string>(300).fill('/consent-return?t=bogus'));
    expect(statuses.filter((s) => s === 400)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(290);

    await gateway.close();
    expect(logger.lines).toHaveLength(5 + 5 + 1);
    expect(logger.lines.at(-1)!.fields).toMatchObject({
      suppressed: 290 - 5 + 10 - 5,
      reasons: 'malformed=5, rate_limited=285',
    });
    // A refused client is named by a tag, never by its address.
    const limited = logger.lines.find((line) => line.fields.reason === 'rate_limited')!;
    expect(limited.fields.client).toMatch(/^[0-9a-f]{12}$/);
    expect(JSON.stringify(logger.lines)).not.toContain('127.0.0.1');
  });

  it('a new interval logs again, after a summary of the one before', async () => {
    const { gateway, logger, clock } = await start({
      rateLimit: { perMinute: 0, burst: 1 },
      refusedLog: { perReason: 2, intervalMs: 60_000 },
    });
    await getMany(gateway, Array<string>(10).fill('/consent-return?t=bogus'));
    expect(logger.lines).toHaveLength(2);

    clock.now += 60_000;
    await getMany(gateway, Array<string>(10).fill('/consent-return?t=bogus'));
    const messages = logger.lines.map((line) =>
      line.fields.suppressed !== undefined ? `summary ${line.fields.suppressed}` : line.fields.reason,
    );
    expect(messages).toEqual(['malformed', 'malformed', 'summary 8', 'malformed', 'malformed']);

    await gateway.close();
    expect(logger.lines.at(-1)!.fields.suppressed).toBe(8);
    expect(logger.lines).toHaveLength(6);
  });
});
