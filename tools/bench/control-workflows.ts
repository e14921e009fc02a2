/**
 * The control: the product's own four activities (look up, request the link, email, poll) in the
 * plainest workflow that can run them, on the same stack, so that product ÷ control is what the
 * product's extras cost: its windows, status, search attributes, gateway and HeyGen queue.
 *
 *   look up → request a link → email it → poll (one activity; its retries are the polls) → signal the caller
 *
 * The poll retries on the product's schedule (first interval, ×2, cap) until the deadline; the other
 * steps retry as the product's steps do (1 s doubling to 1 min). No continue-as-new, no link refresh,
 * no checkNow, no queries: nothing the four activities do not need.
 */
import { getExternalWorkflowHandle, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { ConsentActivities } from '../../src/activities/index.js';
import { STEP_MAX_RETRY_INTERVAL_MS } from '../../src/config/timeouts.js';
import { avatarConsentCompletedSignal } from '../../src/contract/definitions.js';
import type { AvatarConsentResult } from '../../src/contract/definitions.js';

export interface ControlInput {
  groupId: string;
  recipient: { email: string; name?: string };
  notifyWorkflowId: string;
  /** The product's polling schedule, scaled like its policy. */
  pollInitialIntervalMs: number;
  pollMaxIntervalMs: number;
  deadlineMs: number;
}

export async function controlConsentWorkflow(input: ControlInput): Promise<AvatarConsentResult> {
  const steps = proxyActivities<ConsentActivities>({
    startToCloseTimeout: '1m',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: STEP_MAX_RETRY_INTERVAL_MS },
  });
  const { pollConsentStatus } = proxyActivities<ConsentActivities>({
    startToCloseTimeout: '1m',
    scheduleToCloseTimeout: input.deadlineMs,
    retry: {
      initialInterval: input.pollInitialIntervalMs,
      backoffCoefficient: 2,
      maximumInterval: input.pollMaxIntervalMs,
    },
  });
  const runId = workflowInfo().firstExecutionRunId;

  const group = await steps.lookupAvatarGroup(input.groupId);
  const link = await steps.requestConsentLink({
    groupId: input.groupId,
    idempotencyKey: `control:${runId}:g1`,
  });
  await steps.sendConsentEmail({
    groupId: input.groupId,
    to: input.recipient,
    avatarName: group.name,
    consentUrl: link.consentUrl,
    expiresAt: new Date(Date.now() + 24 * 3_600_000).toISOString(),
    generation: 1,
    messageKey: `control.${runId}.g1`,
    reminder: false,
  });
  const polled = await pollConsentStatus({ groupId: input.groupId });

  const approved = polled.group.consentStatus === 'approved';
  const result: AvatarConsentResult = {
    outcome: approved ? 'approved' : 'failed',
    groupId: input.groupId,
    consentStatus: polled.group.consentStatus,
    avatarStatus: polled.group.avatarStatus,
    consentUrl: link.consentUrl,
    ...(approved ? { approvedAt: new Date().toISOString() } : {}),
    polls: polled.attempts,
    emailsSent: 1,
    linkGeneration: 1,
  };
  await getExternalWorkflowHandle(input.notifyWorkflowId).signal(avatarConsentCompletedSignal, result);
  return result;
}
