// The worker container's healthcheck (docker-compose.yml), run as compose runs it, against the real
// worker (src/worker.ts, the image's entry point) on a real Temporal dev server: unhealthy until
// the worker polls its task queue, healthy while it does, unhealthy again once it has stopped.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../tools/kit/eventually.js';
import { freePort } from '../../tools/kit/ports.js';
import { startTemporalServer } from '../../tools/kit/temporal-server.js';
import type { TemporalServer } from '../../tools/kit/temporal-server.js';
import { uniqueName } from '../../tools/kit/temporal-test-env.js';
import { startWorkerProcess } from '../helpers/worker-process.js';
import type { WorkerProcess } from '../helpers/worker-process.js';

const compose = parse(
  readFileSync(fileURLToPath(new URL('../../docker-compose.yml', import.meta.url)), 'utf8'),
) as {
  services: { worker: { healthcheck: { test: string[] } } };
};
const healthcheckCommand = compose.services.worker.healthcheck.test;

let server: TemporalServer;
let worker: WorkerProcess | undefined;
let env: Record<string, string>;

/** The healthcheck's exit code, with the container's environment. */
function healthcheck(): Promise<number | null> {
  expect(healthcheckCommand.slice(0, 2)).toEqual(['CMD', 'node']);
  const child = spawn(process.execPath, healthcheckCommand.slice(2), { env, stdio: 'ignore' });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

beforeAll(async () => {
  server = await startTemporalServer();
  env = {
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: uniqueName('healthcheck'),
    METRICS_PORT: String(await freePort()),
    METRICS_HOST: '127.0.0.1',
    // Never called: no workflow runs here.
    HEYGEN_API_KEY: 'healthcheck-key',
    HEYGEN_BASE_URL: 'http://127.0.0.1:9',
    SMTP_URL: 'smtp://127.0.0.1:9',
    EMAIL_FROM: 'Avatar consent <consent@example.com>',
  };
});

afterAll(async () => {
  worker?.proc.kill('SIGKILL');
  await server?.stop();
});

describe("the worker container's healthcheck", () => {
  it('fails before the worker polls, passes while it polls, fails once it has stopped', async () => {
    expect(await healthcheck()).toBe(1); // no worker, no metrics
    worker = startWorkerProcess(env);
    await eventually('the healthcheck to pass', async () => (await healthcheck()) === 0, {
      timeoutMs: 90_000,
      intervalMs: 500,
    });
    worker.proc.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    expect(await healthcheck()).toBe(1);
  }, 150_000);
});
