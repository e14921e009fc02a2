/**
 * How the workflow runs its activities: in windows. Each activity is given a schedule-to-close
 * window and a retry policy, and Temporal retries it inside the window without a history event per
 * attempt (the infrequent-polling pattern). When a window closes while the activity is still
 * retrying, the workflow wakes, takes stock from the last failure's details, and opens the next one.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  log,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { RetryPolicy } from '@temporalio/common';
import { RetryState } from '@temporalio/common';
import type { EmailActivities, HeyGenActivities } from '../activities/index.js';
import { FailureType } from '../activities/types.js';
import type { AttemptDetails } from '../activities/types.js';
import { EMAIL_ATTEMPT_TIMEOUT_MS, HEYGEN_ATTEMPT_TIMEOUT_MS } from '../config/timeouts.js';
import { heygenTaskQueueFor } from '../contract/definitions.js';
import { STEP_MAX_RETRY_INTERVAL_MS, STEP_WINDOW_MS } from '../config/timeouts.js';
import type { GroupSnapshot } from '../rules/consent-decision.js';
import { clearTrouble, takeStock } from './consent-state.js';
import type { ConsentEnd, ConsentState } from './consent-state.js';
import type { Controls } from './controls.js';
import { intervalAfter, planWindow, pollOffsetsWithin } from './polling.js';
import type { BackoffSchedule } from './polling.js';
import type { StatusBoard } from './status.js';

export interface WindowOptions {
  /** Shown in the Temporal UI for the activity. */
  summary: string;
  /** How long the activity may keep retrying before the workflow takes stock. */
  windowMs: number;
  retry: RetryPolicy;
  /** Ahead of the queue: the poll right after a nudge, which the person is waiting for. */
  urgent?: boolean;
}

/** Temporal's task priority (1 is the highest; unset is the middle, 3). */
const URGENT_PRIORITY = { priorityKey: 1 };

/** HeyGen calls go to the HeyGen task queue, where one rate cap holds for every worker. */
export function heygenActivities(window: WindowOptions): HeyGenActivities {
  return proxyActivities<HeyGenActivities>({
    summary: window.summary,
    scheduleToCloseTimeout: window.windowMs,
    startToCloseTimeout: HEYGEN_ATTEMPT_TIMEOUT_MS,
    retry: window.retry,
    taskQueue: heygenTaskQueueFor(workflowInfo().taskQueue),
    ...(window.urgent ? { priority: URGENT_PRIORITY } : {}),
  });
}

/** The email goes out from the workflow's own task queue. */
export function emailActivities(window: WindowOptions): EmailActivities {
  return proxyActivities<EmailActivities>({
    summary: window.summary,
    scheduleToCloseTimeout: window.windowMs,
    startToCloseTimeout: EMAIL_ATTEMPT_TIMEOUT_MS,
    retry: window.retry,
  });
}

export type Interruptible<T> = { kind: 'done'; value: T } | { kind: 'interrupted' };

/**
 * Runs `start` until it finishes, unless `interrupted()` becomes true first: then whatever `start`
 * began (an activity, a timer) is cancelled and 'interrupted' returned.
 */
export async function unlessInterrupted<T>(
  start: () => Promise<T>,
  interrupted: () => boolean,
): Promise<Interruptible<T>> {
  if (interrupted()) return { kind: 'interrupted' };
  return CancellationScope.cancellable(async () => {
    const work = start().then((value) => ({ kind: 'done' as const, value }));
    const stop = condition(interrupted).then(() => ({ kind: 'interrupted' as const }));
    try {
      return await Promise.race([work, stop]);
    } finally {
      CancellationScope.current().cancel();
      work.catch(() => undefined);
      stop.catch(() => undefined);
    }
  });
}

/**
 * Sleeps until `untilMs` unless `interrupted()` becomes true. Starts no timer when there is nothing
 * to wait for (a timer started and cancelled at once would still be two commands).
 */
export async function pauseUntil(untilMs: number, interrupted: () => boolean): Promise<void> {
  if (interrupted() || untilMs <= Date.now()) return;
  await condition(interrupted, untilMs - Date.now());
}

