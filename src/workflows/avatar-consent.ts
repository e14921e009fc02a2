/**
 * avatarConsentWorkflow: ask HeyGen for a consent link, email it, poll until the person approves,
 * refresh the link before it expires, then tell the caller. Phases:
 *
 *   looking → requesting → emailing → awaiting ⇄ refreshing → done(outcome)
 *
 * Deterministic orchestration only: all I/O happens in activities, all time is workflow time.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  metricMeter,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ActivityOptions, RetryPolicy } from '@temporalio/common';
import { RetryState } from '@temporalio/common';
import type { ConsentActivities } from '../activities/index.js';
import { FailureType } from '../activities/types.js';
import type { AttemptDetails, GroupSnapshot } from '../activities/types.js';
import {
  AvatarGroupIdAttribute,
  ConsentBlockedAttribute,
  ConsentOutcomeAttribute,
  ConsentPhaseAttribute,
  DEFAULT_COMPLETION_SIGNAL,
  InvalidInputError,
  heygenTaskQueueFor,
  cancelSignal,
  checkNowSignal,
  parseAvatarConsentInput,
  resendEmailInputSchema,
  resendEmailUpdate,
  resolvePolicy,
  statusQuery,
} from '../contract.js';
import type {
  AvatarConsentInput,
  AvatarConsentResult,
  BlockedReason,
  CompletionNotice,
  ConsentError,
  ConsentOutcome,
  ConsentPhase,
  ConsentStatusView,
  ParsedAvatarConsentInput,
  ResendEmailInput,
  ResendEmailResult,
  ResolvedPolicy,
} from '../contract.js';
import { formatIssues } from '../rules/issues.js';
import { consentIdempotencyKey, emailMessageKey } from './keys.js';
import { intervalAfter, planWindow, pollOffsetsWithin, refreshDueAt } from './polling.js';
import type { BackoffSchedule } from './polling.js';

/** State carried across continue-as-new, so a very long wait keeps a bounded history. */
export interface ContinuedState {
  deadlineAtMs: number;
  generation: number;
  consentUrl: string | null;
  linkIssuedAtMs: number | null;
  avatarName: string;
  consentStatus: string | null;
  avatarStatus: string | null;
  polls: number;
  emailsSent: number;
  resends: number;
  scheduleStartedAtMs: number;
}

/**
 * Retry policy of the request and email steps: fast at first, then every minute until the deadline.
 * Not longer: after an outage the first success should come soon (HeyGen is protected by the rate
 * gate and Retry-After; a 401 asks for its own 5-minute delay).
 */
const STEP_MAX_RETRY_INTERVAL_MS = 60_000;
const STEP_RETRY: RetryPolicy = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: STEP_MAX_RETRY_INTERVAL_MS,
};
/** A request or email step takes stock (records the last error for the status query) this often. */
const STEP_WINDOW_MS = 10 * 60_000;
/**
 * Each attempt of an activity: one HTTP call (HEYGEN_TIMEOUT_MS, at most 25 s) or one SMTP send
 * (connection 10 s + socket 30 s). A lost attempt (a worker killed mid-call) is retried after this.
 */
const HEYGEN_ATTEMPT_TIMEOUT = '30s';
const EMAIL_ATTEMPT_TIMEOUT = '1m';
/** Continue-as-new well before Temporal's history limits. */
const HISTORY_EVENTS_BEFORE_CONTINUE_AS_NEW = 4_000;

type StepResult<T> = { kind: 'done'; value: T } | { kind: 'canceled' } | { kind: 'expired' };

