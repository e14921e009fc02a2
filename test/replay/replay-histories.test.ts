/**
 * Replays the committed histories of representative runs through the current workflow code: a change
 * that would break workflows already running fails here (docs/versioning.md).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DeterminismViolationError } from '@temporalio/workflow';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';

const historiesDir = fileURLToPath(new URL('../fixtures/histories/', import.meta.url));
const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

function loadHistories(): { workflowId: string; history: unknown }[] {
  return readdirSync(historiesDir)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => ({
      workflowId: name.replace(/\.json$/, ''),
      history: JSON.parse(readFileSync(historiesDir + name, 'utf8')) as unknown,
    }));
}

async function replayAll(workflowsPath: string): Promise<Map<string, Error | undefined>> {
  const workflowBundle = await bundleWorkflowCode({ workflowsPath, logger: quiet });
  const results = new Map<string, Error | undefined>();
  for await (const result of Worker.runReplayHistories({ workflowBundle }, loadHistories())) {
    results.set(result.workflowId, result.error);
  }
  return results;
}

describe('replay of recorded histories', () => {
  it('covers the representative runs', () => {
    expect(loadHistories().map((h) => h.workflowId)).toEqual([
      'blocked-credentials',
      'cancel',
      'check-now-and-resend',
      'continue-as-new-first-run',
      'continue-as-new-second-run',
      'default-policy-expiry',
      'group-failed',
      'happy-path',
      'link-refresh-then-expiry',
      'rate-limited',
      'search-attributes',
    ]);
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
