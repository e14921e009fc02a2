/**
 * The caller's workflow in the benchmark: it waits for `avatarConsentCompleted` and returns what it
 * got. The time of its WorkflowExecutionSignaled event is when "the caller received" the result.
 */
import { condition, setHandler } from '@temporalio/workflow';
import { avatarConsentCompletedSignal } from '../../src/contract/index.js';
import type { AvatarConsentResult } from '../../src/contract/index.js';

export async function benchCallerWorkflow(): Promise<AvatarConsentResult> {
  let received: AvatarConsentResult | undefined;
  setHandler(avatarConsentCompletedSignal, (result) => {
    received ??= result;
  });
  await condition(() => received !== undefined);
  return received!;
}