interface FinishArgs {
  outcome: ConsentOutcome;
  error?: ConsentError;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The last ApplicationFailure in an error's cause chain: the activity's own words. */
function lastApplicationFailure(err: unknown): ApplicationFailure | undefined {
  let current: unknown = err;
  let found: ApplicationFailure | undefined;
  for (let depth = 0; current instanceof Error && depth < 10; depth++) {
    if (current instanceof ApplicationFailure) found = current;
    current = current.cause;
  }
  return found;
}

function attemptDetailsOf(failure: ApplicationFailure | undefined): AttemptDetails | undefined {
  const first: unknown = failure?.details?.[0];
  if (typeof first === 'object' && first !== null && typeof (first as AttemptDetails).attempt === 'number') {
    return first as AttemptDetails;
  }
  return undefined;
}

/** A window closed: the activity ran out of time while still retrying (not a real failure). */
function isWindowClosed(err: unknown): err is ActivityFailure {
  return err instanceof ActivityFailure && err.retryState === RetryState.TIMEOUT;
}

class ConsentRun {
  private readonly policy: ResolvedPolicy;
  private readonly schedule: BackoffSchedule;
  private readonly firstRunId = workflowInfo().firstExecutionRunId;

  private phase: ConsentPhase = 'looking';
  private outcome: ConsentOutcome | null = null;
  private deadlineAtMs: number;
  private generation: number;
  private consentUrl: string | null;
  private linkIssuedAtMs: number | null;
  private avatarName: string;
  private consentStatus: string | null;
  private avatarStatus: string | null;
  private polls: number;
  private emailsSent: number;
  private resends: number;
  private scheduleStartedAtMs: number;
  private nextPollAtMs: number | null = null;
  private lastError: ConsentError | null = null;
  private blocked: BlockedReason | null = null;
  private approvedAtMs: number | null = null;

  private nudged = false;
  private cancelRequested = false;
  private cancelReason: string | undefined;
  /** Search attributes are kept up to date only when the starter set AvatarGroupId (it is registered then). */
  private readonly searchAttributesEnabled =
    workflowInfo().typedSearchAttributes.get(AvatarGroupIdAttribute) !== undefined;
  private published = { phase: '', outcome: '', blocked: '' };

  constructor(
    private readonly input: ParsedAvatarConsentInput,
    private readonly rawInput: AvatarConsentInput,
    carried: ContinuedState | undefined,
  ) {
    this.policy = resolvePolicy(input.policy);
    this.schedule = {
      initialIntervalMs: this.policy.pollInitialIntervalMs,
      backoffCoefficient: this.policy.pollBackoffCoefficient,
      maxIntervalMs: this.policy.pollMaxIntervalMs,
    };
    const now = Date.now();
    this.deadlineAtMs = carried?.deadlineAtMs ?? now + this.policy.deadlineMs;
    this.generation = carried?.generation ?? 0;
    this.consentUrl = carried?.consentUrl ?? null;
    this.linkIssuedAtMs = carried?.linkIssuedAtMs ?? null;
    this.avatarName = carried?.avatarName ?? input.groupId;
    this.consentStatus = carried?.consentStatus ?? null;
    this.avatarStatus = carried?.avatarStatus ?? null;
    this.polls = carried?.polls ?? 0;
    this.emailsSent = carried?.emailsSent ?? 0;
    this.resends = carried?.resends ?? 0;
    this.scheduleStartedAtMs = carried?.scheduleStartedAtMs ?? now;
    if (carried) this.phase = 'awaiting';
    this.installHandlers();
    this.publish();
  }

  /**
   * Shows where the consent stands in the Temporal UI: the workflow's current details (markdown)
   * and, when enabled, the ConsentPhase/ConsentOutcome/ConsentBlocked search attributes, upserted
   * only when they change so history does not grow with every window.
   */
  private publish(): void {
    const lines = [
      `**Phase:** ${this.phase}${this.outcome ? ` → **${this.outcome}**` : ''}${this.blocked ? ` (blocked: ${this.blocked})` : ''}`,
      `**consent_status:** \`${this.consentStatus ?? 'null'}\` · **status:** \`${this.avatarStatus ?? 'null'}\``,
      `**Polls:** ${this.polls}${this.nextPollAtMs !== null ? ` · next poll about ${iso(this.nextPollAtMs)}` : ''}`,
      `**Link:** generation ${this.generation}${this.linkIssuedAtMs !== null ? `, refreshed/expires ${iso(this.linkIssuedAtMs + this.policy.linkTtlMs)}` : ''} · **emails sent:** ${this.emailsSent}`,
      `**Deadline:** ${iso(this.deadlineAtMs)}`,
    ];
    if (this.lastError) lines.push(`**Last error:** \`${this.lastError.code}\`: ${this.lastError.message}`);
    setCurrentDetails(lines.join('\n\n'));

    if (!this.searchAttributesEnabled) return;
    const next = { phase: this.phase, outcome: this.outcome ?? '', blocked: this.blocked ?? 'none' };
    if (
      next.phase === this.published.phase &&
      next.outcome === this.published.outcome &&
      next.blocked === this.published.blocked
    ) {
      return;
    }
    this.published = next;
    upsertSearchAttributes([
      { key: ConsentPhaseAttribute, value: next.phase },
      { key: ConsentBlockedAttribute, value: next.blocked },
      ...(next.outcome ? [{ key: ConsentOutcomeAttribute, value: next.outcome }] : []),
    ]);
  }

