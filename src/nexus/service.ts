/**
 * The consent as a Nexus service, for callers in other namespaces (or other teams' workflows):
 * `avatarConsent.requestConsent` takes the workflow's input and completes with its result.
 *
 * This file is the definition callers import (a workflow may: it loads nothing but nexus-rpc); the
 * handler behind it is ./handler.ts, registered on the worker's task queue. Nexus in the TypeScript
 * SDK is Public Preview: nexus-rpc 0.0.3 and @temporalio/nexus 1.24.0 are pinned, and a version
 * change must be tested (test/integration/nexus-consent.test.ts).
 */
import * as nexus from 'nexus-rpc';
import type { AvatarConsentResult } from '../contract/definitions.js';
import type { AvatarConsentInput } from '../contract/schemas.js';

export const AVATAR_CONSENT_NEXUS_SERVICE = 'avatarConsent';

export const avatarConsentNexusService = nexus.service(AVATAR_CONSENT_NEXUS_SERVICE, {
  /**
   * Starts the group's consent (or attaches to the one running: one consent per group) and completes
   * with its result, whatever the outcome. Asynchronous: a consent waits for a person, for days.
   */
  requestConsent: nexus.operation<AvatarConsentInput, AvatarConsentResult>(),
});
