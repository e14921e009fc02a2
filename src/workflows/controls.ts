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

export class Controls {
  /** A `checkNow` arrived (a hint, never proof of approval): poll at once. */
  nudged = false;
  /** The `cancel` signal arrived. */
  cancel: { reason?: string | undefined } | null = null;

  readonly canceled = (): boolean => this.cancel !== null;
  readonly nudgedOrCanceled = (): boolean => this.nudged || this.cancel !== null;

  listen(state: ConsentState, board: StatusBoard, email: EmailControls): void {
    setHandler(statusQuery, () => board.view());
    setHandler(checkNowSignal, () => {
      this.nudged = true;
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
