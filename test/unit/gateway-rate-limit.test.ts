// The gateway's flood defences as plain code: token buckets, client keys, sampled logs, and their
// environment variables.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseGatewayEnv } from '../../src/gateway/main.js';
import { clientKey, ClientRateLimiter } from '../../src/gateway/rate-limit.js';
import { createSampledLog } from '../../src/gateway/sampled-log.js';
import type { GatewayLogger, LogFields } from '../../src/gateway/server.js';

const secret = `hex:${'8d27e4'.repeat(10)}aa11`;

describe('ClientRateLimiter', () => {
  it('allows the burst, then one request per 60000/perMinute ms, per client', () => {
    const clock = { now: 0 };
    const limiter = new ClientRateLimiter({ perMinute: 30, burst: 3, now: () => clock.now });
    expect([1, 2, 3].map(() => limiter.take('a').allowed)).toEqual([true, true, true]);
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterMs: 2_000 });
    expect(limiter.take('b').allowed).toBe(true);

    clock.now = 1_000;
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterMs: 1_000 });
    clock.now = 2_000;
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);

    // A long pause refills up to the burst, not beyond.
    clock.now = 10_000_000;
    expect([1, 2, 3, 4].map(() => limiter.take('a').allowed)).toEqual([true, true, true, false]);
  });

  it('a clock that steps back refills nothing', () => {
    const clock = { now: 100_000 };
    const limiter = new ClientRateLimiter({ perMinute: 60, burst: 1, now: () => clock.now });
    expect(limiter.take('a').allowed).toBe(true);
    clock.now = 0;
    expect(limiter.take('a').allowed).toBe(false);
  });

  it('remembers a bounded number of clients, forgetting the least recently seen', () => {
    const limiter = new ClientRateLimiter({ perMinute: 1, burst: 1, maxClients: 3, now: () => 0 });
    for (const client of ['a', 'b', 'c']) limiter.take(client);
    expect(limiter.take('a').allowed).toBe(false);
    limiter.take('d');
    expect(limiter.size).toBe(3);
    // b was the least recently seen: forgotten, so it starts again with a full bucket.
    expect(limiter.take('b').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
  });

  it('refuses nonsensical settings', () => {
    expect(() => new ClientRateLimiter({ perMinute: 0, burst: 1 })).toThrow(RangeError);
    expect(() => new ClientRateLimiter({ perMinute: 1, burst: 0 })).toThrow(RangeError);
  });
});

describe('clientKey', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:192.0.2.1', '192.0.2.1'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
    ['unknown', 'unknown'],
  ])('%s -> %s', (address, key) => {
    expect(clientKey(address)).toBe(key);
  });
});

interface Line {
  level: string;
  message: string;
  fields: LogFields;
}

function recorder(): GatewayLogger & { lines: Line[] } {
  const lines: Line[] = [];
  const push =
    (level: string) =>
    (message: string, fields: LogFields = {}) =>
      lines.push({ level, message, fields });
  return { lines, info: push('info'), warn: push('warn'), error: push('error') };
}

describe('sampled log', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('writes the first lines per reason, then one summary when the interval ends', () => {
    vi.useFakeTimers();
    const logger = recorder();
    const log = createSampledLog(logger, { perReason: 2, intervalMs: 10_000 });
    for (let i = 0; i < 1_000; i++) log.warn(i % 2 ? 'a' : 'b', 'refused', { i });
    log.info('c', 'replayed');
    expect(logger.lines.map((line) => `${line.level} ${line.fields.reason}`)).toEqual([
      'warn b',
      'warn a',
      'warn b',
      'warn a',
      'info c',
    ]);

    // The summary comes with the end of the interval, even if no further event arrives.
    vi.advanceTimersByTime(10_000);
    expect(logger.lines).toHaveLength(6);
    expect(logger.lines[5]).toMatchObject({
      level: 'warn',
      fields: { suppressed: 996, reasons: 'b=498, a=498', perReason: 2, intervalMs: 10_000 },
    });
    log.close();
  });

  it('writes no summary when nothing was left out, and none after close', () => {
    vi.useFakeTimers();
    const logger = recorder();
    const log = createSampledLog(logger, { perReason: 3 });
    log.warn('a', 'one');
    log.flush();
    expect(logger.lines).toHaveLength(1);
    for (let i = 0; i < 5; i++) log.warn('a', 'again');
    log.close();
    // flush() started a new interval: 3 of these 5 are written, 2 counted.
    expect(logger.lines.at(-1)!.fields.suppressed).toBe(2);
    const count = logger.lines.length;
    vi.advanceTimersByTime(3_600_000);
    expect(logger.lines).toHaveLength(count);
  });
});

describe('gateway environment: rate limit and trusted proxies', () => {
  it('defaults to 60 a minute, a burst of 60 and no trusted proxy', () => {
    expect(parseGatewayEnv({ GATEWAY_SECRET: secret })).toMatchObject({
      rateLimit: { perMinute: 60, burst: 60 },
      trustedProxies: 0,
    });
  });

  it('reads every variable; 0 turns the limit off; true means one proxy', () => {
    expect(
      parseGatewayEnv({
        GATEWAY_SECRET: secret,
        GATEWAY_RATE_LIMIT_PER_MINUTE: '0',
        GATEWAY_RATE_LIMIT_BURST: '5',
        GATEWAY_TRUST_PROXY: 'true',
      }),
    ).toMatchObject({ rateLimit: { perMinute: 0, burst: 5 }, trustedProxies: 1 });
    expect(parseGatewayEnv({ GATEWAY_SECRET: secret, GATEWAY_TRUST_PROXY: '2' }).trustedProxies).toBe(2);
    expect(parseGatewayEnv({ GATEWAY_SECRET: secret, GATEWAY_TRUST_PROXY: 'false' }).trustedProxies).toBe(0);
  });

  it('names every bad variable at once', () => {
    expect(() =>
      parseGatewayEnv({
        GATEWAY_SECRET: secret,
        GATEWAY_RATE_LIMIT_PER_MINUTE: 'lots',
        GATEWAY_RATE_LIMIT_BURST: '0',
        GATEWAY_TRUST_PROXY: 'yes',
      }),
    ).toThrow(
      /GATEWAY_RATE_LIMIT_PER_MINUTE: must be a whole number.*GATEWAY_RATE_LIMIT_BURST: must be 1-1000000.*GATEWAY_TRUST_PROXY: must be the number of proxies/,
    );
  });
});
