/**
 * `npm run build` step: bundles the workflow code once, at build time, into dist/workflow-bundle.js.
 * The worker (node dist/worker.js) loads it instead of running webpack at every start, and every
 * worker of a release runs byte-for-byte the same workflow code.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';

const workflowsPath = fileURLToPath(new URL('../src/workflows/index.ts', import.meta.url));
const outFile = fileURLToPath(new URL('../dist/workflow-bundle.js', import.meta.url));

const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
const { code } = await bundleWorkflowCode({ workflowsPath, logger: quiet });
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, code);
console.log(`workflow bundle: ${outFile} (${Math.round(code.length / 1024)} KB)`);
