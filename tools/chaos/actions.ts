/** What a chaos run does to the stack and to the groups, each at its planned moment. */
import { setTimeout as delay } from 'node:timers/promises';

import { consentLinkIn } from '../heygen-sandbox/index.js';
import type { FaultSpec, Sandbox } from '../heygen-sandbox/index.js';
import { eventually, unlessTimeout } from '../kit/eventually.js';
import type { PendingFault, SmtpCatcher } from '../kit/smtp-catcher.js';
import { sum } from './checks.js';
import type { GroupState, RunStats, Stack } from './model.js';
import type { ChaosAction, SmtpFaultKind } from './plan.js';
import type { Random } from './random.js';

/**
 * Fault bursts, one at a time per target. A burst lasts a while (or until its count is used up),
 * like a real incident; a count-only fault would linger while traffic is low and hit every later retry.
 */
const MAX_BURST_MS = 30_000;

/** A fault in place: how many uses it has left, and how to take it away (returning what was unused). */
export interface InjectedFault {
  left(): number;
  end(): number;
}

export class FaultBursts {
  #chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly note: (event: string) => void) {}

  /**
   * Injects a fault of `count` uses, keeps it for `windowMs` — longer (up to `maxMs`) while fewer
   * than `minUses` requests have met it, so a burst that lands while Temporal or the workers are
   * down still hits something — then takes away what is left. Resolves with the uses it had.
   */
  run(
    label: string,
    count: number,
    windowMs: number,
    inject: () => InjectedFault,
    { maxMs = MAX_BURST_MS, minUses = 5 }: { maxMs?: number; minUses?: number } = {},
  ): Promise<number> {
    const job = this.#chain.then(async () => {
      const fault = inject();
      this.note(`${label} — for about ${Math.round(windowMs / 100) / 10} s`);
      const startedAt = Date.now();
      const wanted = Math.min(count, minUses);
      // Over once used up, or once its window has passed and enough requests met it; at the latest after maxMs.
      await eventually(
        `the end of the burst "${label}"`,
        () => {
          const remaining = fault.left();
          return remaining === 0 || (Date.now() - startedAt >= windowMs && count - remaining >= wanted);
        },
        { timeoutMs: maxMs, intervalMs: 50 },
      ).catch(unlessTimeout);
      return count - fault.end();
    });
    this.#chain = job.catch(() => undefined);
    return job;
  }
}

/** The sandbox's one fault slot as a burst target. */
function heygenFault(sandbox: Sandbox, spec: FaultSpec): () => InjectedFault {
  return () => {
    sandbox.clearFaults();
    sandbox.injectFault(spec);
    const left = (): number => sum(sandbox.faults().map((f) => f.count));
    return {
      left,
      end: () => {
        const unused = left();
        sandbox.clearFaults();
        return unused;
      },
    };
  };
}

/** An SMTP fault of the catcher as a burst target: its pending refusal or drop. */
function smtpFault(smtp: SmtpCatcher, fault: SmtpFaultKind, count: number): () => InjectedFault {
  return () => {
    let pending: PendingFault;
    if (fault === 'drop_after_data') pending = smtp.dropNext({ count });
    else {
      const [code, stage] = fault.split('_') as [string, 'rcpt' | 'data'];
      pending = smtp.rejectNext({
        code: Number(code),
        stage,
        count,
        message: code === '421' ? 'Service not available, closing channel' : 'Local error, try again later',
      });
    }
    return { left: () => pending.remaining, end: () => pending.cancel() };
  };
}

export interface ActionContext extends Stack {
  heygenBursts: FaultBursts;
  smtpBursts: FaultBursts;
  note: (event: string) => void;
  stats: RunStats;
  /** Which worker a kill takes: drawn from the seed, in the order kills happen. */
  random: Random;
}

