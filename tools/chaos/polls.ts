/**
 * Polls counted right across crashes: each workflow's `result.polls` against the polls HeyGen saw.
 *
 * A polling window is one activity whose retries are the polls, so Temporal numbers them: attempt
 * k of a window means k polls were made in it by then (attempts the rate gate held back included,
 * as `polls` counts them too). The probe tags every HeyGen request with its activity and attempt, so
 * the highest attempt HeyGen saw of each window is a floor for the polls that window made. A
 * workflow that counts fewer than the sum of its windows' floors has lost polls — what happened when
 * a worker died with a window's last attempt. Counting more is expected where a window's last
 * attempts never reached HeyGen (held back by the rate gate, refused during an outage, or counted
 * from the schedule when they were lost); the figures show how much.
 */
import type { Check, GroupFinal } from './checks.js';
import { list } from './checks.js';
import type { ProxyRecord } from './retry-after.js';

export interface PollFigures {
  /** Sum of result.polls. */
  counted: number;
  /** Sum over windows of the highest attempt HeyGen saw. */
  seenAttempts: number;
  /** Poll requests that reached HeyGen. */
  seenRequests: number;
  windows: number;
  undercountedGroups: number;
  /** The largest result.polls − seen attempts of one group. */
  maxOvercount: number;
}

const POLL_ACTIVITY = 'pollConsentStatus';

export function checkPolls(
  finals: readonly GroupFinal[],
  records: readonly ProxyRecord[],
): { checks: Check[]; figures: PollFigures } {
  const windows = new Map<string, Map<string, number>>();
  /** The HeyGen answer to each group's last poll attempt seen (what ended its last window). */
  const lastAnswer = new Map<string, { attempt: number; status: number; at: number }>();
  let seenRequests = 0;
  for (const record of records) {
    if (record.activity?.type !== POLL_ACTIVITY || record.method !== 'GET') continue;
    const groupId = /^\/v3\/avatars\/([^/]+)$/.exec(record.path)?.[1];
    if (!groupId) continue;
    seenRequests += 1;
    const byWindow = windows.get(groupId) ?? new Map<string, number>();
    const key = `${record.activity.runId}/${record.activity.id}`;
    byWindow.set(key, Math.max(byWindow.get(key) ?? 0, record.activity.attempt));
    windows.set(groupId, byWindow);
    if (record.at >= (lastAnswer.get(groupId)?.at ?? 0))
      lastAnswer.set(groupId, { attempt: record.activity.attempt, status: record.status, at: record.at });
  }
  const figures: PollFigures = {
    counted: 0,
    seenAttempts: 0,
    seenRequests,
    windows: 0,
    undercountedGroups: 0,
    maxOvercount: 0,
  };
  const under: string[] = [];
  for (const final of finals) {
    if (final.result === null) continue;
    const byWindow = windows.get(final.groupId) ?? new Map<string, number>();
    const seen = [...byWindow.values()].reduce((a, b) => a + b, 0);
    figures.counted += final.result.polls;
    figures.seenAttempts += seen;
    figures.windows += byWindow.size;
    figures.maxOvercount = Math.max(figures.maxOvercount, final.result.polls - seen);
    if (final.result.polls < seen) {
      figures.undercountedGroups += 1;
      const last = lastAnswer.get(final.groupId);
      under.push(
        `${final.groupId} (${final.result.outcome}): counted ${final.result.polls}, HeyGen saw attempts up to ${seen} ` +
          `over ${byWindow.size} window(s); its last poll was answered ${last?.status || 'nothing'}`,
      );
    }
  }
  return {
    figures,
    checks: [
      {
        name: 'polls counted right across crashes: no workflow counts fewer polls than HeyGen saw',
        ok: under.length === 0 && (figures.seenRequests > 0 || finals.length === 0),
        detail:
          under.length === 0
            ? `${figures.counted} counted, ${figures.seenAttempts} seen (highest attempt per window, ${figures.windows} windows, ${figures.seenRequests} requests)`
            : list(under),
      },
    ],
  };
}
