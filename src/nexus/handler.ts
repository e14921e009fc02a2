/**
 * The handler of the `avatarConsent` Nexus service (./service.ts): each `requestConsent` starts the
 * consent workflow with the group's deterministic ID, or attaches to the one already running for the
 * group (USE_EXISTING: the Nexus caller is then told when that consent ends). Input is checked first,
 * so a bad one fails the operation at once (BAD_REQUEST, naming every field) instead of starting a
 * workflow that would only end as invalid_input.
 */
import { WorkflowRunOperationHandler, startWorkflow } from '@temporalio/nexus';
import * as nexus from 'nexus-rpc';
import {
  AvatarGroupIdAttribute,
  InvalidInputError,
  WORKFLOW_TYPE,
  parseAvatarConsentInput,
  workflowIdForGroup,
} from '../contract/index.js';
import type { AvatarConsentInput, AvatarConsentResult } from '../contract/index.js';
import type { avatarConsentWorkflow } from '../workflows/avatar-consent.js';
import { avatarConsentNexusService } from './service.js';

export interface AvatarConsentNexusOptions {
  /**
   * Set the `AvatarGroupId` search attribute at start (default true), as the starter does; the
   * namespace must have it registered.
   */
  searchAttributes?: boolean;
}

export function createAvatarConsentNexusHandler(options: AvatarConsentNexusOptions = {}) {
  return nexus.serviceHandler(avatarConsentNexusService, {
    requestConsent: new WorkflowRunOperationHandler<AvatarConsentInput, AvatarConsentResult>(
      async (ctx, input) => {
        let groupId: string;
        try {
          groupId = parseAvatarConsentInput(input).groupId;
        } catch (err) {
          if (!(err instanceof InvalidInputError)) throw err;
          // The message names fields and rules, never values: it reaches the caller's history.
          throw new nexus.HandlerError('BAD_REQUEST', err.message);
        }
        return startWorkflow<typeof avatarConsentWorkflow>(ctx, WORKFLOW_TYPE, {
          workflowId: workflowIdForGroup(groupId),
          workflowIdConflictPolicy: 'USE_EXISTING',
          args: [input],
          staticSummary: `Avatar consent for HeyGen group ${groupId}, requested through Nexus`,
          ...(options.searchAttributes === false
            ? {}
            : { typedSearchAttributes: [{ key: AvatarGroupIdAttribute, value: groupId }] }),
        });
      },
    ),
  });
}