  private setPhase(phase: ConsentPhase): void {
    this.phase = phase;
    this.publish();
  }

  // -------------------------------------------------------------------------------------------
  // Handlers
  // -------------------------------------------------------------------------------------------

  private installHandlers(): void {
    setHandler(statusQuery, () => this.statusView());
    setHandler(checkNowSignal, () => {
      this.nudged = true;
    });
    setHandler(cancelSignal, (cancelInput) => {
      this.cancelRequested = true;
      this.cancelReason = cancelInput?.reason;
    });
    setHandler(resendEmailUpdate, (raw: ResendEmailInput) => this.resendEmail(raw), {
      validator: (raw: ResendEmailInput) => {
        const parsed = resendEmailInputSchema.safeParse(raw);
        if (!parsed.success) throw new Error(`Invalid resendEmail input: ${formatIssues(parsed.error)}`);
        if (this.outcome !== null) throw new Error(`The consent has already ended (${this.outcome})`);
        if (this.consentUrl === null)
          throw new Error('No consent link yet: the first email has not been sent');
      },
    });
  }

  private statusView(): ConsentStatusView {
    return {
      groupId: this.input.groupId,
      phase: this.phase,
      outcome: this.outcome,
      consentStatus: this.consentStatus,
      avatarStatus: this.avatarStatus,
      polls: this.polls,
      nextPollAt: this.nextPollAtMs === null ? null : iso(this.nextPollAtMs),
      lastError: this.lastError,
      blocked: this.blocked,
      linkGeneration: this.generation,
      linkExpiresAt: this.linkIssuedAtMs === null ? null : iso(this.linkIssuedAtMs + this.policy.linkTtlMs),
      emailsSent: this.emailsSent,
      deadline: iso(this.deadlineAtMs),
    };
  }

  private async resendEmail(raw: unknown): Promise<ResendEmailResult> {
    const reason = resendEmailInputSchema.parse(raw)?.reason;
    this.resends += 1;
    const generation = this.generation;
    const result = await this.sendEmail(generation, this.resends, `resend${reason ? `: ${reason}` : ''}`);
    if (result.kind !== 'done')
      throw ApplicationFailure.nonRetryable(`Resend stopped: consent ${result.kind}`, 'ResendStopped');
    return { messageId: result.value.messageId, emailsSent: this.emailsSent, linkGeneration: generation };
  }

  // -------------------------------------------------------------------------------------------
  // Activities
  // -------------------------------------------------------------------------------------------

  /** HeyGen calls go to the HeyGen task queue (one shared rate cap); email stays on the workflow's queue. */
  private activities(options: ActivityOptions, queue: 'heygen' | 'default'): ConsentActivities {
    return proxyActivities<ConsentActivities>(
      queue === 'heygen'
        ? {
            ...options,
            startToCloseTimeout: HEYGEN_ATTEMPT_TIMEOUT,
            taskQueue: heygenTaskQueueFor(workflowInfo().taskQueue),
          }
        : { ...options, startToCloseTimeout: EMAIL_ATTEMPT_TIMEOUT },
    );
  }

  /** Whether the workflow should stop waiting: a cancel signal, or the deadline has passed. */
  private stopReason(): 'canceled' | 'expired' | null {
    if (this.cancelRequested) return 'canceled';
    if (Date.now() >= this.deadlineAtMs) return 'expired';
    return null;
  }

