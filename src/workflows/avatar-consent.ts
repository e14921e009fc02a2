/**
 * avatarConsentWorkflow: the story of one consent.
 *
 *   look up the group → request a consent link → email it → poll until the person decides
 *   (a fresh link before the old one expires) → tell the caller
 *
 *   phases: looking → requesting → emailing → awaiting ⇄ refreshing → done(outcome)
 *
 * Deterministic orchestration only: the I/O is in activities, the time is workflow time. How the
 * activities run (in windows) is in ./activity-windows.ts, what the workflow shows in ./status.ts,
 * what callers can do meanwhile in ./controls.ts.
 */
import {
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  proxyLocalActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { InputActivities } from '../activities/index.js';
import { recipientFingerprint, resolvePolicy, trustedInput } from '../contract/definitions.js';
import type {
  AvatarConsentInput,
  AvatarConsentResult,
  CheckedInput,
  ConsentPhase,
  ParsedAvatarConsentInput,
  ResendEmailResult,
  ResolvedPolicy,
} from '../contract/index.js';
import { consentDecision } from '../rules/consent-decision.js';
import type { GroupSnapshot } from '../rules/consent-decision.js';
import {
  emailActivities,
  endForFailure,
  heygenActivities,
  runPollWindow,
  runStep,
  stopReason,
} from './activity-windows.js';
import type { StepResult, WindowContext } from './activity-windows.js';
import { endWithInvalidInput, finish } from './completion.js';
import { absorbGroup, resumeState, startState } from './consent-state.js';
import type { CarriedState, ConsentEnd } from './consent-state.js';
import { Controls } from './controls.js';
import { consentIdempotencyKey, emailMessageKey } from './keys.js';
import { continueAsNewDue, refreshDueAt, scheduleOf } from './polling.js';
import { StatusBoard } from './status.js';

export { TEST_CONTINUE_AS_NEW_MEMO } from './polling.js';

/**
 * The workflow's one patch, for every behaviour that differs from consents started before it: the
 * worker checks a new run's input (a local activity: zod stays out of workflow code); the passing
 * phases are not upserted; a blocked step is published when its window closes; checkNow bursts are
 * ignored. Runs without its marker (started earlier) keep the old behaviour on replay.
 */
const CONSENT_FLOW_V2 = 'consent-flow-v2';

/**
 * The avatar consent workflow. `input` is the public JSON contract (checked here too: services in
 * other languages start it by name); `carried` is internal, for continue-as-new.
 */
export async function avatarConsentWorkflow(
  input: AvatarConsentInput,
  carried?: CarriedState,
): Promise<AvatarConsentResult> {
  // Asked first, before any await: a patch asked after a local activity can be misread on replay
  // (the activity's marker may end the original task, while a replay resolves it in the same one).
  const v2 = patched(CONSENT_FLOW_V2);
  // A continued run's input passed the check when its consent started.
  const checked: CheckedInput =
    carried !== undefined || !v2
      ? { ok: true, input: trustedInput(input) }
      : await proxyLocalActivities<InputActivities>({ startToCloseTimeout: '10s' }).checkConsentInput(input);
  if (!checked.ok) return endWithInvalidInput(checked);
  return new Consent(checked.input, input, carried, v2).run();
}

class Consent {
  private readonly policy: ResolvedPolicy;
  private readonly ctx: WindowContext;
  private readonly firstRunId = workflowInfo().firstExecutionRunId;

  constructor(
    private readonly request: ParsedAvatarConsentInput,
    private readonly rawInput: AvatarConsentInput,
    carried: CarriedState | undefined,
    v2: boolean,
  ) {
    const groupId = request.groupId;
    const policy = (this.policy = resolvePolicy(request.policy));
    const schedule = scheduleOf(policy);
    const state = carried ? resumeState(carried) : startState(groupId, policy, Date.now());
    const board = new StatusBoard(groupId, request.recipient, policy, schedule, state, v2);
    const controls = new Controls(v2);
    this.ctx = { groupId, state, board, controls, schedule, pollWindowMs: policy.pollWindowMs, v2 };
    controls.listen(state, board, {
      resend: (reason) => this.emailAgain(`resend${reason ? `: ${reason}` : ''}`, true),
      changeRecipient: async ({ email, name }) => {
        state.recipient = { email, ...(name ? { name } : {}) };
        const sent = await this.emailAgain('new recipient', false);
        return { ...sent, recipientFingerprint: recipientFingerprint(email) };
      },
    });
    board.publish();
  }

  async run(): Promise<AvatarConsentResult> {
    let end: ConsentEnd;
    try {
      end = await this.decide();
    } catch (err) {
      if (isCancellation(err)) {
        // Cancelled through Temporal (not the cancel signal): still tell the caller, then end as cancelled.
        await CancellationScope.nonCancellable(() => this.tellCaller({ outcome: 'canceled' }));
        throw err;
      }
      const known = endForFailure(err);
      if (!known) throw err;
      end = known;
    }
    const result = await this.tellCaller(end);
    await condition(allHandlersFinished); // an update's email still being sent finishes first
    return result;
  }

  /** Look, request a link and email it, then wait for the person's decision. */
  private async decide(): Promise<ConsentEnd> {
    if (this.ctx.state.phase === 'looking') {
      // Look first: a re-trigger after success costs one GET, and sends nothing.
      const looked = await runStep(this.ctx, 'look up avatar group', (window) =>
        heygenActivities(window).lookupAvatarGroup(this.ctx.groupId),
      );
      if (looked.kind !== 'done') return { outcome: looked.kind };
      const decided = this.absorb(looked.value);
      if (decided) return decided;
      const issued = await this.issueLink();
      if (issued) return issued;
    }
    return this.awaitDecision();
  }

  /** Requests the next generation's link and emails it. Returns an end when the flow ends here. */
  private async issueLink(): Promise<ConsentEnd | null> {
    const { state, groupId } = this.ctx;
    const generation = state.generation + 1;
    this.setPhase(generation === 1 ? 'requesting' : 'refreshing');
    const requested = await runStep(this.ctx, `request consent link g${generation}`, (window) =>
      heygenActivities(window).requestConsentLink({
        groupId,
        idempotencyKey: consentIdempotencyKey(this.firstRunId, generation),
        ...(this.request.rerouteUrl ? { rerouteUrl: this.request.rerouteUrl } : {}),
        ...(this.request.consentText ? { consentText: this.request.consentText } : {}),
      }),
    );
    if (requested.kind !== 'done') return { outcome: requested.kind };
    Object.assign(state, { generation, consentUrl: requested.value.consentUrl, linkIssuedAtMs: Date.now() });
    const decided = this.absorb(requested.value.group);
    if (decided) return decided;

    if (generation === 1) this.setPhase('emailing');
    const sent = await this.sendEmail(0, generation === 1 ? 'first link' : 'refreshed link');
    if (sent.kind !== 'done') return { outcome: sent.kind };
    // A new link restarts the polling schedule: the person is most likely to act soon after an email.
    state.scheduleStartedAtMs = Date.now();
    return null;
  }

  /** Emails the current link: a generation's first email (resend 0), or an operator's resend. */
  private async sendEmail(
    resend: number,
    why: string,
    reminder = resend > 0,
  ): Promise<StepResult<{ messageId: string }>> {
    const { state, groupId } = this.ctx;
    const { consentUrl, linkIssuedAtMs, generation } = state;
    if (consentUrl === null || linkIssuedAtMs === null)
      throw ApplicationFailure.nonRetryable('No consent link to send', 'NoConsentLink');
    const { email, name } = state.recipient ?? this.request.recipient;
    const result = await runStep(this.ctx, `email consent link g${generation} (${why})`, (window) =>
      emailActivities(window).sendConsentEmail({
        groupId,
        to: { email, ...(name ? { name } : {}) },
        avatarName: state.avatarName,
        consentUrl,
        expiresAt: new Date(linkIssuedAtMs + this.policy.linkTtlMs).toISOString(),
        generation,
        messageKey: emailMessageKey(this.firstRunId, generation, resend),
        reminder,
      }),
    );
    if (result.kind === 'done') state.emailsSent += 1;
    return result;
  }

  /** An operator's email (resendEmail, changeRecipient): the current link, as a message of its own. */
  private async emailAgain(why: string, reminder: boolean): Promise<ResendEmailResult> {
    const { state } = this.ctx;
    state.resends += 1;
    const generation = state.generation;
    const sent = await this.sendEmail(state.resends, why, reminder);
    if (sent.kind !== 'done')
      throw ApplicationFailure.nonRetryable(`Email stopped: consent ${sent.kind}`, 'ResendStopped');
    return { messageId: sent.value.messageId, emailsSent: state.emailsSent, linkGeneration: generation };
  }

  /** Polls in windows until the person decides, with a fresh link whenever the current one is due. */
  private async awaitDecision(): Promise<ConsentEnd> {
    const { state } = this.ctx;
    for (;;) {
      this.setPhase('awaiting');
      const stop = stopReason(this.ctx);
      if (stop) return { outcome: stop };
      const { linkIssuedAtMs, generation } = state;
      const { linkTtlMs, maxLinkRefreshes } = this.policy;
      const refreshAtMs =
        linkIssuedAtMs === null
          ? null
          : refreshDueAt({ linkIssuedAtMs, generation, linkTtlMs, maxLinkRefreshes });
      if (refreshAtMs !== null && Date.now() >= refreshAtMs) {
        const issued = await this.issueLink();
        if (issued) return issued;
        continue;
      }
      if (continueAsNewDue()) {
        await condition(allHandlersFinished);
        await continueAsNew<typeof avatarConsentWorkflow>(this.rawInput, state);
      }
      const group = await runPollWindow(this.ctx, refreshAtMs);
      if (group) {
        if (group.consentStatus === 'approved') state.approvedAtMs = Date.now();
        const decided = this.absorb(group);
        if (decided) return decided;
      }
    }
  }

  /** Takes the group's state; returns the end it means, if any. */
  private absorb(group: GroupSnapshot): ConsentEnd | null {
    absorbGroup(this.ctx.state, group);
    return consentDecision(group);
  }

  private setPhase(phase: ConsentPhase): void {
    this.ctx.state.phase = phase;
    this.ctx.board.publish();
  }

  /** Records the outcome and signals the caller (the notify target, else the parent workflow). */
  private tellCaller(end: ConsentEnd): Promise<AvatarConsentResult> {
    return finish(this.ctx, this.request.notify, end);
  }
}
