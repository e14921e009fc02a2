/**
 * The invariants of a chaos run that are pure functions of what was recorded: the sandbox ledger and
 * consents, and each workflow's result and history (the emails are in emails.ts). Kept apart from
 * the orchestration so each can be read (and tested) on its own.
 */
import type { AvatarConsentResult } from '../../src/contract/index.js';
import type { ConsentRecord, LedgerEntry } from '../heygen-sandbox/index.js';
import type { Fate } from './plan.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface GroupFinal {
  groupId: string;
  email: string;
  fate: Fate;
  expectedOutcome: string;
  /** Temporal's execution status name (COMPLETED, FAILED, RUNNING...). */
  status: string;
  result: AvatarConsentResult | null;
  /** When we approved (epoch ms), approved groups only. */
  approvedAt: number | null;
  /** When HeyGen's group reached its final state by our hand (approved, failed or deleted), epoch ms. */
  decidedAt: number | null;
  closedAt: number | null;
  /** When the workflow's deadline passes, epoch ms (from its start). */
  deadlineAt: number | null;
}

const CONSENT_PATH = /^\/v3\/avatars\/([^/]+)\/consent$/;

export function list(items: string[], max = 8): string {
  return items.length <= max
    ? items.join('; ')
    : `${items.slice(0, max).join('; ')}; … ${items.length - max} more`;
}

// ---------------------------------------------------------------------------------------------
// Outcomes

