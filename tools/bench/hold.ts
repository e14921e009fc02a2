/**
 * `--hold N`: N consents waiting at once, never approved, and the product worker's memory while it
 * holds them. They use the production policy unscaled (so the measurement is of waiting, not of
 * fast polling), with the first poll interval at the 30-minute cap: the steady state of a consent
 * that has been waiting for an hour or more. Once every one of them has sent its email and made its
 * first poll (the sandbox ledger shows two GETs per group), the worker's RSS is sampled; then all
 * are cancelled.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { startSandbox } from '../heygen-sandbox/index.js';
import { startAvatarConsent } from '../../src/starter.js';
import type { SmtpCatcher } from '../kit/smtp-catcher.js';
import { People } from './person.js';
import { EMAIL_FROM, SANDBOX_API_KEY } from './phase.js';
import { NAMESPACE, startWorkerChild } from './stack.js';
import type { Stack } from './stack.js';
import { eventually, unlessTimeout } from '../kit/eventually.js';
import { mapLimit, max } from './stats.js';

export interface HoldResult {
  held: number;
  /** How many reached "awaiting" (email sent, first poll made) before the timeout. */
  awaiting: number;
  secondsToAwaiting: number;
  /** Worker RSS with all of them waiting (highest sample over 5 s), bytes. */
  rssWhileHolding: number;
  /** V8 heap in use at the same moments (highest sample), bytes. */
  heapUsedWhileHolding: number;
  /** Worker RSS right after it started, before any consent, bytes. */
  rssIdle: number;
  peakRss: number;
  cancelled: number;
  secondsToCancel: number;
}

const SETTLE_MS = Number(process.env.BENCH_HOLD_SETTLE_MS ?? 3_000);
const SAMPLE_MS = 5_000;

export async function runHold(opts: {
  n: number;
  stack: Stack;
  smtp: SmtpCatcher;
  runTag: string;
  bundlePath: string;
  logFile: string;
  progress: (line: string) => void;
  /** Called with the memory figures as soon as they are taken (before the cancellation). */
  onMeasured?: (partial: Partial<HoldResult>) => void;
}): Promise<HoldResult> {
  const { n, stack, progress } = opts;
  const client = stack.env.client;
  const taskQueue = `bench-hold-${opts.runTag}`;
  // No rate limit here: this phase measures memory, and its start is a burst no real key would see.
  const sandbox = await startSandbox({ apiKeys: [SANDBOX_API_KEY] });
  const worker = await startWorkerChild(
    {
      type: 'start',
      system: 'product',
      temporalAddress: stack.env.address,
      namespace: NAMESPACE,
      taskQueue,
      bundlePath: opts.bundlePath,
      heygenUrl: sandbox.url,
      heygenApiKey: SANDBOX_API_KEY,
      smtpUrl: opts.smtp.url,
      emailFrom: EMAIL_FROM,
      record: false,
    },
    opts.logFile,
  );
  const rssIdle = (await eventually('a memory sample of the idle worker', () => worker.samples.at(-1)))[1];

  const people = new People(opts.smtp, null);
  const groups = Array.from({ length: n }, (_, i) => `ag_hold_${opts.runTag}_${i}`);
  for (const [i, groupId] of groups.entries()) {
    sandbox.createGroup({ id: groupId, name: `Held avatar ${i}` });
    people.add({
      email: `h${i}.${opts.runTag}@bench.example`,
      waitMs: Infinity,
      followRedirect: false,
      emails: 0,
    });
  }
  people.start();

  const t0 = Date.now();
  progress(`hold: starting ${n} consents that are never approved`);
  const handles: WorkflowHandle[] = await mapLimit(groups, 64, (groupId, i) =>
    startAvatarConsent(
      client,
      {
        groupId,
        recipient: { email: `h${i}.${opts.runTag}@bench.example`, name: 'Held Person' },
        policy: { pollInitialInterval: '30m', pollMaxInterval: '30m', deadline: '7d' },
      },
      { taskQueue },
    ),
  );

  const awaitingCount = (): number => {
    const gets = new Map<string, number>();
    for (const entry of sandbox.ledger()) {
      if (entry.method === 'GET' && entry.status === 200)
        gets.set(entry.path, (gets.get(entry.path) ?? 0) + 1);
    }
    let awaiting = 0;
    for (const groupId of groups) if ((gets.get(`/v3/avatars/${groupId}`) ?? 0) >= 2) awaiting += 1;
    return awaiting;
  };
  let awaiting = 0;
  let lastReport = Date.now();
  // Running out of time is a result here: the figures say how many got there.
  await eventually(
    `${n} consents awaiting`,
    () => {
      awaiting = awaitingCount();
      if (Date.now() - lastReport > 15_000) {
        lastReport = Date.now();
        progress(`hold: ${awaiting}/${n} awaiting`);
      }
      return awaiting >= n;
    },
    { timeoutMs: Math.max(180_000, n * 150), intervalMs: 1_000 },
  ).catch(unlessTimeout);
  const secondsToAwaiting = (Date.now() - t0) / 1000;
  progress(`hold: ${awaiting}/${n} awaiting after ${secondsToAwaiting.toFixed(0)} s; sampling worker memory`);
  // Measurement windows, not waits for a condition: let the last polls' garbage go, then sample.
  await sleep(SETTLE_MS);
  const from = Date.now();
  await sleep(SAMPLE_MS);
  const holding = worker.samples.filter(([at]) => at >= from);
  const rssWhileHolding = max(holding.map(([, rss]) => rss));
  const heapUsedWhileHolding = max(holding.map(([, , heap]) => heap));

  // Written down before the cancellation, so a slow or failed cancel cannot lose it.
  opts.onMeasured?.({ held: n, awaiting, secondsToAwaiting, rssWhileHolding, heapUsedWhileHolding, rssIdle });

  const c0 = Date.now();
  progress(`hold: cancelling ${n} consents`);
  await mapLimit(handles, 64, (handle) => handle.cancel().catch(() => undefined));
  // Counted through visibility, not with a long poll per workflow: nothing is left pending on the
  // connection when the stack shuts down.
  const running = async (): Promise<number> =>
    (await client.workflow.count(`TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"`)).count;
  let stillRunning = n;
  await eventually(
    `${n} consents cancelled`,
    async () => {
      stillRunning = await running().catch(() => stillRunning);
      return stillRunning === 0;
    },
    { timeoutMs: Math.max(120_000, n * 60), intervalMs: 2_000 },
  ).catch(unlessTimeout);
  const cancelled = n - stillRunning;
  const secondsToCancel = (Date.now() - c0) / 1000;
  await people.stop();
  const report = await worker.stop();
  await sandbox.close();
  return {
    held: n,
    awaiting,
    secondsToAwaiting,
    rssWhileHolding,
    heapUsedWhileHolding,
    rssIdle,
    peakRss: report.peakRss,
    cancelled,
    secondsToCancel,
  };
}