  /**
   * Runs `start` until it finishes, while `interrupted()` stays false. On interruption the activity
   * is cancelled and 'interrupted' returned. The condition is cancelled too, so nothing leaks.
   */
  private async raceInterrupt<T>(
    start: () => Promise<T>,
    interrupted: () => boolean,
  ): Promise<{ kind: 'done'; value: T } | { kind: 'interrupted' }> {
    if (interrupted()) return { kind: 'interrupted' };
    return CancellationScope.cancellable(async () => {
      const work = start().then((value) => ({ kind: 'done' as const, value }));
      const stop = condition(interrupted).then(() => ({ kind: 'interrupted' as const }));
      try {
        return await Promise.race([work, stop]);
      } finally {
        CancellationScope.current().cancel();
        work.catch(() => undefined);
        stop.catch(() => undefined);
      }
    });
  }

  /**
   * Runs a request or email step in windows of STEP_WINDOW_MS: the activity retries inside a
   * window; when a window closes the workflow records the last error (so `status` and the UI show
   * why it is stuck, e.g. a bad API key) and starts the next one. Stops on cancel or the deadline.
   */
  private async runStep<T>(
    summary: string,
    queue: 'heygen' | 'default',
    call: (activities: ConsentActivities) => Promise<T>,
  ): Promise<StepResult<T>> {
    for (;;) {
      const stop = this.stopReason();
      if (stop) return { kind: stop };
      const windowMs = Math.min(STEP_WINDOW_MS, this.deadlineAtMs - Date.now());
      const activities = this.activities(
        {
          summary,
          scheduleToCloseTimeout: windowMs,

          retry: STEP_RETRY,
        },
        queue,
      );
      try {
        const result = await this.raceInterrupt(
          () => call(activities),
          () => this.cancelRequested,
        );
        if (result.kind === 'interrupted') return { kind: 'canceled' };
        this.lastError = null;
        this.blocked = null;
        return result;
      } catch (err) {
        if (!isWindowClosed(err)) throw err;
        const details = attemptDetailsOf(lastApplicationFailure(err));
        this.recordAttempts(details, false);
        // The window closed right after its last attempt: wait what that attempt asked for, so the
        // boundary never makes two requests in a row (a blocked key is retried every 5 minutes, not twice).
        await this.pause(details?.retryDelayMs ?? STEP_MAX_RETRY_INTERVAL_MS, () => this.cancelRequested);
      }
    }
  }

  /** Sleeps up to `ms` (never past the deadline) unless `interrupted()` becomes true. */
  private async pause(ms: number, interrupted: () => boolean): Promise<void> {
    const until = Math.min(Date.now() + ms, this.deadlineAtMs);
    if (until <= Date.now()) return;
    await this.raceInterrupt(() => sleep(until - Date.now()), interrupted);
  }

  /** Takes what a closed window's last failure says: attempts made, last status, last error. */
  private recordAttempts(details: AttemptDetails | undefined, countAsPolls: boolean): void {
    if (!details) return;
    if (countAsPolls) this.polls += details.attempt;
    if (details.consentStatus !== undefined) this.consentStatus = details.consentStatus;
    if (details.avatarStatus !== undefined) this.avatarStatus = details.avatarStatus;
    this.lastError = details.error ?? null;
    this.blocked = details.blocked ?? null;
    if (this.blocked) {
      log.warn('consent blocked until an operator acts', {
        groupId: this.input.groupId,
        blocked: this.blocked,
        error: this.lastError?.message,
      });
    }
  }

  private absorbGroup(group: GroupSnapshot): void {
    this.avatarName = group.name;
    this.consentStatus = group.consentStatus;
    this.avatarStatus = group.avatarStatus;
  }

  /** A group's state that ends the workflow, if any. */
  private decisionFor(group: GroupSnapshot): FinishArgs | null {
    if (group.consentStatus === 'approved') return { outcome: 'approved' };
    if (group.avatarStatus === 'failed') {
      return {
        outcome: 'failed',
        error: group.error ?? { code: 'failed', message: 'HeyGen marked the avatar group failed' },
      };
    }
    if (group.consentStatus === null || group.consentStatus === 'skipped') return { outcome: 'not_required' };
    return null;
  }

