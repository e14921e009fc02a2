/** What a caller can do while a consent runs: ask its status, nudge it, cancel it, resend the email. */
import { setHandler } from '@temporalio/workflow';
import {
  cancelSignal,
  checkNowSignal,
  describeFieldIssues,
  resendEmailInputProblems,
  resendEmailUpdate,
  statusQuery,
} from '../contract/definitions.js';
import type { ResendEmailInput, ResendEmailResult } from '../contract/index.js';
import type { ConsentState } from './consent-state.js';
import type { StatusBoard } from './status.js';

export class Controls {
  /** A `checkNow` arrived (a hint, never proof of approval): poll at once. */
  nudged = false;
  /** The `cancel` signal arrived. */
  cancel: { reason?: string | undefined } | null = null;

  readonly canceled = (): boolean => this.cancel !== null;
  readonly nudgedOrCanceled = (): boolean => this.nudged || this.cancel !== null;

  /** Installs the handlers; `resend` emails the current link again. */
  listen(
    state: ConsentState,
    board: StatusBoard,
    resend: (reason?: string) => Promise<ResendEmailResult>,
  ): void {
    setHandler(statusQuery, () => board.view());
    setHandler(checkNowSignal, () => {
      this.nudged = true;
    });
    setHandler(cancelSignal, (input) => {
      this.cancel = { reason: input?.reason };
    });
    setHandler(resendEmailUpdate, (raw: ResendEmailInput) => resend(raw?.reason ?? undefined), {
      validator: (raw: ResendEmailInput) => {
        const problems = resendEmailInputProblems(raw);
        if (problems.length > 0)
          throw new Error(`Invalid resendEmail input: ${describeFieldIssues(problems)}`);
        if (state.outcome !== null) throw new Error(`The consent has already ended (${state.outcome})`);
        if (state.consentUrl === null)
          throw new Error('No consent link yet: the first email has not been sent');
      },
    });
  }
}
