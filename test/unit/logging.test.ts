import { describe, expect, it } from 'vitest';
import { secretsOf, loadWorkerConfig } from '../../src/config/worker-config.js';
import { createJsonLogger, formatLogEntry } from '../../src/logging.js';

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

  it('drops entries below the configured level', () => {
    const lines: string[] = [];
    const logger = createJsonLogger('WARN', [], (l) => lines.push(l));
    logger.info('quiet');
    logger.error('loud');
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['loud']);
  });
});
