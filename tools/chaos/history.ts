/** What the checks read from a workflow's history: its activity steps, when each began and how it ended. */
import { defaultPayloadConverter } from '@temporalio/common';
import type { PayloadCodec, ProtoFailure } from '@temporalio/common';
import { decodeFailure } from '@temporalio/common/lib/internal-non-workflow/codec-helpers.js';
import type proto from '@temporalio/proto';

import { eventTimeMs } from '../bench/history.js';

export type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;
export { eventTimeMs };

export interface ActivityStep {
  /** Activity type, e.g. sendConsentEmail. */
  type: string;
  scheduledAt: number;
  end: 'completed' | 'failed' | 'timed_out' | 'canceled' | 'open';
  endedAt: number | null;
  /** For a window that timed out: its last attempt's failure, as Temporal kept it (null when that attempt was lost). */
  lastFailure: string | null;
}

/** A failure's own words: with encrypted failures, its message is in its encoded attributes. */
function messageOf(failure: ProtoFailure | null | undefined): string | null {
  if (!failure) return null;
  if (failure.encodedAttributes) {
    const attrs = defaultPayloadConverter.fromPayload<{ message?: unknown }>(failure.encodedAttributes);
    if (typeof attrs?.message === 'string') return attrs.message;
  }
  return failure.message ?? null;
}

/**
 * The last-attempt failure text of each activity that failed or timed out, by event ID, decoded
 * with the run's codecs (the product encrypts failure messages along with the payloads).
 */
export async function failureTexts(
  events: readonly HistoryEvent[],
  codecs: PayloadCodec[],
): Promise<Map<string, string>> {
  const texts = new Map<string, string>();
  for (const event of events) {
    const failure =
      event.activityTaskTimedOutEventAttributes?.failure ??
      event.activityTaskFailedEventAttributes?.failure ??
      event.activityTaskStartedEventAttributes?.lastFailure;
    if (!failure) continue;
    const decoded = await decodeFailure(codecs, failure).catch(() => failure);
    // A window that timed out carries its last attempt's failure as the cause.
    const text = event.activityTaskTimedOutEventAttributes
      ? messageOf(decoded.cause)
      : event.activityTaskStartedEventAttributes
        ? messageOf(decoded)
        : (messageOf(decoded.cause) ?? messageOf(decoded));
    if (text !== null) texts.set(String(event.eventId), text);
  }
  return texts;
}

/** Each activity the workflow scheduled, in order, with how it ended (`texts`: decoded failure texts by event ID). */
export function activitySteps(
  events: readonly HistoryEvent[],
  texts: ReadonlyMap<string, string> = new Map(),
): ActivityStep[] {
  const byScheduledId = new Map<string, ActivityStep>();
  const steps: ActivityStep[] = [];
  for (const event of events) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const step: ActivityStep = {
        type: scheduled.activityType?.name ?? '?',
        scheduledAt: eventTimeMs(event),
        end: 'open',
        endedAt: null,
        lastFailure: null,
      };
      byScheduledId.set(String(event.eventId), step);
      steps.push(step);
      continue;
    }
    const closing: Array<[ActivityStep['end'], { scheduledEventId?: unknown } | null | undefined]> = [
      ['completed', event.activityTaskCompletedEventAttributes],
      ['failed', event.activityTaskFailedEventAttributes],
      ['timed_out', event.activityTaskTimedOutEventAttributes],
      ['canceled', event.activityTaskCanceledEventAttributes],
    ];
    for (const [end, attrs] of closing) {
      const step = attrs ? byScheduledId.get(String(attrs.scheduledEventId)) : undefined;
      if (!step) continue;
      step.end = end;
      step.endedAt = eventTimeMs(event);
      const failure =
        event.activityTaskTimedOutEventAttributes?.failure ??
        event.activityTaskFailedEventAttributes?.failure;
      step.lastFailure =
        texts.get(String(event.eventId)) ??
        failure?.cause?.message ??
        (end === 'failed' ? (failure?.message ?? null) : null);
    }
  }
  return steps;
}

/** When the run closed (its last event), epoch ms; null for an empty history. */
export function closedAt(events: readonly HistoryEvent[]): number | null {
  const last = events.at(-1);
  return last ? eventTimeMs(last) : null;
}
