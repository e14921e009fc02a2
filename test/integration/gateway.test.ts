// The consent-return gateway over real HTTP, signalling real workflows on a Temporal dev server.
import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleWorkflows } from '../../tools/kit/workflow-bundle.js';
import { checkNowSender } from '../../src/gateway/main.js';
import { startGateway } from '../../src/gateway/server.js';
import type { CheckNowSender, Gateway } from '../../src/gateway/server.js';
import { buildReturnUrl, GatewaySecrets } from '../../src/gateway/tokens.js';
import { eventually } from '../../tools/kit/eventually.js';
import { freePort } from '../../tools/kit/ports.js';
import { createDevServerEnv, uniqueName } from '../../tools/kit/temporal-test-env.js';
import { RecordingLogger } from '../helpers/recording-logger.js';
import { checkNowCountQuery, checkNowCounterWorkflow, finishSignal } from './gateway-workflows.js';

const secrets = GatewaySecrets.fromTexts(['hex:' + '5a'.repeat(32)]);

/** The gateway's log, read as the outcome of each nudge. */
class NudgeLog extends RecordingLogger {
  outcomesFor(workflowId: string): unknown[] {
    return this.lines
      .filter((e) => e.fields.workflowId === workflowId && e.fields.outcome)
      .map((e) => e.fields.outcome);
  }
}

interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A raw GET (or other method), so the exact request target is sent and redirects are not followed. */
function httpRequest(baseUrl: string, target: string, method = 'GET'): Promise<HttpResult> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path: target, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The path and query of a return URL: what the browser asks the gateway for. */
function targetOf(returnUrl: string): string {
  const url = new URL(returnUrl);
  return `${url.pathname}${url.search}`;
}

function expectSecurityHeaders(headers: IncomingHttpHeaders): void {
  expect(headers['content-security-policy']).toBe("default-src 'none'; style-src 'unsafe-inline'");
  expect(headers['referrer-policy']).toBe('no-referrer');
  expect(headers['x-content-type-options']).toBe('nosniff');
  expect(headers['content-type']).toBe('text/html; charset=utf-8');
}

let env: TestWorkflowEnvironment;
let worker: Worker;
let workerRunning: Promise<void>;
let gateway: Gateway;
const taskQueue = uniqueName('gateway');
const logger = new NudgeLog();
const signalCalls: Array<{ workflowId: string; runId: string | undefined }> = [];
const issuedTokens: string[] = [];
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  const [testEnv, bundle] = await Promise.all([
    createDevServerEnv(),
    bundleWorkflows(fileURLToPath(new URL('./gateway-workflows.ts', import.meta.url))),
  ]);
  env = testEnv;
  worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: bundle });
  workerRunning = worker.run();
  // The production sender, wrapped only to record what the gateway asked for.
  const send = checkNowSender(env.client);
  const signal: CheckNowSender = (workflowId, runId) => {
    signalCalls.push({ workflowId, runId });
    return send(workflowId, runId);
  };
  gateway = await startGateway({ host: '127.0.0.1', port: 0, secrets, signal, logger });
});

afterAll(async () => {
  await gateway?.close();
  for (const close of closers.reverse()) await close();
  if (worker) {
    worker.shutdown();
    await workerRunning;
  }
  await env?.teardown();
});

async function startCounter(): Promise<
  WorkflowHandleWithFirstExecutionRunId<typeof checkNowCounterWorkflow>
> {
  return env.client.workflow.start(checkNowCounterWorkflow, {
    taskQueue,
    workflowId: uniqueName('gw-counter'),
  });
}

function returnUrlFor(
  handle: { workflowId: string; firstExecutionRunId?: string },
  extra: { finalRedirect?: string; nowMs?: number; ttlMs?: number } = {},
): string {
  const url = buildReturnUrl({
    publicBaseUrl: gateway.url,
    workflowId: handle.workflowId,
    ...(handle.firstExecutionRunId ? { runId: handle.firstExecutionRunId } : {}),
    ttlMs: extra.ttlMs ?? 3_600_000,
    secrets,
    ...(extra.finalRedirect ? { finalRedirect: extra.finalRedirect } : {}),
    ...(extra.nowMs !== undefined ? { nowMs: extra.nowMs } : {}),
  });
  issuedTokens.push(new URL(url).searchParams.get('t')!);
  return url;
}

const countOf = (handle: WorkflowHandle<typeof checkNowCounterWorkflow>) => handle.query(checkNowCountQuery);
/** The workflow's checkNow count, once a signal has reached it. */
const countOnceSignalled = (handle: WorkflowHandle<typeof checkNowCounterWorkflow>) =>
  eventually('the workflow to count a checkNow signal', async () => {
    const count = await countOf(handle);
    return count >= 1 ? count : undefined;
  });
