// `npm run codec-server` as a real process: key generation, startup, a request, shutdown, and bad config.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

import { loadCodecKeysFromEnv } from '../../src/codec/index.js';

const mainPath = fileURLToPath(new URL('../../src/codec/main.ts', import.meta.url));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function run(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, ['--import', 'tsx', mainPath, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const output = { stdout: '', stderr: '' };
  child.stdout?.on('data', (chunk: Buffer) => (output.stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output, exited };
}

// Without these the parent's codec variables (if any) would leak into the child.
const cleanEnv = {
  AVATAR_CONSENT_CODEC_KEYS: '',
  AVATAR_CONSENT_CODEC_KEY_FILE: '',
  AVATAR_CONSENT_CODEC_ACTIVE_KEY: '',
  CODEC_SERVER_TOKEN: '',
};

describe('codec-server main', () => {
  it('--generate-key prints one id:base64 line that the key loader accepts', async () => {
    const { output, exited } = run(['--generate-key', '--id', 'k5'], cleanEnv);
    expect(await exited).toBe(0);
    const line = output.stdout.trim();
    expect(line).toMatch(/^k5:[A-Za-z0-9+/]{43}=$/);
    const keyring = loadCodecKeysFromEnv({ AVATAR_CONSENT_CODEC_KEYS: line });
    expect(keyring?.activeKeyId).toBe('k5');
  });

  it('starts, serves /encode only with the token, logs no secrets, and stops on SIGTERM', async () => {
    const token = `main-token-${randomBytes(12).toString('hex')}`;
    const key = randomBytes(32).toString('base64');
    const { child, output, exited } = run([], {
      ...cleanEnv,
      AVATAR_CONSENT_CODEC_KEYS: `k1:${key}`,
      CODEC_SERVER_TOKEN: token,
      CODEC_SERVER_PORT: '0',
    });
    await expect
      .poll(() => output.stdout, { interval: 50, timeout: 20_000 })
      .toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
    const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output.stdout)![1]!;
    expect(output.stdout).toContain('Codec keys k1 (active: k1)');

    const body = JSON.stringify({ payloads: [{ metadata: {}, data: Buffer.from('hi').toString('base64') }] });
    const denied = await fetch(`${url}/encode`, { method: 'POST', body });
    expect(denied.status).toBe(401);
    const encoded = await fetch(`${url}/encode`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body,
    });
    expect(encoded.status).toBe(200);

    await expect.poll(() => output.stdout, { interval: 50, timeout: 5_000 }).toContain('POST /encode 200');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const all = output.stdout + output.stderr;
    expect(all).not.toContain(token);
    expect(all).not.toContain(key);
  });

  it('exits 1 with a clear message, without the token, when the configuration is wrong', async () => {
    const shortToken = 'abc-short';
    const { output, exited } = run([], { ...cleanEnv, CODEC_SERVER_TOKEN: shortToken });
    expect(await exited).toBe(1);
    expect(output.stderr).toContain('CODEC_SERVER_TOKEN: must be at least 16 characters');
    expect(output.stderr).toContain('no codec keys');
    expect(output.stderr).not.toContain(shortToken);
  });
});