/** SIGKILLs the worker in `slot` (a random live one when null), then starts the slot again after `restartAfterMs`. */
async function killWorker(
  ctx: ActionContext,
  why: string,
  slot: number | null,
  restartAfterMs: number,
): Promise<void> {
  const live = ctx.workers.liveSlots();
  const victim = slot !== null && live.includes(slot) ? slot : live.length > 0 ? ctx.random.pick(live) : null;
  if (victim === null) {
    ctx.stats.workerKillsSkipped += 1;
    ctx.note(`worker SIGKILL skipped (${why}): no worker running`);
    return;
  }
  const life = await ctx.workers.kill(victim);
  ctx.stats.workerKills += 1;
  ctx.stats.workerKillTimes.push(Date.now());
  const others = ctx.workers.liveSlots().length;
  ctx.note(
    `worker ${victim} (pid ${life?.pid ?? '?'}) SIGKILLed (${why}); ${others} other(s) go on` +
      (restartAfterMs > 0 ? `, it starts again in ${Math.round(restartAfterMs / 100) / 10} s` : ''),
  );
  if (restartAfterMs > 0) await delay(restartAfterMs);
  const [next] = ctx.workers.start(victim);
  ctx.note(`worker ${victim} started again: pid ${next?.pid}`);
}

/** Takes Temporal down (`hard`: SIGKILL, else SIGTERM and wait), and starts it again on the same database. */
async function bounceTemporal(ctx: ActionContext, hard: boolean, downMs: number): Promise<void> {
  const { stats } = ctx;
  const stopAt = Date.now();
  if (hard) {
    await ctx.temporal.kill();
    stats.temporalKills += 1;
    ctx.note(`temporal dev server SIGKILLed (no shutdown); down for ${downMs} ms`);
  } else {
    const stopped = await ctx.temporal.stop(30_000);
    if (stopped.graceful) stats.temporalStopsGraceful += 1;
    stats.temporalRestarts += 1;
    ctx.note(
      `temporal dev server stopped (SIGTERM, ${stopped.graceful ? 'exited' : 'had to be SIGKILLed'}); down for ${downMs} ms`,
    );
  }
  stats.temporalDownFrom.push(stopAt);
  await delay(downMs);
  await ctx.temporal.start();
  stats.temporalDowntimeMs += Date.now() - stopAt;
  stats.temporalDownUntil.push(Date.now());
  ctx.note(
    `temporal dev server up again on the same db file (${Math.round((Date.now() - stopAt) / 100) / 10} s down)`,
  );
}

export async function runAction(action: ChaosAction, ctx: ActionContext): Promise<void> {
  const { stats } = ctx;
  switch (action.kind) {
    case 'kill_worker':
      await killWorker(ctx, 'random moment', null, action.restartAfterMs);
      return;
    case 'kill_worker_after_429': {
      const retryAfter = String(action.retryAfterSeconds);
      const seen = new Set(ctx.proxy.records.filter((r) => r.status === 429).map((r) => r.id));
      const burst = ctx.heygenBursts.run(
        `HeyGen: one 429 with Retry-After ${retryAfter} s; its worker is killed as soon as it has read it`,
        1,
        0,
        heygenFault(ctx.sandbox, { kind: 'rate_limit', count: 1, retryAfter }),
        { maxMs: 150_000 },
      );
      // Other bursts may come first, and Temporal or HeyGen may be down for a while.
      const answered = await eventually(
        `the targeted 429 (Retry-After ${retryAfter} s) to be answered`,
        () =>
          ctx.proxy.records.find(
            (r) =>
              r.status === 429 &&
              r.retryAfter === retryAfter &&
              r.respondedAt !== null &&
              !r.clientAborted &&
              !seen.has(r.id),
          ),
        { timeoutMs: 180_000, intervalMs: 20 },
      );
      // Give the worker time to read the 429 and close its gate (and write the gate file) first.
      await delay(Math.max(0, (answered.respondedAt ?? Date.now()) + 300 - Date.now()));
      const slot = answered.pid === null ? null : ctx.workers.slotOf(answered.pid);
      await killWorker(ctx, `300 ms after it read a 429 with Retry-After ${retryAfter} s`, slot, 0);
      stats.targeted429 = `yes (Retry-After ${retryAfter} s, SIGKILL 300 ms after)`;
      stats.faultsInjected.rate_limit = (stats.faultsInjected.rate_limit ?? 0) + (await burst);
      return;
    }
    case 'restart_temporal':
      await bounceTemporal(ctx, false, action.downMs);
      return;
    case 'kill_temporal':
      await bounceTemporal(ctx, true, action.downMs);
      return;
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
      return heygenBurst(
        ctx,
        { kind: 'status', status: action.status, count: action.count },
        action.windowMs,
        `HeyGen: up to ${action.count} requests answer ${action.status}`,
      );
    case 'heygen_hang':
      return heygenBurst(
        ctx,
        { kind: 'hang', count: action.count },
        action.windowMs,
        `HeyGen: up to ${action.count} requests hang (never answered)`,
      );
    case 'heygen_slow_consent':
      return heygenBurst(
        ctx,
        { kind: 'latency', ms: action.ms, count: action.count, method: 'POST', pathPrefix: '/v3/avatars/' },
        action.windowMs,
        `HeyGen: up to ${action.count} consent POSTs take ${action.ms} ms (past the client timeout, but processed)`,
      );
    case 'heygen_429_storm': {
      const retryAfter = action.retryAfter.startsWith('http-date+')
        ? new Date(
            Math.ceil((Date.now() + Number(action.retryAfter.slice('http-date+'.length)) * 1000) / 1000) *
              1000,
          ).toUTCString()
        : action.retryAfter;
      return heygenBurst(
        ctx,
        { kind: 'rate_limit', count: action.count, retryAfter },
        action.windowMs,
        `HeyGen: 429 storm, up to ${action.count} requests, Retry-After ${retryAfter}`,
      );
    }
    case 'smtp_outage': {
      const from = Date.now();
      await ctx.smtp.stop();
      ctx.note(`SMTP server down for ${action.downMs / 1000} s`);
      await delay(action.downMs);
      await ctx.smtp.start();
      stats.smtpDowntimeMs += Date.now() - from;
      stats.smtpDownSpans.push([from, Date.now()]);
      ctx.note('SMTP server back');
      return;
    }
    case 'smtp_fault': {
      const what =
        action.fault === 'drop_after_data'
          ? 'takes the message, then drops the connection before its 250'
          : `answers ${action.fault.replace('_', ' at ').toUpperCase()}`;
      const used = await ctx.smtpBursts.run(
        `SMTP: up to ${action.count} sends — the server ${what}`,
        action.count,
        action.windowMs,
        smtpFault(ctx.smtp, action.fault, action.count),
        { maxMs: 60_000 },
      );
      stats.smtpFaults[action.fault] = (stats.smtpFaults[action.fault] ?? 0) + used;
      return;
    }
  }
}

