/**
 * The consent activities: thin Temporal adapters over the HeyGen client and the mailer. They do the
 * I/O, turn results into plain return values and errors into ApplicationFailures (see ./failures.ts).
 * Built by a factory so that worker.ts wires real clients and tests wire whatever they need.
 */
import { activityInfo, log, metricMeter } from '@temporalio/activity';
import type { ConsentEmail, Mailer } from '../email/index.js';
import { ReturnLinkError, buildReturnUrl } from '../gateway/tokens.js';
import type { ReturnLinkConfig } from '../gateway/tokens.js';
import type { AvatarGroupItem, HeyGenClient } from '../heygen/index.js';
import { HeyGenError } from '../heygen/index.js';
import { consentDecision, isKnownConsentStatus } from '../rules/consent-decision.js';
import { createInputActivities } from './check-input.js';
import type { InputActivities, RerouteRules } from './check-input.js';
import { consentPending, scrubbing, scrubbingConsentText, toActivityFailure } from './failures.js';
import type {
  ConsentLink,
  GroupSnapshot,
  PollConsentInput,
  PollOutcome,
  RequestConsentLinkInput,
  SendConsentEmailInput,
  SentEmail,
} from './types.js';

export type HeyGenApi = Pick<HeyGenClient, 'createConsent' | 'getAvatarGroup'>;
export type ConsentMailer = Pick<Mailer, 'sendConsentEmail'>;

export interface ActivityDependencies {
  heygen: HeyGenApi;
  mailer: ConsentMailer;
  /** Domain of the Message-IDs, taken from EMAIL_FROM. */
  messageIdDomain: string;
  /** When set, HeyGen's reroute_url points at the gateway, which signals checkNow (src/gateway). */
  returnLinks?: ReturnLinkConfig | undefined;
  /** What this deployment allows as a caller's rerouteUrl (default: https only, any host). */
  rerouteRules?: RerouteRules | undefined;
}

export function toGroupSnapshot(group: AvatarGroupItem): GroupSnapshot {
  return {
    groupId: group.id,
    name: group.name,
    consentStatus: group.consent_status ?? null,
    avatarStatus: group.status ?? null,
    error: group.error ? { code: group.error.code, message: group.error.message } : null,
  };
}

/**
 * Counts a HeyGen call by operation and HTTP status (`not_sent` when the rate gate or a local check
 * kept it from going out, `network` for timeouts and connection errors), for the worker's Prometheus metrics.
 */
async function counted<T>(operation: 'get_group' | 'create_consent', call: () => Promise<T>): Promise<T> {
  const requests = metricMeter.createCounter(
    'avatar_consent_heygen_requests',
    '1',
    'HeyGen requests by status',
  );
  try {
    const value = await call();
    requests.add(1, { operation, status: '2xx' });
    return value;
  } catch (err) {
    const status =
      err instanceof HeyGenError
        ? (err.status ?? (err.code === 'timeout' || err.code === 'network_error' ? 'network' : 'not_sent'))
        : 'error';
    requests.add(1, { operation, status: String(status) });
    if (status === 429)
      metricMeter.createCounter('avatar_consent_heygen_rate_limited', '1', 'HeyGen 429 answers').add(1);
    throw err;
  }
}

/**
 * The reroute_url HeyGen sends the person's browser to: our gateway's signed return link (which
 * nudges the workflow, then forwards to the caller's rerouteUrl), or the caller's URL as given.
 */
function rerouteUrlFor(
  input: RequestConsentLinkInput,
  returnLinks: ReturnLinkConfig | undefined,
): string | null {
  const info = activityInfo();
  const workflowId = info.workflowExecution?.workflowId;
  if (!returnLinks || !workflowId) return input.rerouteUrl ?? null;
  try {
    return buildReturnUrl({
      publicBaseUrl: returnLinks.publicBaseUrl,
      workflowId,
      ...(input.rerouteUrl ? { finalRedirect: input.rerouteUrl } : {}),
      ttlMs: returnLinks.ttlMs,
      secrets: returnLinks.secrets,
      // The first attempt's schedule time: every retry sends the same body with the same Idempotency-Key.
      nowMs: info.scheduledTimestampMs,
    });
  } catch (err) {
    if (!(err instanceof ReturnLinkError) || err.code !== 'too_long') throw err;
    log.warn('return link too long; sending the caller rerouteUrl to HeyGen', { groupId: input.groupId });
    return input.rerouteUrl ?? null;
  }
}

