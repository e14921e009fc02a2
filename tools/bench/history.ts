/**
 * Reads real workflow histories and counts what a consent costs in Temporal: history events and
 * billable actions (Temporal Cloud's definition, see docs/benchmark.md for the exact rule).
 */
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';

type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;
const EventType = proto.temporal.api.enums.v1.EventType;

export interface RunHistory {
  runId: string;
  events: HistoryEvent[];
}

/** The time of an event in epoch ms. */
export function eventTimeMs(event: HistoryEvent): number {
  const ts = event.eventTime;
  if (!ts) return Number.NaN;
  const seconds = typeof ts.seconds === 'number' ? ts.seconds : Number(ts.seconds?.toString() ?? 0);
  return seconds * 1000 + Math.floor((ts.nanos ?? 0) / 1e6);
}

/** Every run of a workflow, from its first run through each continue-as-new. */
export async function fetchRunChain(
  client: Client,
  workflowId: string,
  firstRunId: string,
): Promise<RunHistory[]> {
  const runs: RunHistory[] = [];
  let runId: string | undefined = firstRunId;
  while (runId && runs.length < 1_000) {
    const history: proto.temporal.api.history.v1.IHistory = await client.workflow
      .getHandle(workflowId, runId)
      .fetchHistory();
    const events: HistoryEvent[] = history.events ?? [];
    runs.push({ runId, events });
    const last: HistoryEvent | undefined = events.at(-1);
    runId =
      last?.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        ? (last.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined)
        : undefined;
  }
  return runs;
}

export interface ActionBreakdown {
  /** WorkflowExecutionStarted: the start and each continue-as-new. */
  workflowStarts: number;
  /** ActivityTaskScheduled: each activity's first attempt. */
  activitiesScheduled: number;
  /** Each attempt after the first (a retry is an action; for the product these are the polls). */
  activityRetries: number;
  /** TimerStarted. */
  timers: number;
  /** WorkflowExecutionSignaled (received from a client, e.g. checkNow) + SignalExternalWorkflowExecutionInitiated (sent). */
  signals: number;
  /** UpsertWorkflowSearchAttributes (search attributes given at start are free). */
  searchAttributeUpserts: number;
  /** Child workflow starts, markers (local activities, side effects), accepted updates: none expected here. */
  other: number;
  total: number;
}

export interface HistoryCost {
  runs: number;
  events: number;
  /** The largest single run: what Temporal's per-run history limits apply to. */
  largestRunEvents: number;
  actions: ActionBreakdown;
  /** Activity executions and attempts by activity type. */
  byActivityType: Record<string, { scheduled: number; attempts: number }>;
  /** Attempts whose count came from the worker's log rather than from history (cancelled windows). */
  attemptsFromWorkerLogOnly: number;
}

/**
 * Counts events and billable actions over a workflow's runs. `workerAttempts` maps
 * `runId/activityId` to the highest attempt the worker ran: history records the attempt of an
 * activity only when it closes after being started (ActivityTaskStarted.attempt), not when it is
 * cancelled between attempts, which is what checkNow does to a polling window.
 */
export function countHistoryCost(
  runs: readonly RunHistory[],
  workerAttempts: ReadonlyMap<string, number>,
): HistoryCost {
  const actions: ActionBreakdown = {
    workflowStarts: 0,
    activitiesScheduled: 0,
    activityRetries: 0,
    timers: 0,
    signals: 0,
    searchAttributeUpserts: 0,
    other: 0,
    total: 0,
  };
  const byActivityType: HistoryCost['byActivityType'] = {};
  let events = 0;
  let largestRunEvents = 0;
  let attemptsFromWorkerLogOnly = 0;

  for (const run of runs) {
    events += run.events.length;
    largestRunEvents = Math.max(largestRunEvents, run.events.length);
    const startedAttempt = new Map<string, number>();
    for (const event of run.events) {
      if (event.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
        const attrs = event.activityTaskStartedEventAttributes;
        startedAttempt.set(String(attrs?.scheduledEventId ?? ''), attrs?.attempt ?? 1);
      }
    }
    for (const event of run.events) {
      switch (event.eventType) {
        case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
          actions.workflowStarts += 1;
          break;
        case EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: {
          const attrs = event.activityTaskScheduledEventAttributes;
          const fromHistory = startedAttempt.get(String(event.eventId ?? '')) ?? 0;
          const fromWorker = workerAttempts.get(`${run.runId}/${attrs?.activityId ?? ''}`) ?? 0;
          if (fromWorker > fromHistory) attemptsFromWorkerLogOnly += fromWorker - fromHistory;
          const attempts = Math.max(1, fromHistory, fromWorker);
          actions.activitiesScheduled += 1;
          actions.activityRetries += attempts - 1;
          const type = attrs?.activityType?.name ?? 'unknown';
          const entry = (byActivityType[type] ??= { scheduled: 0, attempts: 0 });
          entry.scheduled += 1;
          entry.attempts += attempts;
          break;
        }
        case EventType.EVENT_TYPE_TIMER_STARTED:
          actions.timers += 1;
          break;
        case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        case EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
          actions.signals += 1;
          break;
        case EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
          actions.searchAttributeUpserts += 1;
          break;
        case EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
        case EventType.EVENT_TYPE_MARKER_RECORDED:
        case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
          actions.other += 1;
          break;
        default:
          break;
      }
    }
  }
  actions.total =
    actions.workflowStarts +
    actions.activitiesScheduled +
    actions.activityRetries +
    actions.timers +
    actions.signals +
    actions.searchAttributeUpserts +
    actions.other;
  return { runs: runs.length, events, largestRunEvents, actions, byActivityType, attemptsFromWorkerLogOnly };
}

/** When the caller's workflow received the completion signal (its WorkflowExecutionSignaled event). */
export function signalReceivedAt(events: readonly HistoryEvent[], signalName: string): number | undefined {
  const event = events.find(
    (e) =>
      e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED &&
      e.workflowExecutionSignaledEventAttributes?.signalName === signalName,
  );
  return event ? eventTimeMs(event) : undefined;
}

export interface Milestones {
  /** When the first checkNow signal was recorded (the redirect's nudge). */
  checkNowAt?: number;
  /** When the poll that saw the approval completed. */
  approvalSeenAt?: number;
  /** When the workflow sent avatarConsentCompleted (SignalExternalWorkflowExecutionInitiated). */
  signalSentAt?: number;
}

/** Where the time between approval and the caller's signal went, from the consent's own history. */
export function milestonesOf(runs: readonly RunHistory[], pollActivityType: string): Milestones {
  const result: Milestones = {};
  for (const run of runs) {
    const typeBySchedule = new Map<string, string>();
    for (const event of run.events) {
      switch (event.eventType) {
        case EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
          typeBySchedule.set(
            String(event.eventId ?? ''),
            event.activityTaskScheduledEventAttributes?.activityType?.name ?? '',
          );
          break;
        case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
          if (event.workflowExecutionSignaledEventAttributes?.signalName === 'checkNow')
            result.checkNowAt ??= eventTimeMs(event);
          break;
        case EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: {
          const scheduled = String(event.activityTaskCompletedEventAttributes?.scheduledEventId ?? '');
          if (typeBySchedule.get(scheduled) === pollActivityType) result.approvalSeenAt = eventTimeMs(event);
          break;
        }
        case EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
          result.signalSentAt = eventTimeMs(event);
          break;
        default:
          break;
      }
    }
  }
  return result;
}
