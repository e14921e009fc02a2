/** Workflows that exist only in tests: a caller that waits for the completion signal, and a parent. */
import { condition, defineQuery, setHandler, startChild } from '@temporalio/workflow';
import { avatarConsentCompletedSignal, workflowIdForGroup } from '../../src/contract/definitions.js';
import type { AvatarConsentInput, AvatarConsentResult } from '../../src/contract/index.js';
import { avatarConsentWorkflow } from '../../src/workflows/avatar-consent.js';

export { avatarConsentWorkflow };

export const receivedQuery = defineQuery<AvatarConsentResult[]>('received');

/** A caller's workflow: waits for `avatarConsentCompleted` and returns what it got. */
export async function callerWorkflow(): Promise<AvatarConsentResult> {
  const received: AvatarConsentResult[] = [];
  setHandler(avatarConsentCompletedSignal, (result) => {
    received.push(result);
  });
  setHandler(receivedQuery, () => received);
  await condition(() => received.length > 0);
  return received[0]!;
}

/** Starts the consent as a child without `notify`: the child must signal its parent. */
export async function parentWorkflow(
  input: AvatarConsentInput,
): Promise<{ signalled: AvatarConsentResult; childResult: AvatarConsentResult }> {
  let signalled: AvatarConsentResult | undefined;
  setHandler(avatarConsentCompletedSignal, (result) => {
    signalled = result;
  });
  const child = await startChild(avatarConsentWorkflow, {
    args: [input],
    workflowId: workflowIdForGroup(input.groupId),
  });
  const childResult = await child.result();
  await condition(() => signalled !== undefined);
  return { signalled: signalled!, childResult };
}