/** The last ApplicationFailure in an error's cause chain: the activity's own words. */
function lastApplicationFailure(err: unknown): ApplicationFailure | undefined {
  let current: unknown = err;
  let found: ApplicationFailure | undefined;
  for (let depth = 0; current instanceof Error && depth < 10; depth++) {
    if (current instanceof ApplicationFailure) found = current;
    current = current.cause;
  }
  return found;
}

function attemptDetailsOf(failure: ApplicationFailure | undefined): AttemptDetails | undefined {
  const first: unknown = failure?.details?.[0];
  if (typeof first === 'object' && first !== null && typeof (first as AttemptDetails).attempt === 'number') {
    return first as AttemptDetails;
  }
  return undefined;
}

/** What a closed window reports: its last attempt's details (none when that attempt was lost, e.g. with its worker). */
export interface ClosedWindow {
  details: AttemptDetails | undefined;
}

/**
 * The one place that recognises a closed window: the activity ran out of time while still retrying,
 * which is not a failure of the consent. Returns null for anything else (rethrow it).
 */
export function closedWindow(err: unknown): ClosedWindow | null {
  if (!(err instanceof ActivityFailure) || err.retryState !== RetryState.TIMEOUT) return null;
  return { details: attemptDetailsOf(lastApplicationFailure(err)) };
}

/** The outcome a non-retryable activity failure means, or null when it means nothing known (rethrow it). */
export function endForFailure(err: unknown): ConsentEnd | null {
  if (!(err instanceof ActivityFailure)) return null;
  const failure = lastApplicationFailure(err);
  const details = attemptDetailsOf(failure);
  const error = {
    code: details?.error?.code ?? failure?.type ?? 'error',
    message: failure?.message ?? String(err),
    ...(details?.error?.param ? { param: details.error.param } : {}),
  };
  switch (failure?.type) {
    case FailureType.groupNotFound:
      return { outcome: 'group_not_found', error };
    case FailureType.invalidRequest:
      return { outcome: 'invalid_request', error };
    case FailureType.emailUndeliverable:
      return { outcome: 'email_undeliverable', error };
    default:
      return null;
  }
}

/** What the windows of one consent work with. */
export interface WindowContext {
  groupId: string;
  /** The run has the consent-flow-v2 patch (avatar-consent.ts). */
  v2: boolean;
  state: ConsentState;
  board: StatusBoard;
  controls: Controls;
  schedule: BackoffSchedule;
  pollWindowMs: number;
}

export type StepResult<T> = { kind: 'done'; value: T } | { kind: 'canceled' } | { kind: 'expired' };

/** Whether to stop waiting: the cancel signal, or the deadline has passed. */
export function stopReason(ctx: WindowContext): 'canceled' | 'expired' | null {
  if (ctx.controls.canceled()) return 'canceled';
  if (Date.now() >= ctx.state.deadlineAtMs) return 'expired';
  return null;
}

/** Sleeps up to `ms`, never past the deadline, unless `interrupted()` becomes true. */
export function pause(ctx: WindowContext, ms: number, interrupted: () => boolean): Promise<void> {
  return pauseUntil(Math.min(Date.now() + ms, ctx.state.deadlineAtMs), interrupted);
}

/**
 * Runs a request or email step in windows of STEP_WINDOW_MS: the activity retries inside a window;
 * when one closes, the workflow records the last error (so `status` and the UI show why it is
 * stuck, e.g. a bad API key) and opens the next. Stops on cancel or at the deadline.
 */
export async function runStep<T>(
  ctx: WindowContext,
  summary: string,
  call: (window: WindowOptions) => Promise<T>,
): Promise<StepResult<T>> {
  for (;;) {
    const stop = stopReason(ctx);
    if (stop) return { kind: stop };
    const window: WindowOptions = {
      summary,
      windowMs: Math.min(STEP_WINDOW_MS, ctx.state.deadlineAtMs - Date.now()),
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: STEP_MAX_RETRY_INTERVAL_MS },
    };
    try {
      const result = await unlessInterrupted(() => call(window), ctx.controls.canceled);
      if (result.kind === 'interrupted') return { kind: 'canceled' };
      clearTrouble(ctx.state);
      return result;
    } catch (err) {
      const closed = closedWindow(err);
      if (!closed) throw err;
      takeStock(ctx.state, closed.details, ctx.groupId);
      // Since consent-flow-v2, a step blocked by HeyGen (401/402/403) shows in ConsentBlocked at once.
      if (ctx.v2) ctx.board.publish();
      // Wait what the last attempt asked for, so a window boundary never makes two requests in a row.
      await pause(ctx, closed.details?.retryDelayMs ?? STEP_MAX_RETRY_INTERVAL_MS, ctx.controls.canceled);
    }
  }
}

