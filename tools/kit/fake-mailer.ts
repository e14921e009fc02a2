/** An in-memory mailer for workflow tests: records every email, and can fail on demand. */
import type { ConsentMailer } from '../../src/activities/index.js';
import type { ConsentEmail } from '../../src/email/index.js';
import type { MailError } from '../../src/email/index.js';

export class FakeMailer implements ConsentMailer {
  readonly sent: ConsentEmail[] = [];
  private readonly failures = new Map<string, MailError[]>();

  /** The next `count` sends for this group fail with `error`. */
  failNext(groupId: string, error: MailError, count = 1): void {
    const queue = this.failures.get(groupId) ?? [];
    for (let i = 0; i < count; i++) queue.push(error);
    this.failures.set(groupId, queue);
  }

  sentTo(groupId: string): ConsentEmail[] {
    return this.sent.filter((e) => e.groupId === groupId);
  }

  sendConsentEmail(
    email: ConsentEmail,
  ): Promise<{ messageId: string; accepted: string[]; response: string }> {
    const failure = this.failures.get(email.groupId)?.shift();
    if (failure) return Promise.reject(failure);
    this.sent.push(email);
    return Promise.resolve({ messageId: email.messageId, accepted: [email.to.email], response: '250 OK' });
  }
}