const callsFor = (workflowId: string) => signalCalls.filter((call) => call.workflowId === workflowId).length;

describe('consent-return gateway', () => {
  it('a valid link nudges the workflow and 303s to the signed destination', async () => {
    const handle = await startCounter();
    const to = 'https://app.example.com/avatars/done?group=g1';
    const res = await httpRequest(gateway.url, targetOf(returnUrlFor(handle, { finalRedirect: to })));

    expect(res.status).toBe(303);
    expect(res.headers.location).toBe(to);
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(signalCalls).toContainEqual({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId });
    expect(await countOnceSignalled(handle)).toBe(1);

    await handle.signal(finishSignal);
    expect(await handle.result()).toBe(1);
  });

  it('without a signed destination it goes to the neutral thank-you page', async () => {
    const handle = await startCounter();
    const res = await httpRequest(gateway.url, targetOf(returnUrlFor(handle)));
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('./thank-you');
    expect(await countOnceSignalled(handle)).toBe(1);

    // The relative location resolves next to /consent-return.
    const thanks = await httpRequest(
      gateway.url,
      new URL(res.headers.location!, `${gateway.url}/consent-return`).pathname,
    );
    expect(thanks.status).toBe(200);
    expectSecurityHeaders(thanks.headers);
    expect(thanks.body).toContain('Thank you');
  });

  it('extra query parameters cannot inject a destination', async () => {
    const handle = await startCounter();
    const unsigned = targetOf(returnUrlFor(handle));
    for (const injection of [
      '&to=https://evil.example/',
      '&redirect=https://evil.example/',
      '&next=//evil.example',
    ]) {
      const res = await httpRequest(gateway.url, unsigned + injection);
      expect(res.status).toBe(303);
      expect(res.headers.location).toBe('./thank-you');
    }
    const signed = targetOf(returnUrlFor(handle, { finalRedirect: 'https://app.example.com/ok' }));
    const res = await httpRequest(gateway.url, `${signed}&to=https://evil.example/`);
    expect(res.headers.location).toBe('https://app.example.com/ok');
    // A `to` placed before `t` or a second `t` does not help either.
    const first = await httpRequest(
      gateway.url,
      `/consent-return?to=https://evil.example/&${signed.split('?')[1]}`,
    );
    expect(first.headers.location).toBe('https://app.example.com/ok');
    const twice = await httpRequest(
      gateway.url,
      `${signed}&t=${new URL(returnUrlFor(handle), gateway.url).searchParams.get('t')}`,
    );
    expect(twice.status).toBe(400);
  });

  it('tolerates text appended after the token (HeyGen might add its own parameters)', async () => {
    const handle = await startCounter();
    const res = await httpRequest(gateway.url, `${targetOf(returnUrlFor(handle))}?status=done`);
    expect(res.status).toBe(303);
    expect(await countOnceSignalled(handle)).toBe(1);
  });

  it('tampered, expired and missing tokens get an error page and no signal', async () => {
    const handle = await startCounter();
    const valid = targetOf(returnUrlFor(handle, { finalRedirect: 'https://app.example.com/ok' }));
    const token = new URL(valid, gateway.url).searchParams.get('t')!;
    const [payloadPart, macPart] = token.split('.') as [string, string];
    const forgedPayload = Buffer.from(
      JSON.stringify({
        ...JSON.parse(Buffer.from(payloadPart, 'base64url').toString()),
        to: 'https://evil.example/',
      }),
    ).toString('base64url');
    const flippedMac = macPart.slice(0, 5) + (macPart[5] === 'A' ? 'B' : 'A') + macPart.slice(6);
    const expired = targetOf(returnUrlFor(handle, { nowMs: Date.now() - 7_200_000, ttlMs: 3_600_000 }));
    const otherSecret = GatewaySecrets.fromTexts(['hex:' + '77'.repeat(32)]);
    const foreign = buildReturnUrl({
      publicBaseUrl: gateway.url,
      workflowId: handle.workflowId,
      ttlMs: 3_600_000,
      secrets: otherSecret,
    });

    const cases: Array<[string, number]> = [
      [`/consent-return?t=${forgedPayload}.${macPart}`, 400],
      [`/consent-return?t=${payloadPart}.${flippedMac}`, 400],
      [targetOf(foreign), 400],
      ['/consent-return', 400],
      ['/consent-return?t=', 400],
      ['/consent-return?t=not-a-token', 400],
      [expired, 410],
    ];
    for (const [target, status] of cases) {
      const res = await httpRequest(gateway.url, target);
      expect(res.status, target).toBe(status);
      expect(res.headers.location).toBeUndefined();
      expectSecurityHeaders(res.headers);
      expect(res.body).toContain(status === 410 ? 'expired' : 'not valid');
    }
    expect(callsFor(handle.workflowId)).toBe(0);
    expect(await countOf(handle)).toBe(0);

    // Signals are delivered in order: after one valid visit the count is exactly 1, so none of the
    // refused visits above had signalled.
    const res = await httpRequest(gateway.url, valid);
    expect(res.status).toBe(303);
    expect(await countOnceSignalled(handle)).toBe(1);
    await handle.signal(finishSignal);
    expect(await handle.result()).toBe(1);
  });

  it('an unknown (or finished) workflow still gets the person redirected', async () => {
    const workflowId = uniqueName('gw-never-started');
    const res = await httpRequest(
      gateway.url,
      targetOf(returnUrlFor({ workflowId }, { finalRedirect: 'https://app.example.com/ok' })),
    );
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('https://app.example.com/ok');
    expect(logger.outcomesFor(workflowId)).toEqual(['not_found']);

    const handle = await startCounter();
    await handle.signal(finishSignal);
    await handle.result();
    const finished = await httpRequest(gateway.url, targetOf(returnUrlFor(handle)));
    expect(finished.status).toBe(303);
    expect(logger.outcomesFor(handle.workflowId)).toEqual(['not_found']);
  });

  it('replays within the cooldown redirect without signalling again', async () => {
    const handle = await startCounter();
    const target = targetOf(returnUrlFor(handle));
    expect((await httpRequest(gateway.url, target)).status).toBe(303);
    expect((await httpRequest(gateway.url, target)).status).toBe(303);
    expect(callsFor(handle.workflowId)).toBe(1);
    expect(logger.outcomesFor(handle.workflowId)).toEqual(['signalled', 'cooldown']);
    expect(await countOnceSignalled(handle)).toBe(1);
  });

  it('serves /healthz, refuses other methods and paths, and limits the URL length', async () => {
    const health = await httpRequest(gateway.url, '/healthz');
    expect(health.status).toBe(200);
    expect(health.body).toBe('ok\n');

    const handle = await startCounter();
    const target = targetOf(returnUrlFor(handle));
    for (const method of ['HEAD', 'POST']) {
      const res = await httpRequest(gateway.url, target, method);
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe('GET');
    }
    expect(callsFor(handle.workflowId)).toBe(0);

    for (const path of [
      '/',
      '/consent-return/',
      '/CONSENT-RETURN',
      '/healthz/../consent-return',
      '/favicon.ico',
    ]) {
      const res = await httpRequest(gateway.url, path);
      expect(res.status, path).toBe(404);
      expectSecurityHeaders(res.headers);
    }
    const long = await httpRequest(gateway.url, `${target}&pad=${'x'.repeat(5000)}`);
    expect(long.status).toBe(414);
    expect(callsFor(handle.workflowId)).toBe(0);
  });

  it('never logs a full token', () => {
    expect(issuedTokens.length).toBeGreaterThan(5);
    const logged = JSON.stringify(logger.lines);
    for (const token of issuedTokens) {
      expect(logged).not.toContain(token.split('.')[0]!);
      expect(logged).not.toContain(token.split('.')[1]!);
    }
  });
});