/** The activities that call HeyGen: the HeyGen task queue's worker registers exactly these. */
export function createHeyGenActivities({
  heygen,
  returnLinks,
}: Pick<ActivityDependencies, 'heygen' | 'returnLinks'>) {
  return {
    async lookupAvatarGroup(groupId: string): Promise<GroupSnapshot> {
      const { attempt } = activityInfo();
      try {
        return toGroupSnapshot(await counted('get_group', () => heygen.getAvatarGroup(groupId)));
      } catch (err) {
        throw toActivityFailure(err, attempt);
      }
    },

    async requestConsentLink(input: RequestConsentLinkInput): Promise<ConsentLink> {
      const { attempt } = activityInfo();
      try {
        const { avatarGroup, url } = await counted('create_consent', () =>
          heygen.createConsent(
            input.groupId,
            { reroute_url: rerouteUrlFor(input, returnLinks), consent_text: input.consentText ?? null },
            { idempotencyKey: input.idempotencyKey },
          ),
        );
        log.info('consent link requested', {
          groupId: input.groupId,
          idempotencyKey: input.idempotencyKey,
          attempt,
        });
        return { consentUrl: url, group: toGroupSnapshot(avatarGroup) };
      } catch (err) {
        // HeyGen may quote the consent text back (URLs it quotes are scrubbed by the classifier).
        const failure = toActivityFailure(err, attempt, {}, scrubbingConsentText(input.consentText));
        log.warn('consent request failed', {
          groupId: input.groupId,
          type: failure.type,
          attempt,
          error: failure.message,
        });
        throw failure;
      }
    },

    /**
     * One poll. Its retries are the polling schedule (Temporal's infrequent-polling pattern): a pending
     * answer is a benign retryable failure, so the server waits between polls and history does not grow.
     */
    async pollConsentStatus(input: PollConsentInput): Promise<PollOutcome> {
      const { attempt } = activityInfo();
      let group: GroupSnapshot;
      try {
        group = toGroupSnapshot(await counted('get_group', () => heygen.getAvatarGroup(input.groupId)));
      } catch (err) {
        throw toActivityFailure(err, attempt);
      }
      if (consentDecision(group)) return { group, attempts: attempt };
      if (!isKnownConsentStatus(group.consentStatus)) {
        // HeyGen's consent_status is an open string: keep polling, but make the unknown value visible.
        log.warn('unrecognised consent_status, still polling', {
          groupId: input.groupId,
          consentStatus: group.consentStatus,
        });
      }
      throw consentPending({
        attempt,
        consentStatus: group.consentStatus,
        avatarStatus: group.avatarStatus,
        error: null,
      });
    },
  };
}

/** The email activity: it runs on the workflow's own task queue. */
export function createEmailActivities({
  mailer,
  messageIdDomain,
}: Pick<ActivityDependencies, 'mailer' | 'messageIdDomain'>) {
  return {
    async sendConsentEmail(input: SendConsentEmailInput): Promise<SentEmail> {
      const { attempt } = activityInfo();
      const email: ConsentEmail = {
        to: input.to,
        avatarName: input.avatarName,
        groupId: input.groupId,
        consentUrl: input.consentUrl,
        expiresAt: input.expiresAt,
        messageId: `<${input.messageKey}@${messageIdDomain}>`,
        generation: input.generation,
        reminder: input.reminder,
      };
      try {
        const sent = await mailer.sendConsentEmail(email);
        metricMeter
          .createCounter('avatar_consent_emails_sent', '1', 'Consent emails accepted by SMTP')
          .add(1);
        log.info('consent email sent', {
          groupId: input.groupId,
          messageId: sent.messageId,
          generation: input.generation,
        });
        return { messageId: sent.messageId };
      } catch (err) {
        // SMTP replies often quote the address: keep it out of the (unencrypted) failure.
        const failure = toActivityFailure(err, attempt, {}, scrubbing([input.to.email, input.to.name]));
        log.warn('consent email failed', {
          groupId: input.groupId,
          type: failure.type,
          attempt,
          error: failure.message,
        });
        throw failure;
      }
    },
  };
}

export type HeyGenActivities = ReturnType<typeof createHeyGenActivities>;
export type EmailActivities = ReturnType<typeof createEmailActivities>;
export type ConsentActivities = HeyGenActivities & EmailActivities & InputActivities;
export type { InputActivities };

/**
 * Every consent activity, for the workflow's task queue: the email, the input check (a local
 * activity), and the HeyGen calls scheduled there before the HeyGen queue existed.
 */
export function createActivities(deps: ActivityDependencies): ConsentActivities {
  return {
    ...createHeyGenActivities(deps),
    ...createEmailActivities(deps),
    ...createInputActivities(deps.rerouteRules),
  };
}
