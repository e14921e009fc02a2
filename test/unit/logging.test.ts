import { describe, expect, it } from 'vitest';
import { secretsOf, loadWorkerConfig } from '../../src/config/worker-config.js';
import { createJsonLogger, formatLogEntry } from '../../src/logging.js';
import { echoPrefixLength, maskSecrets } from '../../src/mask-secrets.js';

const at = 1_800_000_000_000_000_000n;

describe('JSON logs', () => {
  it('writes one JSON object per entry with time, level, message and metadata', () => {
    const line = formatLogEntry({
      message: 'consent email sent',
      level: 'INFO',
      timestampNanos: 1_800_000_000_000_000_000n,
      meta: { groupId: 'ag_1', error: new Error('boom') },
    });
    expect(JSON.parse(line)).toEqual({
      time: '2027-01-15T08:00:00.000Z',
      level: 'info',
      msg: 'consent email sent',
      groupId: 'ag_1',
      error: { name: 'Error', message: 'boom' },
    });
  });

  it('masks the HeyGen key and the SMTP password wherever they appear', () => {
    const config = loadWorkerConfig({
      HEYGEN_API_KEY: 'hg-live-abcdef',
      SMTP_URL: 'smtps://user:p%40ss-word@smtp.example.com',
      EMAIL_FROM: 'consent@example.com',
    });
    const lines: string[] = [];
    const logger = createJsonLogger('DEBUG', secretsOf(config), (l) => lines.push(l));
    logger.warn('oops hg-live-abcdef', { header: 'x-api-key: hg-live-abcdef', pass: 'p@ss-word' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('hg-live-abcdef');
    expect(lines[0]).not.toContain('p@ss-word');
    expect(lines[0]).toContain('****');
  });

  it('masks a secret containing a quote or a backslash (masking happens before JSON escaping)', () => {
    for (const secret of ['pa"ss-word-1', 'pa\\ss-word-2', 'tab\tbed-pass', 'quo"te\\both"9']) {
      const line = formatLogEntry(
        { message: `login with ${secret}`, level: 'WARN', timestampNanos: at, meta: { [secret]: secret } },
        [secret],
      );
      const parsed = JSON.parse(line) as Record<string, unknown>;
      expect(JSON.stringify(parsed)).not.toContain(JSON.stringify(secret).slice(1, -1));
      expect(line).not.toContain(secret);
      expect(parsed.msg).toBe('login with ****');
      expect(parsed['****']).toBe('****');
    }
  });

  it('masks secrets at any depth, in nested objects and arrays', () => {
    const secret = 'nested-"secret"-value';
    const line = formatLogEntry(
      {
        message: 'm',
        level: 'INFO',
        timestampNanos: at,
        meta: { outer: { list: [`x ${secret} y`, { deep: secret }] } },
      },
      [secret],
    );
    expect(JSON.parse(line)).toMatchObject({ outer: { list: ['x **** y', { deep: '****' }] } });
  });

  it('masks a numeric secret logged as a number', () => {
    const line = formatLogEntry(
      { message: 'm', level: 'INFO', timestampNanos: at, meta: { pin: 90817263 } },
      ['90817263'],
    );
    expect(line).not.toContain('90817263');
  });

  it('masks a key that a server echoes shortened to its first characters', () => {
    const apiKey = 'hg_live_3fA9kQ2xZp7LmN4rT8vW1yB6';
    const lines: string[] = [];
    const logger = createJsonLogger('DEBUG', [apiKey], (l) => lines.push(l));
    logger.warn(`HeyGen 401: Invalid API key ${apiKey.slice(0, 8)}… (check the key)`);
    logger.warn(`HeyGen 401: Invalid API key ${apiKey.slice(0, 12)}...`);
    logger.warn(`HeyGen 401: key starting ${apiKey.slice(0, 20)} is revoked`);
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual([
      'HeyGen 401: Invalid API key ****… (check the key)',
      'HeyGen 401: Invalid API key ****...',
      'HeyGen 401: key starting **** is revoked',
    ]);
  });

  it('leaves shorter fragments of a key, and unrelated text, alone', () => {
    const apiKey = 'hg_live_3fA9kQ2xZp7LmN4rT8vW1yB6';
    const line = formatLogEntry(
      {
        message: `prefix ${apiKey.slice(0, 7)}… and tail …${apiKey.slice(-4)}`,
        level: 'INFO',
        timestampNanos: at,
      },
      [apiKey],
    );
    expect((JSON.parse(line) as { msg: string }).msg).toBe(
      `prefix ${apiKey.slice(0, 7)}… and tail …${apiKey.slice(-4)}`,
    );
  });
});

describe('echo prefix length (how much of a secret counts as an echo)', () => {
  it('is 8 for keys of 16 characters or more, half for shorter secrets, never under 4', () => {
    expect(echoPrefixLength('x'.repeat(64))).toBe(8);
    expect(echoPrefixLength('x'.repeat(16))).toBe(8);
    expect(echoPrefixLength('x'.repeat(15))).toBe(8);
    expect(echoPrefixLength('x'.repeat(12))).toBe(6);
    expect(echoPrefixLength('x'.repeat(9))).toBe(5);
    expect(echoPrefixLength('x'.repeat(6))).toBe(4);
    expect(echoPrefixLength('x'.repeat(4))).toBe(4);
  });

  it('never leaves half or more of a short secret visible', () => {
    const password = 'Tr0ub4dor&3';
    expect(maskSecrets(`pw ${password.slice(0, 6)}…`, [password])).toBe('pw ****…');
    expect(maskSecrets(`pw ${password.slice(0, 5)}…`, [password])).toBe(`pw ${password.slice(0, 5)}…`);
  });

  it('masks the longer of two secrets that share a beginning as a whole', () => {
    expect(maskSecrets('a secret-abcdef-long b', ['secret-abcdef', 'secret-abcdef-long'])).toBe('a **** b');
  });

  it('ignores secrets shorter than 4 characters', () => {
    expect(maskSecrets('abc abc', ['abc'])).toBe('abc abc');
  });
});

describe('log levels', () => {
  it('drops entries below the configured level', () => {
    const lines: string[] = [];
    const logger = createJsonLogger('WARN', [], (l) => lines.push(l));
    logger.info('quiet');
    logger.error('loud');
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['loud']);
  });
});

describe('quiet logs: nothing at warn level for normal states', () => {
  it("drops activities' task tokens unless LOG_TASK_TOKENS asks for them", () => {
    const entry = {
      message: 'Activity completed',
      level: 'INFO' as const,
      timestampNanos: at,
      meta: { activityType: 'pollConsentStatus', taskToken: 'CiQ0ZmY4...long-base64' },
    };
    expect(JSON.parse(formatLogEntry(entry))).not.toHaveProperty('taskToken');
    expect(JSON.parse(formatLogEntry(entry, [], { taskTokens: true }))).toHaveProperty('taskToken');
  });

  it("reports the HeyGen queue's worker having no workflows at debug level, not as a warning", () => {
    const lines: string[] = [];
    const logger = createJsonLogger('DEBUG', [], (line) => lines.push(line));
    logger.warn('No workflows registered, not polling for workflow tasks', { taskQueue: 'q-heygen' });
    logger.warn('Temporal not reachable yet; retrying');
    expect(lines.map((line) => (JSON.parse(line) as { level: string }).level)).toEqual(['debug', 'warn']);
    const infoOnly: string[] = [];
    createJsonLogger('INFO', [], (line) => infoOnly.push(line)).warn(
      'No workflows registered, not polling for workflow tasks',
    );
    expect(infoOnly).toEqual([]);
  });
});
