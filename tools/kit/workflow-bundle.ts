/**
 * Workflow code bundled once per test file (or tool run), quietly: the bundler's stats are noise in
 * test output. Workers then start from the bundle instead of bundling each time.
 */
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';

/** A logger that drops everything (the bundler's, in tests and tools). */
export const silentLogger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** The product's workflows (what the worker registers). */
export const productWorkflowsPath = fileURLToPath(new URL('../../src/workflows/index.ts', import.meta.url));

export function bundleWorkflows(
  workflowsPath: string | URL = productWorkflowsPath,
): Promise<WorkflowBundleWithSourceMap> {
  const path = workflowsPath instanceof URL ? fileURLToPath(workflowsPath) : workflowsPath;
  return bundleWorkflowCode({ workflowsPath: path, logger: silentLogger });
}