async function heygenBurst(
  ctx: ActionContext,
  spec: FaultSpec,
  windowMs: number,
  label: string,
): Promise<void> {
  const used = await ctx.heygenBursts.run(label, spec.count, windowMs, heygenFault(ctx.sandbox, spec));
  ctx.stats.faultsInjected[spec.kind] = (ctx.stats.faultsInjected[spec.kind] ?? 0) + used;
  ctx.stats.faultsUnused += spec.count - used;
}

/** What a person or HeyGen does to one group: approve (admin call or the consent page), fail it, delete it. */
export async function actOnGroup(state: GroupState, ctx: ActionContext, pageDeadline: number): Promise<void> {
  const { plan: group } = state;
  switch (group.fate) {
    case 'approved': {
      if (group.viaConsentPage && (await approveOnConsentPage(state, ctx, pageDeadline))) {
        state.approvedViaPage = true;
        ctx.stats.pageApprovals += 1;
      } else {
        if (group.viaConsentPage) ctx.stats.pageApprovalFallbacks += 1;
        ctx.sandbox.approve(group.groupId);
      }
      state.approvedAt ??= Date.now();
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

/**
 * Opens the newest link emailed to the person and presses "I agree"; a person who follows the
 * redirect then lands on the gateway's return link, as a browser would. False when no email came in time.
 */
async function approveOnConsentPage(
  state: GroupState,
  ctx: ActionContext,
  deadline: number,
): Promise<boolean> {
  const email = state.plan.email.toLowerCase();
  const link = await eventually(
    `a consent link emailed to ${email}`,
    () => {
      const latest = ctx.smtp.messages.filter((m) => m.to.some((to) => to.toLowerCase() === email)).at(-1);
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
  state.approvedAt = Date.now();
  if (state.plan.followsRedirect) {
    const location = agreed.headers.get('location') ?? '';
    const viaGateway = ctx.gatewayUrl !== null && location.startsWith(`${ctx.gatewayUrl}/`);
    let status = 0;
    if (viaGateway) {
      // The gateway nudges the workflow (checkNow), then sends the browser on: not followed further.
      const back = await fetch(location, { redirect: 'manual' }).catch(() => null);
      await back?.text();
      status = back?.status ?? 0;
    }
    state.redirect = { viaGateway, status };
  }
  return true;
}