export function checkOutcomes(finals: readonly GroupFinal[]): Check[] {
  const notCompleted = finals.filter((f) => f.status !== 'COMPLETED');
  const wrong = finals.filter((f) => f.status === 'COMPLETED' && f.result?.outcome !== f.expectedOutcome);
  return [
    {
      name: 'every workflow completed (none failed, terminated or still running)',
      ok: notCompleted.length === 0,
      detail:
        notCompleted.length === 0
          ? `${finals.length} of ${finals.length} completed`
          : list(notCompleted.map((f) => `${f.groupId}: ${f.status}`)),
    },
    {
      name: 'every workflow reached the right outcome',
      ok: wrong.length === 0 && notCompleted.length === 0,
      detail:
        wrong.length === 0
          ? `${finals.length - notCompleted.length} as expected`
          : list(
              wrong.map(
                (f) =>
                  `${f.groupId} (${f.fate}): expected ${f.expectedOutcome}, got ${f.result?.outcome ?? 'none'}`,
              ),
            ),
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// Exactly one consent request per group and link generation

export interface ConsentLedgerFigures {
  consentPosts: number;
  processed: number;
  replayed: number;
  inProgress409: number;
  otherStatuses: number;
  idempotencyKeys: number;
  keysNeverProcessed: number;
  keysProcessedMoreThanOnce: number;
  /** (group, link generation) pairs HeyGen made more than one link for, whatever the execution. */
  generationsProcessedMoreThanOnce: number;
  postsWithoutKey: number;
  /** Links HeyGen made for a workflow that had ended (deadline) before it learned of them. */
  abandonedLinks: number;
}

export function checkConsentRequests(
  ledger: readonly LedgerEntry[],
  consents: readonly ConsentRecord[],
  finals: readonly GroupFinal[],
): { checks: Check[]; figures: ConsentLedgerFigures } {
  const byKey = new Map<string, { groupId: string; processed: number; replayed: number }>();
  const figures: ConsentLedgerFigures = {
    consentPosts: 0,
    processed: 0,
    replayed: 0,
    inProgress409: 0,
    otherStatuses: 0,
    idempotencyKeys: 0,
    keysNeverProcessed: 0,
    keysProcessedMoreThanOnce: 0,
    generationsProcessedMoreThanOnce: 0,
    postsWithoutKey: 0,
    abandonedLinks: 0,
  };
  for (const entry of ledger) {
    const match = entry.method === 'POST' ? CONSENT_PATH.exec(entry.path) : null;
    if (!match) continue;
    figures.consentPosts += 1;
    if (entry.idempotencyKey === null) {
      figures.postsWithoutKey += 1;
      continue;
    }
    const slot = byKey.get(entry.idempotencyKey) ?? { groupId: match[1]!, processed: 0, replayed: 0 };
    byKey.set(entry.idempotencyKey, slot);
    if (entry.status === 200 && !entry.replayed) {
      slot.processed += 1;
      figures.processed += 1;
    } else if (entry.status === 200) {
      slot.replayed += 1;
      figures.replayed += 1;
    } else if (entry.status === 409) figures.inProgress409 += 1;
    else figures.otherStatuses += 1;
  }
  figures.idempotencyKeys = byKey.size;
  const twice: string[] = [];
  for (const [key, slot] of byKey) {
    if (slot.processed === 0) figures.keysNeverProcessed += 1;
    if (slot.processed > 1) twice.push(`${key} processed ${slot.processed}×`);
  }
  figures.keysProcessedMoreThanOnce = twice.length;
  // A key names one execution: a workflow lost and started again would make a second link for the
  // same group and generation under a new key. Count those too.
  const perGeneration = new Map<string, number>();
  for (const [key, slot] of byKey) {
    const generation = /:g(\d+)$/.exec(key)?.[1] ?? '?';
    const pair = `${slot.groupId} g${generation}`;
    if (slot.processed > 0) perGeneration.set(pair, (perGeneration.get(pair) ?? 0) + slot.processed);
  }
  for (const [pair, n] of perGeneration) if (n > 1) twice.push(`${pair}: ${n} links across keys`);
  figures.generationsProcessedMoreThanOnce = [...perGeneration.values()].filter((n) => n > 1).length;

  // Per group: one processed key per link generation, named after one execution and its generations.
  const mismatched: string[] = [];
  let abandonedLinks = 0;
  // Workflows without a result are reported by the outcome check; their counts cannot be compared.
  for (const final of finals) {
    if (final.result === null) continue;
    const generations = final.result?.linkGeneration ?? 0;
    const keys = [...byKey]
      .filter(([, slot]) => slot.groupId === final.groupId && slot.processed > 0)
      .map(([key]) => key);
    const links = consents.filter((c) => c.groupId === final.groupId).length;
    const suffixes = keys
      .map((key) => /:g(\d+)$/.exec(key)?.[1] ?? '?')
      .sort((a, b) => Number(a) - Number(b));
    const runs = new Set(keys.map((key) => key.replace(/:g\d+$/, '')));
    // A link requested at the very end can be processed by HeyGen after the workflow stopped waiting
    // for it (deadline or cancel): it was still requested once, the workflow just never used it.
    const abandoned =
      ['expired', 'canceled'].includes(final.result.outcome) &&
      keys.length === generations + 1 &&
      suffixes.at(-1) === String(generations + 1);
    if (abandoned) abandonedLinks += 1;
    const counted = abandoned ? generations + 1 : generations;
    const expectedSuffixes = Array.from({ length: counted }, (_, i) => String(i + 1));
    if (
      keys.length !== counted ||
      links !== counted ||
      runs.size > 1 ||
      suffixes.join(',') !== expectedSuffixes.join(',')
    ) {
      mismatched.push(
        `${final.groupId}: linkGeneration ${generations}, processed keys ${keys.length} (g${suffixes.join(',g')}), HeyGen links ${links}, executions ${runs.size}`,
      );
    }
  }
  figures.abandonedLinks = abandonedLinks;
  return {
    figures,
    checks: [
      {
        name: 'HeyGen processed one consent request per idempotency key, and per group and generation (replays aside)',
        ok: twice.length === 0 && figures.postsWithoutKey === 0,
        detail:
          twice.length === 0 && figures.postsWithoutKey === 0
            ? `${figures.idempotencyKeys} keys; ${figures.processed} processed, ${figures.replayed} replayed, ${figures.inProgress409} × 409`
            : list([
                ...twice,
                ...(figures.postsWithoutKey ? [`${figures.postsWithoutKey} POSTs without a key`] : []),
              ]),
      },
      {
        name: 'one consent link per group and link generation (keys g1..gN of one execution)',
        ok: mismatched.length === 0,
        detail:
          mismatched.length === 0
            ? `${finals.filter((f) => f.result !== null).length} finished groups consistent`
            : list(mismatched),
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// Histories

export interface HistoryFigures {
  workflowTaskFailed: number;
  workflowTaskTimedOut: number;
  activityTaskTimedOut: number;
  activityTaskFailed: number;
  events: number;
}

export interface HistoryEventLike {
  workflowTaskFailedEventAttributes?: {
    cause?: unknown;
    failure?: { message?: string | null } | null;
  } | null;
  workflowTaskTimedOutEventAttributes?: unknown;
  activityTaskTimedOutEventAttributes?: unknown;
  activityTaskFailedEventAttributes?: unknown;
}

export function checkHistories(histories: ReadonlyMap<string, readonly HistoryEventLike[]>): {
  checks: Check[];
  figures: HistoryFigures;
} {
  const figures: HistoryFigures = {
    workflowTaskFailed: 0,
    workflowTaskTimedOut: 0,
    activityTaskTimedOut: 0,
    activityTaskFailed: 0,
    events: 0,
  };
  const failed: string[] = [];
  for (const [workflowId, events] of histories) {
    figures.events += events.length;
    for (const event of events) {
      if (event.workflowTaskFailedEventAttributes) {
        figures.workflowTaskFailed += 1;
        const attrs = event.workflowTaskFailedEventAttributes;
        failed.push(`${workflowId}: cause ${String(attrs.cause)} ${attrs.failure?.message ?? ''}`.trim());
      }
      if (event.workflowTaskTimedOutEventAttributes) figures.workflowTaskTimedOut += 1;
      if (event.activityTaskTimedOutEventAttributes) figures.activityTaskTimedOut += 1;
      if (event.activityTaskFailedEventAttributes) figures.activityTaskFailed += 1;
    }
  }
  return {
    figures,
    checks: [
      {
        name: 'no workflow task failed (no non-determinism) in any history',
        ok: failed.length === 0,
        detail:
          failed.length === 0
            ? `${histories.size} histories, ${figures.events} events scanned`
            : list(failed),
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------

export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
