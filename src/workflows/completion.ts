/** The end of a consent: the typed result, and the completion signal to whoever asked. */
import {
  ApplicationFailure,
  getExternalWorkflowHandle,
  log,
  metricMeter,
  workflowInfo,
} from '@temporalio/workflow';
import { DEFAULT_COMPLETION_SIGNAL, describeFieldIssues } from '../contract/definitions.js';
import type { AvatarConsentResult, CheckedInput, CompletionNotice, NotifyTarget } from '../contract/index.js';
import type { WindowContext } from './activity-windows.js';
import type { ConsentEnd, ConsentState } from './consent-state.js';

/** Records the outcome, counts it, and signals the caller (the notify target, else the parent workflow). */
export async function finish(
  ctx: WindowContext,
  notify: NotifyTarget | undefined,
  end: ConsentEnd,
): Promise<AvatarConsentResult> {
  const { state, groupId, controls, board } = ctx;
  Object.assign(state, {
    outcome: end.outcome,
    phase: 'done',
    nextPollAtMs: null,
    pollWindow: null,
    blocked: null,
  });
  board.publish();
  metricMeter
    .createCounter('avatar_consent_outcomes', '1', 'Consents finished, by outcome')
    .add(1, { outcome: end.outcome });
  if (end.outcome === 'canceled' && controls.cancel?.reason)
    end.error ??= { code: 'canceled', message: controls.cancel.reason };
  const result = resultOf(groupId, state, end);
  const notice = await notifyCaller(groupId, notify, result);
  if (notice) result.notification = notice;
  log.info('avatar consent finished', { groupId, outcome: end.outcome });
  return result;
}

export function resultOf(groupId: string, state: ConsentState, end: ConsentEnd): AvatarConsentResult {
  return {
    outcome: end.outcome,
    groupId,
    consentStatus: state.consentStatus,
    avatarStatus: state.avatarStatus,
    consentUrl: state.consentUrl,
    ...(end.outcome === 'approved'
      ? { approvedAt: new Date(state.approvedAtMs ?? Date.now()).toISOString() }
      : {}),
    ...(end.error ? { error: end.error } : {}),
    polls: state.polls,
    emailsSent: state.emailsSent,
    linkGeneration: state.generation,
  };
}

/**
 * Signals the caller: the `notify` target, else the parent workflow, else nobody. A caller that is
 * gone (finished, or never existed) is recorded in the notice; the consent still ends normally.
 */
export async function notifyCaller(
  groupId: string,
  notify: NotifyTarget | undefined,
  result: AvatarConsentResult,
): Promise<CompletionNotice | undefined> {
  const parent = workflowInfo().parent;
  const target = notify ?? (parent ? { workflowId: parent.workflowId, runId: parent.runId } : undefined);
  if (!target) return undefined;
  const signalName = notify?.signalName ?? DEFAULT_COMPLETION_SIGNAL;
  const notice: CompletionNotice = {
    workflowId: target.workflowId,
    ...(target.runId ? { runId: target.runId } : {}),
    signalName,
    delivered: false,
  };
  try {
    await getExternalWorkflowHandle(target.workflowId, target.runId).signal(signalName, result);
    notice.delivered = true;
  } catch (err) {
    notice.reason = err instanceof Error ? err.message : String(err);
    log.warn('completion signal not delivered', {
      groupId,
      target: target.workflowId,
      reason: notice.reason,
    });
  }
  return notice;
}

/**
 * Bad input ends the consent at once, with outcome `invalid_input` and every bad field, and the
 * caller is told like for any other outcome. Only when the notify target itself is invalid is there
 * nobody to tell: then the workflow fails (InvalidWorkflowInput), naming the fields.
 */
export async function endWithInvalidInput(
  checked: Extract<CheckedInput, { ok: false }>,
): Promise<AvatarConsentResult> {
  const message = `Invalid avatarConsentWorkflow input: ${describeFieldIssues(checked.fields)}`;
  if (checked.notifyInvalid) throw ApplicationFailure.nonRetryable(message, 'InvalidWorkflowInput');
  const groupId = checked.groupId ?? '';
  const result: AvatarConsentResult = {
    outcome: 'invalid_input',
    groupId,
    consentStatus: null,
    avatarStatus: null,
    consentUrl: null,
    error: { code: 'invalid_input', message, fields: checked.fields },
    polls: 0,
    emailsSent: 0,
    linkGeneration: 0,
  };
  log.warn('avatar consent input refused', { groupId, fields: checked.fields.map((field) => field.path) });
  const notice = await notifyCaller(groupId, checked.notify ?? undefined, result);
  if (notice) result.notification = notice;
  return result;
}
