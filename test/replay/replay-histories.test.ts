/**
 * Replays the committed histories of representative runs through the current workflow code: a change
 * that would break workflows already running fails here (docs/versioning.md). The `encrypted-*`
 * histories were recorded with the production settings (payloads and failures encrypted with the
 * test-only key beside them), so they replay through the codec, as a production worker would.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DeterminismViolationError } from '@temporalio/workflow';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';

import { fixtureDataConverter } from '../../tools/record-histories.js';

const historiesDir = fileURLToPath(new URL('../fixtures/histories/', import.meta.url));
const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
const isEncrypted = (workflowId: string): boolean => workflowId.startsWith('encrypted-');

function loadHistories(): { workflowId: string; history: unknown }[] {
  return readdirSync(historiesDir)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => ({
      workflowId: name.replace(/\.json$/, ''),
      history: JSON.parse(readFileSync(historiesDir + name, 'utf8')) as unknown,
    }));
}

/** Replays every history; the encrypted ones with the codec and its failure converter, bundled in. */
async function replayAll(workflowsPath: string): Promise<Map<string, Error | undefined>> {
  const results = new Map<string, Error | undefined>();
  const all = loadHistories();
  const dataConverter = fixtureDataConverter();
  for (const encrypted of [false, true]) {
    const histories = all.filter((h) => isEncrypted(h.workflowId) === encrypted);
    const workflowBundle = await bundleWorkflowCode({
      workflowsPath,
      logger: quiet,
      ...(encrypted ? { failureConverterPath: dataConverter.failureConverterPath } : {}),
    });
    const options = encrypted ? { workflowBundle, dataConverter } : { workflowBundle };
    for await (const result of Worker.runReplayHistories(options, histories)) {
      results.set(result.workflowId, result.error);
    }
  }
  return results;
}

describe('replay of recorded histories', () => {
  it('covers the representative runs, encrypted ones and runs across a continue-as-new', () => {
    expect(loadHistories().map((h) => h.workflowId)).toEqual([
      'blocked-credentials',
      'cancel',
      'check-now-and-resend',
      'continue-as-new-first-run',
      'continue-as-new-second-run',
      'default-policy-expiry',
      'encrypted-continue-as-new-first-run',
      'encrypted-continue-as-new-second-run',
      'encrypted-continue-as-new-third-run',
      'encrypted-email-undeliverable',
      'encrypted-happy-path',
      'encrypted-input-check-across-tasks',
      'group-failed',
      'happy-path',
      'link-refresh-then-expiry',
      'rate-limited',
      'search-attributes',
    ]);
  });

  it('the encrypted histories hold ciphertext: without the key they cannot be read', async () => {
    const workflowBundle = await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('../../src/workflows/index.ts', import.meta.url)),
      logger: quiet,
    });
    const encrypted = loadHistories().filter((h) => isEncrypted(h.workflowId));
    for await (const result of Worker.runReplayHistories({ workflowBundle }, encrypted)) {
      expect(result.error, result.workflowId).toBeDefined();
    }
  });

  it('the current workflow code continues every recorded run', async () => {
    const results = await replayAll(fileURLToPath(new URL('../../src/workflows/index.ts', import.meta.url)));
    expect(results.size).toBe(loadHistories().length);
    for (const [workflowId, error] of results) {
      expect(error, `${workflowId}: ${error?.message}`).toBeUndefined();
    }
  });

  it('a workflow changed without patched() fails the replay (the net works)', async () => {
    const results = await replayAll(fileURLToPath(new URL('./changed-workflow.ts', import.meta.url)));
    expect(results.size).toBe(loadHistories().length);
    for (const [, error] of results) expect(error).toBeInstanceOf(DeterminismViolationError);
  });
});
