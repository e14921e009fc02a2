/**
 * The baseline: the consent flow as someone would write it by hand, for comparison.
 *
 *   request a consent link → email it → loop { poll HeyGen (one activity); sleep one minute } → signal the caller
 *
 * It reuses the product's request and email activities (so both systems pay the same for those
 * steps and send the same email) and polls with its own activity over the same HeyGen client. Every
 * duration is scaled like the product's: the one-minute sleep and the SDK's default retry policy
 * (1 s doubling to 100 s) are divided by the same factor. Deliberately naive, as hand-written loops
 * are: no continue-as-new, no link refresh, no Retry-After handling beyond what the client does.
 */
import { getExternalWorkflowHandle, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import { avatarConsentCompletedSignal } from '../../src/contract/index.js';
import type { AvatarConsentResult, ConsentOutcome } from '../../src/contract/index.js';
import type { GroupSnapshot } from '../../src/activities/types.js';
import type { BaselineActivities } from './baseline-activities.js';

export interface BaselineInput {
  groupId: string;
  recipient: { email: string; name?: string };
  notifyWorkflowId: string;
  /** The one-minute loop, scaled. */
  pollIntervalMs: number;
  /** 7 days, scaled. */
  deadlineMs: number;
  /** The SDK's default retry policy (1 s doubling to 100 s), scaled. */
  retryInitialIntervalMs: number;
  retryMaximumIntervalMs: number;
}

export async function baselineConsentWorkflow(input: BaselineInput): Promise<AvatarConsentResult> {
  const activities = proxyActivities<BaselineActivities>({
    startToCloseTimeout: '1m',
    retry: {
      initialInterval: input.retryInitialIntervalMs,
      backoffCoefficient: 2,
      maximumInterval: input.retryMaximumIntervalMs,
    },
  });
  const info = workflowInfo();
  const deadline = Date.now() + input.deadlineMs;

  const link = await activities.requestConsentLink({
    groupId: input.groupId,
    idempotencyKey: `baseline:${info.firstExecutionRunId}:g1`,
  });
  await activities.sendConsentEmail({
    groupId: input.groupId,
    to: input.recipient,
    avatarName: link.group.name,
    consentUrl: link.consentUrl,
    expiresAt: new Date(Date.now() + 24 * 3_600_000).toISOString(),
    generation: 1,
    messageKey: `baseline.${info.firstExecutionRunId}.g1`,
    reminder: false,
  });

  let polls = 0;
  let outcome: ConsentOutcome = 'expired';
  let group: GroupSnapshot;
  for (;;) {
    group = await activities.checkConsentStatus(input.groupId);
    polls += 1;
    if (group.consentStatus === 'approved') {
      outcome = 'approved';
      break;
    }
    if (Date.now() >= deadline) break;
    await sleep(input.pollIntervalMs);
  }

  const result: AvatarConsentResult = {
    outcome,
    groupId: input.groupId,
    consentStatus: group.consentStatus,
    avatarStatus: group.avatarStatus,
    consentUrl: link.consentUrl,
    ...(outcome === 'approved' ? { approvedAt: new Date().toISOString() } : {}),
    polls,
    emailsSent: 1,
    linkGeneration: 1,
  };
  await getExternalWorkflowHandle(input.notifyWorkflowId).signal(avatarConsentCompletedSignal, result);
  return result;
}
