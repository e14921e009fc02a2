/**
 * What a caller can do while a consent runs: ask its status, nudge it, cancel it, resend the email,
 * or send it to someone else.
 */
import { setHandler } from '@temporalio/workflow';
import {
  cancelSignal,
  changeRecipientInputProblems,
  changeRecipientUpdate,
  checkNowSignal,
  describeFieldIssues,
  resendEmailInputProblems,
  resendEmailUpdate,
  statusQuery,
} from '../contract/definitions.js';
import type {
  ChangeRecipientInput,
  ChangeRecipientResult,
  ResendEmailInput,
  ResendEmailResult,
} from '../contract/index.js';
import type { ConsentState } from './consent-state.js';
import type { StatusBoard } from './status.js';

export interface EmailControls {
  /** Emails the current link again. */
  resend(reason?: string): Promise<ResendEmailResult>;
  /** Records a new recipient and emails the current link to them. */
  changeRecipient(input: ChangeRecipientInput): Promise<ChangeRecipientResult>;
}

/**
 * A nudge polls at once, then tightly; more nudges right after add only HeyGen requests. The
 * workflow is the one place that holds this for every gateway replica and across restarts.
 */
export const CHECK_NOW_COOLDOWN_MS = 10_000;

export class Controls {
  /** A `checkNow` arrived (a hint, never proof of approval): poll at once. */
  nudged = false;
  /** The `cancel` signal arrived. */
  cancel: { reason?: string | undefined } | null = null;
  /** The next poll follows a nudge. */
  #urgent = false;
  #lastNudgeAtMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly v2: boolean) {}

  readonly canceled = (): boolean => this.cancel !== null;
  readonly nudgedOrCanceled = (): boolean => this.nudged || this.cancel !== null;

  /** Whether the poll about to start follows a nudge (asked once per window). */
  takeUrgent(): boolean {
    const urgent = this.#urgent;
    this.#urgent = false;
    return urgent;
  }

  listen(state: ConsentState, board: StatusBoard, email: EmailControls): void {
    setHandler(statusQuery, () => board.view());
    setHandler(checkNowSignal, () => {
      const now = Date.now();
      // Since consent-flow-v2 (runs started earlier replay their nudges as they were handled).
      if (this.v2 && now - this.#lastNudgeAtMs < CHECK_NOW_COOLDOWN_MS) return;
      this.#lastNudgeAtMs = now;
      this.nudged = true;
      this.#urgent = true;
    });
    setHandler(cancelSignal, (input) => {
      this.cancel = { reason: input?.reason };
    });
    // Validators reject bad updates before they reach history; both emails need a live consent with a link.
    const validate = (update: string, problems: ReturnType<typeof describeFieldIssues> | null) => {
      if (problems) throw new Error(`Invalid ${update} input: ${problems}`);
      if (state.outcome !== null) throw new Error(`The consent has already ended (${state.outcome})`);
      if (state.consentUrl === null)
        throw new Error('No consent link yet: the first email has not been sent');
    };
    const described = (problems: ReturnType<typeof resendEmailInputProblems>) =>
      problems.length > 0 ? describeFieldIssues(problems) : null;
    setHandler(resendEmailUpdate, (raw: ResendEmailInput) => email.resend(raw?.reason ?? undefined), {
      validator: (raw: ResendEmailInput) => validate('resendEmail', described(resendEmailInputProblems(raw))),
    });
    setHandler(changeRecipientUpdate, (input: ChangeRecipientInput) => email.changeRecipient(input), {
      validator: (raw: ChangeRecipientInput) =>
        validate('changeRecipient', described(changeRecipientInputProblems(raw))),
    });
  }
}
