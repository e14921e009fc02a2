import { describe, expect, it } from 'vitest';
import { ConfigError, emailDomain, loadWorkerConfig, redactConfig } from '../../src/config/worker-config.js';

const env = {
  HEYGEN_API_KEY: 'hg-secret-key-123',
  SMTP_URL: 'smtps://mailer:smtp-pass-456@smtp.example.com:465',
  EMAIL_FROM: 'Avatar consent <consent@example.com>',
};

describe('worker config', () => {
  it('applies the documented defaults', () => {
    const config = loadWorkerConfig(env);
    expect(config).toMatchObject({
      temporal: { connectionOptions: { address: 'localhost:7233' }, namespace: 'default' },
      TEMPORAL_TASK_QUEUE: 'avatar-consent',
      HEYGEN_BASE_URL: 'https://api.heygen.com',
      HEYGEN_TIMEOUT_MS: 15_000,
    });
  });

  it('lists every problem at once, naming each variable', () => {
    let error: unknown;
    try {
      loadWorkerConfig({ SMTP_URL: 'http://x', HEYGEN_BASE_URL: 'ftp://x', EMAIL_FROM: 'nobody' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const name of ['HEYGEN_API_KEY', 'SMTP_URL', 'HEYGEN_BASE_URL', 'EMAIL_FROM'])
      expect(message).toContain(name);
  });

  it('never prints the HeyGen key or the SMTP password', () => {
    const printed = JSON.stringify(redactConfig(loadWorkerConfig(env)));
    expect(printed).not.toContain('hg-secret-key-123');
    expect(printed).not.toContain('smtp-pass-456');
    expect(printed).toContain('smtp.example.com');
  });

  it('does not echo a secret given in the wrong variable shape', () => {
    let message = '';
    try {
      loadWorkerConfig({ ...env, SMTP_URL: 'not a url with smtp-pass-456' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('SMTP_URL');
    expect(message).not.toContain('smtp-pass-456');
  });

  it('takes the Message-ID domain from EMAIL_FROM', () => {
    expect(emailDomain('Avatar consent <consent@example.com>')).toBe('example.com');
    expect(emailDomain('consent@mail.example.org')).toBe('mail.example.org');
  });
});
