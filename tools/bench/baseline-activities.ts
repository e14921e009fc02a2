/** The baseline's activities: the product's request and email steps, and a plain status check. */
import { createActivities, toGroupSnapshot } from '../../src/activities/index.js';
import type { ActivityDependencies } from '../../src/activities/index.js';
import type {
  GroupSnapshot,
  RequestConsentLinkInput,
  SendConsentEmailInput,
} from '../../src/activities/types.js';

export function createBaselineActivities(deps: ActivityDependencies) {
  const product = createActivities(deps);
  return {
    requestConsentLink: (input: RequestConsentLinkInput) => product.requestConsentLink(input),
    sendConsentEmail: (input: SendConsentEmailInput) => product.sendConsentEmail(input),
    /** One GET; any error (a 429 included) is thrown as is and retried by the default-style policy. */
    async checkConsentStatus(groupId: string): Promise<GroupSnapshot> {
      return toGroupSnapshot(await deps.heygen.getAvatarGroup(groupId));
    },
  };
}

export type BaselineActivities = ReturnType<typeof createBaselineActivities>;
