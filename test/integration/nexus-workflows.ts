/** Workflows of a caller in another namespace, that ask for a consent through the Nexus endpoint. */
import { NexusOperationFailure } from '@temporalio/common';
import { createNexusServiceClient } from '@temporalio/workflow';
import type { AvatarConsentResult } from '../../src/contract/definitions.js';
import type { AvatarConsentInput } from '../../src/contract/schemas.js';
import { avatarConsentNexusService } from '../../src/nexus/service.js';

export type NexusCallerOutcome =
  | { kind: 'result'; result: AvatarConsentResult }
  | {
      kind: 'failed';
      message: string;
      cause: { name: string; type: string | undefined; message: string } | null;
    };

/** Runs `requestConsent` and waits for its typed result; a failed operation is returned, not thrown. */
export async function nexusConsentCaller(
  endpoint: string,
  input: AvatarConsentInput,
): Promise<NexusCallerOutcome> {
  const consent = createNexusServiceClient({ endpoint, service: avatarConsentNexusService });
  try {
    const result = await consent.executeOperation('requestConsent', input, { scheduleToCloseTimeout: '5m' });
    return { kind: 'result', result };
  } catch (err) {
    if (!(err instanceof NexusOperationFailure)) throw err;
    // A handler's refusal arrives as the cause: a Nexus HandlerError, whose `type` is e.g. BAD_REQUEST.
    const cause = err.cause;
    const type = cause && 'type' in cause && typeof cause.type === 'string' ? cause.type : undefined;
    return {
      kind: 'failed',
      message: err.message,
      cause: cause ? { name: cause.name, type, message: cause.message } : null,
    };
  }
}
