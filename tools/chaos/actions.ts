/** What a chaos run does to the stack and to the groups, each at its planned moment. */
import { setTimeout as delay } from 'node:timers/promises';

import { consentLinkIn } from '../heygen-sandbox/index.js';
import type { FaultSpec, Sandbox } from '../heygen-sandbox/index.js';
import { eventually, unlessTimeout } from '../kit/eventually.js';
import { sum } from './checks.js';
import type { GroupState, RunStats, Stack } from './model.js';
import type { ChaosAction } from './plan.js';

/**
 * HeyGen fault bursts, one at a time. A burst lasts a while (or until its count is used up), like a
 * real incident; a count-only fault would linger while traffic is low and hit every later retry.
 */
const MAX_BURST_MS = 30_000;

export class FaultBursts {
  #chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly sandbox: Sandbox,
    private readonly note: (event: string) => void,
    private readonly stats: Pick<RunStats, 'faultsInjected' | 'faultsUnused'>,
  ) {}

  /**
   * Injects `spec`, keeps it for `windowMs` — longer (up to MAX_BURST_MS) while fewer than a handful
   * of requests have met it, so a burst that lands while Temporal or the worker is down still hits
   * something — then removes what is left.
   */
  run(spec: FaultSpec, windowMs: number, label: string, maxMs = MAX_BURST_MS): Promise<void> {
    const job = this.#chain.then(async () => {
      this.sandbox.clearFaults();
      this.sandbox.injectFault(spec);
      this.note(`${label} — for about ${Math.round(windowMs / 100) / 10} s`);
      const startedAt = Date.now();
      const wanted = Math.min(spec.count, 5);
      const left = (): number => sum(this.sandbox.faults().map((f) => f.count));
      // Over once used up, or once its window has passed and enough requests met it; at the latest after maxMs.
      await eventually(
        `the end of the burst "${label}"`,
        () => {
          const remaining = left();
          return remaining === 0 || (Date.now() - startedAt >= windowMs && spec.count - remaining >= wanted);
        },
        { timeoutMs: maxMs, intervalMs: 50 },
      ).catch(unlessTimeout);
      const unused = left();
      this.sandbox.clearFaults();
      this.stats.faultsInjected[spec.kind] =
        (this.stats.faultsInjected[spec.kind] ?? 0) + spec.count - unused;
      this.stats.faultsUnused += unused;
    });
    this.#chain = job.catch(() => undefined);
    return job;
  }
}

export interface ActionContext extends Stack {
  bursts: FaultBursts;
  note: (event: string) => void;
  stats: RunStats;
}

async function killAndRestartWorker(ctx: ActionContext, why: string): Promise<void> {
  const victim = ctx.worker.current;
  if (!victim) {
    ctx.stats.workerKillsSkipped += 1;
    ctx.note(`worker SIGKILL skipped (${why}): no worker running`);
    return;
  }
  await ctx.worker.kill();
  ctx.stats.workerKills += 1;
  const next = ctx.worker.start();
  ctx.note(`worker pid ${victim.pid} SIGKILLed (${why}); started pid ${next.pid}`);
}

