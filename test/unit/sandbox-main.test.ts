// `npm run sandbox`: environment parsing, and the entry point as a real process.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { parseSandboxEnv } from '../../tools/heygen-sandbox/env.js';
import { exited } from '../../tools/kit/child-process.js';
import { eventually } from '../../tools/kit/eventually.js';

describe('parseSandboxEnv', () => {
  it('has local defaults', () => {
    expect(parseSandboxEnv({})).toEqual({
      options: {
        host: '127.0.0.1',
        port: 4010,
        apiKeys: ['sandbox-key'],
        publicUrl: undefined,
        rateLimit: null,
        processingLatencyMs: 0,
        trainingTimeMs: 0,
        consentLinkTtlMs: null,
      },
      usesDefaultKey: true,
    });
  });

  it('reads every variable; empty values count as unset', () => {
    const config = parseSandboxEnv({
      SANDBOX_PORT: '',
      SANDBOX_HOST: '0.0.0.0',
      SANDBOX_API_KEYS: ' one , two ',
      SANDBOX_PUBLIC_URL: 'https://sandbox.example.test',
      SANDBOX_RATE_LIMIT: '5',
      SANDBOX_RATE_LIMIT_WINDOW_MS: '1000',
      SANDBOX_PROCESSING_LATENCY_MS: '250',
      SANDBOX_TRAINING_TIME_MS: '30000',
      SANDBOX_CONSENT_LINK_TTL_MS: '86400000',
    });
    expect(config).toEqual({
      options: {
        host: '0.0.0.0',
        port: 4010,
        apiKeys: ['one', 'two'],
        publicUrl: 'https://sandbox.example.test',
        rateLimit: { limit: 5, windowMs: 1000 },
        processingLatencyMs: 250,
        trainingTimeMs: 30000,
        consentLinkTtlMs: 86_400_000,
      },
      usesDefaultKey: false,
    });
    expect(parseSandboxEnv({ SANDBOX_RATE_LIMIT: '0' }).options.rateLimit).toBeNull();
  });

  it('lists every problem at once, without echoing values (keys are secrets)', () => {
    let message = '';
    try {
      parseSandboxEnv({
        SANDBOX_PORT: '70000',
        SANDBOX_API_KEYS: 'super-secret-key,,',
        SANDBOX_PUBLIC_URL: 'ftp://x.test',
        SANDBOX_TRAINING_TIME_MS: 'soon',
      });
    } catch (error) {
      message = (error as Error).message;
    }
    for (const name of [
      'SANDBOX_PORT',
      'SANDBOX_API_KEYS',
      'SANDBOX_PUBLIC_URL',
      'SANDBOX_TRAINING_TIME_MS',
    ]) {
      expect(message).toContain(name);
    }
    expect(message).not.toContain('super-secret-key');
  });
});

describe('main.ts', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  });

  it('starts, prints its URL and key, serves the demo group, and stops on SIGTERM', async () => {
    const main = fileURLToPath(new URL('../../tools/heygen-sandbox/main.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', main], {
      env: { ...process.env, SANDBOX_PORT: '0', SANDBOX_API_KEYS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await eventually(
      'the sandbox to print its demo group',
      () => /Demo avatar group: ag_[0-9a-f]+/.test(output),
      {
        timeoutMs: 20_000,
        intervalMs: 50,
      },
    );
    const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
    const groupId = /Demo avatar group: (ag_[0-9a-f]+)/.exec(output)?.[1];
    expect(output).toContain('API key: sandbox-key');
    const res = await fetch(`${url}/v3/avatars/${groupId}`, { headers: { 'x-api-key': 'sandbox-key' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      data: { id: groupId, name: 'Demo Avatar', consent_status: 'pending' },
    });

    child.kill('SIGTERM');
    expect((await exited(child)).code).toBe(0);
  });
});
