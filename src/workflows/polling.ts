/**
 * Pure schedule math for the consent workflow: poll intervals, windows, link refreshes, deadlines.
 * No I/O and no clock of its own (callers pass workflow time), so it is unit-tested directly.
 */

import { workflowInfo } from '@temporalio/workflow';
import type { ResolvedPolicy } from '../contract/definitions.js';

export interface BackoffSchedule {
  initialIntervalMs: number;
  backoffCoefficient: number;
  maxIntervalMs: number;
}

/**
 * The interval the backoff has reached after `elapsedMs` of polling that started at the initial
 * interval. A new polling window starts from here, so taking stock between windows does not
 * reset the schedule to fast polling.
 */
export function intervalAfter(elapsedMs: number, schedule: BackoffSchedule): number {
  let interval = schedule.initialIntervalMs;
  let remaining = Math.max(0, elapsedMs);
  while (remaining >= interval && interval < schedule.maxIntervalMs) {
    remaining -= interval;
    interval = Math.min(schedule.maxIntervalMs, interval * schedule.backoffCoefficient);
  }
  return Math.min(interval, schedule.maxIntervalMs);
}

/** Times (relative to the first poll) of the polls a window makes, first one at 0; for estimates and benchmarks. */
export function pollOffsetsWithin(
  windowMs: number,
  firstIntervalMs: number,
  schedule: BackoffSchedule,
): number[] {
  const offsets: number[] = [];
  let at = 0;
  let interval = Math.min(firstIntervalMs, schedule.maxIntervalMs);
  while (at <= windowMs && offsets.length < 10_000) {
    offsets.push(at);
    at += interval;
    interval = Math.min(schedule.maxIntervalMs, interval * schedule.backoffCoefficient);
  }
  return offsets;
}

export interface WindowPlan {
  /** How long the polling activity may run (its schedule-to-close timeout). */
  windowMs: number;
  /** Why the window ends when it does. */
  endsAt: 'window' | 'refresh' | 'deadline';
}

/**
 * The next polling window: the configured length, cut short by the link refresh or the deadline,
 * so the workflow wakes exactly when it has something to do.
 */
export function planWindow(args: {
  nowMs: number;
  windowMs: number;
  deadlineAtMs: number;
  refreshAtMs: number | null;
}): WindowPlan {
  let end = args.nowMs + args.windowMs;
  let endsAt: WindowPlan['endsAt'] = 'window';
  if (args.refreshAtMs !== null && args.refreshAtMs <= end) {
    end = args.refreshAtMs;
    endsAt = 'refresh';
  }
  if (args.deadlineAtMs <= end) {
    end = args.deadlineAtMs;
    endsAt = 'deadline';
  }
  return { windowMs: Math.max(0, end - args.nowMs), endsAt };
}

/** When the current link should be replaced, or null when no refresh is left. */
export function refreshDueAt(args: {
  linkIssuedAtMs: number;
  linkTtlMs: number;
  generation: number;
  maxLinkRefreshes: number;
}): number | null {
  const refreshesUsed = args.generation - 1;
  if (refreshesUsed >= args.maxLinkRefreshes) return null;
  return args.linkIssuedAtMs + args.linkTtlMs;
}

/** The polling schedule a policy asks for. */
export function scheduleOf(policy: ResolvedPolicy): BackoffSchedule {
  return {
    initialIntervalMs: policy.pollInitialIntervalMs,
    backoffCoefficient: policy.pollBackoffCoefficient,
    maxIntervalMs: policy.pollMaxIntervalMs,
  };
}

/** Continue-as-new well before Temporal's history limits. */
const HISTORY_EVENTS_BEFORE_CONTINUE_AS_NEW = 4_000;
/** Test-only memo: a lower threshold, to record and test a continue-as-new in a few dozen events. */
export const TEST_CONTINUE_AS_NEW_MEMO = 'avatarConsent.testContinueAsNewAfterEvents';

/** Whether the run's history is long enough to continue as new (the server may suggest it too). */
export function continueAsNewDue(): boolean {
  const info = workflowInfo();
  const testThreshold = info.memo?.[TEST_CONTINUE_AS_NEW_MEMO];
  const threshold = typeof testThreshold === 'number' ? testThreshold : HISTORY_EVENTS_BEFORE_CONTINUE_AS_NEW;
  return info.continueAsNewSuggested || info.historyLength > threshold;
}