  /** Maps a non-retryable activity failure to a final outcome; anything unexpected fails the workflow. */
  private outcomeForFailure(err: unknown): FinishArgs {
    const failure = lastApplicationFailure(err);
    const error: ConsentError = {
      code: attemptDetailsOf(failure)?.error?.code ?? failure?.type ?? 'error',
      message: failure?.message ?? String(err),
    };
    const param = attemptDetailsOf(failure)?.error?.param;
    if (param) error.param = param;
    switch (failure?.type) {
      case FailureType.groupNotFound:
        return { outcome: 'group_not_found', error };
      case FailureType.invalidRequest:
        return { outcome: 'invalid_request', error };
      case FailureType.emailUndeliverable:
        return { outcome: 'email_undeliverable', error };
      default:
        throw err;
    }
  }

  private async sendEmail(
    generation: number,
    resend: number,
    why: string,
  ): Promise<StepResult<{ messageId: string }>> {
    const consentUrl = this.consentUrl;
    const issuedAt = this.linkIssuedAtMs;
    if (consentUrl === null || issuedAt === null)
      throw ApplicationFailure.nonRetryable('No consent link to send', 'NoConsentLink');
    const result = await this.runStep(`email consent link g${generation} (${why})`, 'default', (a) =>
      a.sendConsentEmail({
        groupId: this.input.groupId,
        to: {
          email: this.input.recipient.email,
          ...(this.input.recipient.name ? { name: this.input.recipient.name } : {}),
        },
        avatarName: this.avatarName,
        consentUrl,
        expiresAt: iso(issuedAt + this.policy.linkTtlMs),
        generation,
        messageKey: emailMessageKey(this.firstRunId, generation, resend),
        reminder: resend > 0,
      }),
    );
    if (result.kind === 'done') this.emailsSent += 1;
    return result;
  }

  // -------------------------------------------------------------------------------------------
  // Phases
  // -------------------------------------------------------------------------------------------

  async execute(): Promise<AvatarConsentResult> {
    try {
      const finish = await this.phases();
      return await this.finish(finish);
    } catch (err) {
      if (isCancellation(err)) {
        // Cancelled through Temporal (not the cancel signal): still tell the caller, then end as cancelled.
        await CancellationScope.nonCancellable(() => this.complete({ outcome: 'canceled' }));
        throw err;
      }
      if (err instanceof ActivityFailure) {
        const finish = this.outcomeForFailure(err);
        return await this.finish(finish);
      }
      throw err;
    }
  }

  private async phases(): Promise<FinishArgs> {
    if (this.phase === 'looking') {
      // Look first: a re-trigger after success costs one GET, and sends nothing.
      const looked = await this.runStep('look up avatar group', 'heygen', (a) =>
        a.lookupAvatarGroup(this.input.groupId),
      );
      if (looked.kind !== 'done') return { outcome: looked.kind };
      this.absorbGroup(looked.value);
      const decided = this.decisionFor(looked.value);
      if (decided) return decided;
      const issued = await this.issueLink();
      if (issued) return issued;
    }
    return this.awaitDecision();
  }

  /** Requests the next generation's link and emails it. Returns a finish when the flow ends here. */
  private async issueLink(): Promise<FinishArgs | null> {
    const generation = this.generation + 1;
    this.setPhase(generation === 1 ? 'requesting' : 'refreshing');
    const requested = await this.runStep(`request consent link g${generation}`, 'heygen', (a) =>
      a.requestConsentLink({
        groupId: this.input.groupId,
        idempotencyKey: consentIdempotencyKey(this.firstRunId, generation),
        ...(this.input.rerouteUrl ? { rerouteUrl: this.input.rerouteUrl } : {}),
        ...(this.input.consentText ? { consentText: this.input.consentText } : {}),
      }),
    );
    if (requested.kind !== 'done') return { outcome: requested.kind };
    this.generation = generation;
    this.consentUrl = requested.value.consentUrl;
    this.linkIssuedAtMs = Date.now();
    this.absorbGroup(requested.value.group);
    const decided = this.decisionFor(requested.value.group);
    if (decided) return decided;

    if (generation === 1) this.setPhase('emailing');
    const sent = await this.sendEmail(generation, 0, generation === 1 ? 'first link' : 'refreshed link');
    if (sent.kind !== 'done') return { outcome: sent.kind };
    // A new link restarts the polling schedule: the person is most likely to act soon after an email.
    this.scheduleStartedAtMs = Date.now();
    return null;
  }