describe('with Temporal unreachable', () => {
  it('still redirects promptly and logs the failed nudge', async () => {
    const connection = Connection.lazy({ address: `127.0.0.1:${await freePort()}`, connectTimeout: 1_000 });
    const unreachableLogger = new NudgeLog();
    const offline = await startGateway({
      host: '127.0.0.1',
      port: 0,
      secrets,
      signal: checkNowSender(new Client({ connection }), 1_500),
      logger: unreachableLogger,
      signalTimeoutMs: 300,
    });
    // Closers run in reverse: the gateway waits for its pending signal, then the connection closes.
    closers.push(() => connection.close());
    closers.push(() => offline.close());

    const workflowId = uniqueName('gw-offline');
    const url = buildReturnUrl({
      publicBaseUrl: offline.url,
      workflowId,
      finalRedirect: 'https://app.example.com/ok',
      ttlMs: 3_600_000,
      secrets,
    });
    const started = Date.now();
    const res = await httpRequest(offline.url, targetOf(url));
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('https://app.example.com/ok');
    expect(Date.now() - started).toBeLessThan(3_000);
    // The response is written after the gateway stopped waiting (300 ms), before the signal's own
    // deadline (1.5 s), which then ends the call: nothing is left retrying in the background.
    expect(unreachableLogger.outcomesFor(workflowId)).toEqual(['timeout']);
    const outcomes = await eventually('the signal call to end in the log', () => {
      const logged = unreachableLogger.outcomesFor(workflowId);
      return logged.length > 1 ? logged : undefined;
    });
    expect(outcomes).toEqual(['timeout', 'failed']);
  });
});