/**
 * One polling window: the activity's retries are the polls (no history per poll). It ends with the
 * group once the person decided, or with null at the link refresh, the deadline, `checkNow`,
 * `cancel`, or after `pollWindowMs`.
 */
export async function runPollWindow(
  ctx: WindowContext,
  refreshAtMs: number | null,
): Promise<GroupSnapshot | null> {
  const { state, schedule, controls } = ctx;
  const now = Date.now();
  const plan = planWindow({
    nowMs: now,
    windowMs: ctx.pollWindowMs,
    deadlineAtMs: state.deadlineAtMs,
    refreshAtMs,
  });
  if (plan.windowMs < 250) {
    // Nothing worth polling for: sleep until the refresh or deadline that is due.
    await pause(ctx, plan.windowMs, controls.canceled);
    return null;
  }
  const interval = intervalAfter(now - state.scheduleStartedAtMs, schedule);
  state.nextPollAtMs = now;
  state.pollWindow = { openedAtMs: now, firstIntervalMs: interval, closesAtMs: now + plan.windowMs };
  ctx.board.showDetails();
  const window: WindowOptions = {
    summary: `poll consent status (every ${Math.round(interval / 1000)}s, backing off)`,
    windowMs: plan.windowMs,
    retry: {
      initialInterval: interval,
      backoffCoefficient: schedule.backoffCoefficient,
      maximumInterval: schedule.maxIntervalMs,
    },
    // After a nudge the person has just approved (most likely): this poll goes before routine ones.
    urgent: controls.takeUrgent(),
  };
  const pollsSoFar = () => pollOffsetsWithin(Date.now() - now, interval, schedule).length;
  controls.nudged = false;
  try {
    const result = await unlessInterrupted(
      () => heygenActivities(window).pollConsentStatus({ groupId: ctx.groupId }),
      controls.nudgedOrCanceled,
    );
    state.pollWindow = null;
    if (result.kind === 'interrupted') {
      // A window cut short reports no attempt count: take the schedule's (what the retries made so far).
      state.polls += pollsSoFar();
      if (controls.nudged) {
        // A hint (checkNow, or the consent page's redirect): poll at once, then tightly, then relax.
        log.info('checkNow: polling now', { groupId: ctx.groupId });
        state.scheduleStartedAtMs = Date.now();
      }
      return null;
    }
    state.polls += result.value.attempts;
    clearTrouble(state);
    return result.value.group;
  } catch (err) {
    const closed = closedWindow(err);
    if (!closed) {
      // A poll that ended the consent (e.g. 404: the group was deleted) was a poll too.
      state.pollWindow = null;
      state.polls += attemptDetailsOf(lastApplicationFailure(err))?.attempt ?? pollsSoFar();
      throw err;
    }
    state.pollWindow = null;
    // Without details the last attempt was lost (e.g. with its worker): count what the schedule made.
    state.polls += closed.details?.attempt ?? pollsSoFar();
    takeStock(state, closed.details, ctx.groupId);
    // The window's last poll just happened: the next window waits one interval (or what a 429 asked) first.
    const nextInterval = Math.max(
      intervalAfter(Date.now() - state.scheduleStartedAtMs, schedule),
      closed.details?.retryDelayMs ?? 0,
    );
    const wait = Math.min(nextInterval, (refreshAtMs ?? Number.MAX_SAFE_INTEGER) - Date.now());
    state.nextPollAtMs = Math.min(Date.now() + wait, state.deadlineAtMs);
    await pause(ctx, wait, controls.nudgedOrCanceled);
    return null;
  }
}
