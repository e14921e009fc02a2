/**
 * The consent workflow with one careless change (a timer before anything else), as a developer
 * might make it without patched(): replaying old histories through it must fail.
 */
import { sleep } from '@temporalio/workflow';
import type { AvatarConsentInput, AvatarConsentResult } from '../../src/contract/index.js';
import { avatarConsentWorkflow as current } from '../../src/workflows/avatar-consent.js';
import type { CarriedState } from '../../src/workflows/consent-state.js';

export async function avatarConsentWorkflow(
  input: AvatarConsentInput,
  carried?: CarriedState,
): Promise<AvatarConsentResult> {
  await sleep('1s');
  return current(input, carried);
}