export async function runAction(action: ChaosAction, ctx: ActionContext): Promise<void> {
  const { stats } = ctx;
  switch (action.kind) {
    case 'kill_worker':
      await killAndRestartWorker(ctx, 'random moment');
      return;
    case 'kill_worker_after_429': {
      const retryAfter = String(action.retryAfterSeconds);
      const seen = new Set(ctx.proxy.records.filter((r) => r.status === 429).map((r) => r.id));
      const burst = ctx.bursts.run(
        { kind: 'rate_limit', count: 1, retryAfter },
        0,
        `HeyGen: one 429 with Retry-After ${retryAfter} s; the worker is killed as soon as it has read it`,
        150_000,
      );
      // Other bursts may come first, and Temporal or HeyGen may be down for a while.
      const answeredAt = await eventually(
        `the targeted 429 (Retry-After ${retryAfter} s) to be answered`,
        () =>
          ctx.proxy.records.find(
            (r) =>
              r.status === 429 &&
              r.retryAfter === retryAfter &&
              r.respondedAt !== null &&
              !r.clientAborted &&
              !seen.has(r.id),
          )?.respondedAt ?? undefined,
        { timeoutMs: 180_000, intervalMs: 20 },
      );
      // Give the worker time to read the 429 and close its gate (and write the gate file) first.
      await delay(Math.max(0, answeredAt + 300 - Date.now()));
      await killAndRestartWorker(ctx, `300 ms after a 429 with Retry-After ${retryAfter} s`);
      stats.targeted429 = `yes (Retry-After ${retryAfter} s, SIGKILL 300 ms after)`;
      await burst;
      return;
    }
    case 'restart_temporal': {
      const stopAt = Date.now();
      const stopped = await ctx.temporal.stop(30_000);
      if (stopped.graceful) stats.temporalStopsGraceful += 1;
      ctx.note(
        `temporal dev server stopped (SIGTERM, ${stopped.graceful ? 'exited' : 'had to be SIGKILLed'}); down for ${action.downMs} ms`,
      );
      await delay(action.downMs);
      await ctx.temporal.start();
      stats.temporalRestarts += 1;
      stats.temporalDowntimeMs += Date.now() - stopAt;
      ctx.note(
        `temporal dev server up again on the same db file (${Math.round((Date.now() - stopAt) / 100) / 10} s down)`,
      );
      return;
    }
    case 'heygen_outage': {
      const from = Date.now();
      await ctx.proxy.down();
      ctx.note(`HeyGen outage: connections refused for ${action.downMs / 1000} s`);
      await delay(action.downMs);
      await ctx.proxy.up();
      stats.heygenOutageMs += Date.now() - from;
      ctx.note('HeyGen back');
      return;
    }
    case 'heygen_5xx':
      await ctx.bursts.run(
        { kind: 'status', status: action.status, count: action.count },
        action.windowMs,
        `HeyGen: up to ${action.count} requests answer ${action.status}`,
      );
      return;
    case 'heygen_hang':
      await ctx.bursts.run(
        { kind: 'hang', count: action.count },
        action.windowMs,
        `HeyGen: up to ${action.count} requests hang (never answered)`,
      );
      return;
    case 'heygen_slow_consent':
      await ctx.bursts.run(
        { kind: 'latency', ms: action.ms, count: action.count, method: 'POST', pathPrefix: '/v3/avatars/' },
        action.windowMs,
        `HeyGen: up to ${action.count} consent POSTs take ${action.ms} ms (past the client timeout, but processed)`,
      );
      return;
    case 'heygen_429_storm': {
      const retryAfter = action.retryAfter.startsWith('http-date+')
        ? new Date(
            Math.ceil((Date.now() + Number(action.retryAfter.slice('http-date+'.length)) * 1000) / 1000) *
              1000,
          ).toUTCString()
        : action.retryAfter;
      await ctx.bursts.run(
        { kind: 'rate_limit', count: action.count, retryAfter },
        action.windowMs,
        `HeyGen: 429 storm, up to ${action.count} requests, Retry-After ${retryAfter}`,
      );
      return;
    }
    case 'smtp_outage': {
      const from = Date.now();
      await ctx.smtp.stop();
      ctx.note(`SMTP server down for ${action.downMs / 1000} s`);
      await delay(action.downMs);
      await ctx.smtp.start();
      stats.smtpDowntimeMs += Date.now() - from;
      ctx.note('SMTP server back');
      return;
    }
  }
}

/** What a person or HeyGen does to one group: approve (admin call or the consent page), fail it, delete it. */
export async function actOnGroup(state: GroupState, ctx: ActionContext, pageDeadline: number): Promise<void> {
  const { plan: group } = state;
  switch (group.fate) {
    case 'approved': {
      if (group.viaConsentPage && (await approveOnConsentPage(group.email, ctx, pageDeadline))) {
        state.approvedViaPage = true;
        ctx.stats.pageApprovals += 1;
      } else {
        if (group.viaConsentPage) ctx.stats.pageApprovalFallbacks += 1;
        ctx.sandbox.approve(group.groupId);
      }
      state.approvedAt = Date.now();
      state.decidedAt = state.approvedAt;
      return;
    }
    case 'deleted_mid_run':
      ctx.sandbox.deleteGroup(group.groupId);
      state.decidedAt = Date.now();
      return;
    case 'failed':
      ctx.sandbox.updateGroup(group.groupId, {
        status: 'failed',
        error: {
          code: 'consent_mismatch',
          message: 'The person in the consent video is not the person in the footage.',
        },
      });
      state.decidedAt = Date.now();
      return;
    default:
      return;
  }
}

/** Opens the newest link emailed to `email` and presses "I agree". False when no email came in time. */
async function approveOnConsentPage(email: string, ctx: ActionContext, deadline: number): Promise<boolean> {
  const link = await eventually(
    `a consent link emailed to ${email}`,
    () => {
      const latest = ctx.smtp.messages
        .filter((m) => m.to.some((to) => to.toLowerCase() === email.toLowerCase()))
        .at(-1);
      return (latest && consentLinkIn(latest.text)) ?? undefined;
    },
    { timeoutMs: Math.max(0, deadline - Date.now()), intervalMs: 1_000 },
  ).catch(unlessTimeout);
  if (!link) return false;
  const page = await fetch(link);
  await page.text();
  if (page.status !== 200) throw new Error(`consent page answered ${page.status}`);
  const agreed = await fetch(`${link}/agree`, { method: 'POST', redirect: 'manual' });
  await agreed.text();
  if (agreed.status !== 303) throw new Error(`"I agree" answered ${agreed.status}`);
  return true;
}