  private async awaitDecision(): Promise<FinishArgs> {
    for (;;) {
      this.setPhase('awaiting');
      const stop = this.stopReason();
      if (stop) return { outcome: stop };

      const refreshAtMs =
        this.linkIssuedAtMs === null
          ? null
          : refreshDueAt({
              linkIssuedAtMs: this.linkIssuedAtMs,
              linkTtlMs: this.policy.linkTtlMs,
              generation: this.generation,
              maxLinkRefreshes: this.policy.maxLinkRefreshes,
            });
      if (refreshAtMs !== null && Date.now() >= refreshAtMs) {
        const issued = await this.issueLink();
        if (issued) return issued;
        continue;
      }

      if (
        workflowInfo().continueAsNewSuggested ||
        workflowInfo().historyLength > HISTORY_EVENTS_BEFORE_CONTINUE_AS_NEW
      ) {
        await condition(allHandlersFinished);
        await continueAsNew<typeof avatarConsentWorkflow>(this.rawInput, this.carriedState());
      }

      const decided = await this.pollWindow(refreshAtMs);
      if (decided) return decided;
    }
  }

  /**
   * One polling window: the activity's retries are the polls (no history per poll). The window ends
   * at the link refresh, the deadline, a decision, `checkNow`, `cancel`, or after `pollWindow`.
   */
  private async pollWindow(refreshAtMs: number | null): Promise<FinishArgs | null> {
    const now = Date.now();
    const plan = planWindow({
      nowMs: now,
      windowMs: this.policy.pollWindowMs,
      deadlineAtMs: this.deadlineAtMs,
      refreshAtMs,
    });
    if (plan.windowMs < 250) {
      // Nothing worth polling for: sleep until the refresh or deadline that is due.
      await this.pause(plan.windowMs, () => this.cancelRequested);
      return null;
    }
    const interval = intervalAfter(now - this.scheduleStartedAtMs, this.schedule);
    this.nextPollAtMs = now;
    const activities = this.activities(
      {
        summary: `poll consent status (every ${Math.round(interval / 1000)}s, backing off)`,
        scheduleToCloseTimeout: plan.windowMs,

        retry: {
          initialInterval: interval,
          backoffCoefficient: this.policy.pollBackoffCoefficient,
          maximumInterval: this.policy.pollMaxIntervalMs,
        },
      },
      'heygen',
    );
    this.nudged = false;
    try {
      const result = await this.raceInterrupt(
        () => activities.pollConsentStatus({ groupId: this.input.groupId }),
        () => this.nudged || this.cancelRequested,
      );
      if (result.kind === 'interrupted') {
        // A window cut short reports no attempt count: take the schedule's (what the retries made so far).
        this.polls += pollOffsetsWithin(Date.now() - now, interval, this.schedule).length;
        if (this.nudged) {
          // A hint (checkNow, or the consent page's redirect): poll at once, then tightly, then relax.
          log.info('checkNow: polling now', { groupId: this.input.groupId });
          this.scheduleStartedAtMs = Date.now();
        }
        return null;
      }
      this.polls += result.value.attempts;
      this.lastError = null;
      this.blocked = null;
      this.absorbGroup(result.value.group);
      if (result.value.group.consentStatus === 'approved') this.approvedAtMs = Date.now();
      return this.decisionFor(result.value.group);
    } catch (err) {
      if (!isWindowClosed(err)) throw err;
      const details = attemptDetailsOf(lastApplicationFailure(err));
      this.recordAttempts(details, true);
      // The window's last poll just happened; the next window waits one interval (or what a 429 asked) first.
      const nextInterval = Math.max(
        intervalAfter(Date.now() - this.scheduleStartedAtMs, this.schedule),
        details?.retryDelayMs ?? 0,
      );
      const wait = Math.min(nextInterval, (refreshAtMs ?? Number.MAX_SAFE_INTEGER) - Date.now());
      this.nextPollAtMs = Math.min(Date.now() + wait, this.deadlineAtMs);
      await this.pause(wait, () => this.nudged || this.cancelRequested);
      return null;
    }
  }

