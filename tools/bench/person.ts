/**
 * The people of the benchmark: each reads their consent email from the real SMTP server, waits
 * their drawn time (or is told when: `approveNow`), presses "I agree" on the sandbox's consent page,
 * and (when their flow says so) lets the browser follow the page's redirect to the consent-return
 * gateway.
 */
import { consentLinkIn } from '../heygen-sandbox/index.js';
import type { SmtpCatcher } from '../kit/smtp-catcher.js';

const INBOX_POLL_MS = 20;

export interface Person {
  email: string;
  /** How long after the first email this person approves (real ms); Infinity: never. */
  waitMs: number;
  /** Whether the browser follows the consent page's redirect (to the gateway, when there is one). */
  followRedirect: boolean;
  firstEmailAt?: number;
  emails: number;
  latestLink?: string;
  approveSentAt?: number;
  agreeStatus?: number;
  redirectStatus?: number;
  redirectDoneAt?: number;
  error?: string;
}

export class People {
  readonly #byEmail = new Map<string, Person>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #pending = new Set<Promise<void>>();
  #poller: NodeJS.Timeout | undefined;
  #firstEmails = 0;

  constructor(
    private readonly smtp: SmtpCatcher,
    /** Only redirects to here are followed (the gateway); null: never follow. */
    private readonly gatewayUrl: string | null,
  ) {}

  add(person: Person): void {
    this.#byEmail.set(person.email.toLowerCase(), person);
  }

  start(): void {
    this.#poller = setInterval(() => this.#readInbox(), INBOX_POLL_MS);
  }

  /** How many people have received their first email so far. */
  get firstEmails(): number {
    return this.#firstEmails;
  }

  /**
   * The person (who must have received a link) agrees now, whatever their drawn wait, and follows
   * the redirect if their flow says so; resolves when the browser is done.
   */
  async approveNow(email: string): Promise<Person> {
    const person = this.#byEmail.get(email.toLowerCase());
    if (!person?.latestLink) throw new Error('approveNow: this person has received no consent link yet');
    const approving = this.#approve(person);
    this.#pending.add(approving);
    await approving.finally(() => this.#pending.delete(approving));
    return person;
  }

  /** Stops reading mail and cancels approvals not yet due; waits for approvals in flight. */
  async stop(): Promise<void> {
    if (this.#poller) clearInterval(this.#poller);
    this.#readInbox();
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    await Promise.allSettled([...this.#pending]);
  }

  #readInbox(): void {
    // Taken out of the server's list, so a long run does not keep every message in memory.
    const mails = this.smtp.messages.splice(0, this.smtp.messages.length);
    for (const mail of mails) {
      for (const to of mail.to) {
        const person = this.#byEmail.get(to.toLowerCase());
        if (!person) continue;
        const link = consentLinkIn(mail.text);
        if (!link) continue;
        person.emails += 1;
        person.latestLink = link;
        if (person.firstEmailAt === undefined) {
          this.#firstEmails += 1;
          person.firstEmailAt = mail.receivedAt;
          if (Number.isFinite(person.waitMs)) this.#schedule(person);
        }
      }
    }
  }

  #schedule(person: Person): void {
    const due = (person.firstEmailAt ?? Date.now()) + person.waitMs;
    const timer = setTimeout(
      () => {
        this.#timers.delete(timer);
        const approving = this.#approve(person);
        this.#pending.add(approving);
        void approving.finally(() => this.#pending.delete(approving));
      },
      Math.max(0, due - Date.now()),
    );
    this.#timers.add(timer);
  }

  async #approve(person: Person): Promise<void> {
    // The newest link: after a refresh, the person uses the latest email.
    const link = person.latestLink;
    if (!link) return;
    try {
      person.approveSentAt = Date.now();
      const agreed = await fetch(`${link}/agree`, { method: 'POST', redirect: 'manual' });
      await agreed.arrayBuffer();
      person.agreeStatus = agreed.status;
      const location = agreed.headers.get('location');
      if (person.followRedirect && this.gatewayUrl && location?.startsWith(this.gatewayUrl)) {
        const returned = await fetch(location, { redirect: 'manual' });
        await returned.arrayBuffer();
        person.redirectStatus = returned.status;
        person.redirectDoneAt = Date.now();
      }
    } catch (err) {
      person.error = err instanceof Error ? err.message : String(err);
    }
  }
}