  private carriedState(): ContinuedState {
    return {
      deadlineAtMs: this.deadlineAtMs,
      generation: this.generation,
      consentUrl: this.consentUrl,
      linkIssuedAtMs: this.linkIssuedAtMs,
      avatarName: this.avatarName,
      consentStatus: this.consentStatus,
      avatarStatus: this.avatarStatus,
      polls: this.polls,
      emailsSent: this.emailsSent,
      resends: this.resends,
      scheduleStartedAtMs: this.scheduleStartedAtMs,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Done
  // -------------------------------------------------------------------------------------------

  private result(args: FinishArgs): AvatarConsentResult {
    return {
      outcome: args.outcome,
      groupId: this.input.groupId,
      consentStatus: this.consentStatus,
      avatarStatus: this.avatarStatus,
      consentUrl: this.consentUrl,
      ...(args.outcome === 'approved' ? { approvedAt: iso(this.approvedAtMs ?? Date.now()) } : {}),
      ...(args.error ? { error: args.error } : {}),
      polls: this.polls,
      emailsSent: this.emailsSent,
      linkGeneration: this.generation,
    };
  }

  private async finish(args: FinishArgs): Promise<AvatarConsentResult> {
    const result = await this.complete(args);
    // Let a resendEmail update that is still running finish before the workflow closes.
    await condition(allHandlersFinished);
    return result;
  }

  /** Records the outcome and signals the caller (notify target, else the parent workflow). */
  private async complete(args: FinishArgs): Promise<AvatarConsentResult> {
    this.outcome = args.outcome;
    this.nextPollAtMs = null;
    this.blocked = null;
    this.setPhase('done');
    metricMeter
      .createCounter('avatar_consent_outcomes', '1', 'Consents finished, by outcome')
      .add(1, { outcome: args.outcome });
    if (args.outcome === 'canceled' && this.cancelReason) {
      args.error ??= { code: 'canceled', message: this.cancelReason };
    }
    const result = this.result(args);
    const notice = await this.notify(result);
    if (notice) result.notification = notice;
    log.info('avatar consent finished', { groupId: this.input.groupId, outcome: args.outcome });
    return result;
  }

  private async notify(result: AvatarConsentResult): Promise<CompletionNotice | undefined> {
    const parent = workflowInfo().parent;
    const target =
      this.input.notify ?? (parent ? { workflowId: parent.workflowId, runId: parent.runId } : undefined);
    if (!target) return undefined;
    const signalName = this.input.notify?.signalName ?? DEFAULT_COMPLETION_SIGNAL;
    const notice: CompletionNotice = {
      workflowId: target.workflowId,
      ...(target.runId ? { runId: target.runId } : {}),
      signalName,
      delivered: false,
    };
    try {
      await getExternalWorkflowHandle(target.workflowId, target.runId).signal(signalName, result);
      notice.delivered = true;
    } catch (err) {
      // The caller may be gone (finished, or never existed): record it and finish normally.
      notice.reason = err instanceof Error ? err.message : String(err);
      log.warn('completion signal not delivered', {
        groupId: this.input.groupId,
        target: target.workflowId,
        reason: notice.reason,
      });
    }
    return notice;
  }
}

/**
 * The avatar consent workflow. `input` is the public JSON contract (validated here too, since
 * services in other languages start it by name); `carried` is internal, for continue-as-new.
 */
export async function avatarConsentWorkflow(
  input: AvatarConsentInput,
  carried?: ContinuedState,
): Promise<AvatarConsentResult> {
  let parsed: ParsedAvatarConsentInput;
  try {
    parsed = parseAvatarConsentInput(input);
  } catch (err) {
    if (err instanceof InvalidInputError)
      throw ApplicationFailure.nonRetryable(err.message, 'InvalidWorkflowInput');
    throw err;
  }
  return new ConsentRun(parsed, input, carried).execute();
}
