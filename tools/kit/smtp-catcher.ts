/**
 * The one in-process SMTP server of the harness (smtp-server + mailparser), on 127.0.0.1 by
 * default: the tests' and tools' mail catcher, and what the dev stack's web inbox shows.
 *
 * It keeps every accepted message in `messages`, can refuse the next N recipients or messages with a
 * chosen reply code (all of them, or those for one address), can take a message and then cut the
 * connection before its 250 reply (the sender cannot know it was delivered), and can stop and
 * start again on the same port to simulate an outage. `events` records what it did, so a test can
 * tell a lost email from one that was refused or whose acknowledgement was lost.
 */
import { SMTPServer } from 'smtp-server';
import type {
  SMTPServerAddress,
  SMTPServerAuthentication,
  SMTPServerAuthenticationResponse,
  SMTPServerDataStream,
  SMTPServerError,
  SMTPServerOptions,
  SMTPServerSession,
} from 'smtp-server';
import { simpleParser } from 'mailparser';
import type { AddressObject } from 'mailparser';
import { eventually } from './eventually.js';
import { LOOPBACK } from './ports.js';

export interface ReceivedMail {
  /** 1, 2, 3… in the order the catcher accepted them. */
  id: number;
  messageId: string | undefined;
  /** The From header as text, e.g. `"Consent" <consent@example.com>`. */
  from: string;
  /** Envelope recipients (RCPT TO), i.e. everyone who actually receives the message. */
  to: string[];
  /** Addresses in the To header. */
  headerTo: string[];
  /** The To header as text, names included. */
  toHeader: string;
  /** Envelope sender (MAIL FROM). */
  envelopeFrom: string;
  subject: string;
  text: string;
  html: string;
  /** http(s) links found in the text and HTML parts, e.g. the consent link. */
  links: string[];
  /** mailparser's parsed headers, keys in lower case. */
  headers: Map<string, unknown>;
  /** Header lines as received (lower-case key, raw line). */
  headerLines: ReadonlyArray<{ key: string; line: string }>;
  raw: string;
  /** Epoch ms. */
  receivedAt: number;
  /** Stored, but the connection was cut before the 250 reply (dropNext): the sender saw a failure. */
  replyDropped: boolean;
}

/** One decision of the catcher about a recipient or a message, in order. */
export interface SmtpEvent {
  /** Epoch ms. */
  at: number;
  /**
   * accepted: stored and answered 250; rejected: refused with `code`; dropped: stored, then the
   * connection was cut before the reply.
   */
  kind: 'accepted' | 'rejected' | 'dropped';
  stage: 'rcpt' | 'data';
  /** The reply code sent; null when the connection was cut instead. */
  code: number | null;
  /** rcpt: the address refused; data: the envelope recipients. */
  recipients: string[];
  /** data: the message's Message-ID header (null without one); rcpt: null. */
  messageId: string | null;
}

export interface RejectOptions {
  code: number;
  message?: string;
  /** How many RCPT commands (stage 'rcpt') or messages (stage 'data') to refuse; default 1. */
  count?: number;
  /** Default 'rcpt'. */
  stage?: 'rcpt' | 'data';
  /** Only recipients (rcpt) or messages (data) for this address, case-insensitive. Default: any. */
  to?: string;
}

/** A rejection or drop not yet used up. */
export interface PendingFault {
  /** Uses left. */
  readonly remaining: number;
  /** Withdraws it (a fault burst that is over); returns the uses it had left. */
  cancel(): number;
}

export interface DropOptions {
  /** How many messages to take and then cut off before the 250 reply; default 1. */
  count?: number;
  /** Only messages for this address, case-insensitive. Default: any. */
  to?: string;
}

export interface SmtpCatcherOptions {
  /** Default: a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** One login it accepts (others get 535); 'any': every login is accepted. Default: no AUTH needed, none accepted. */
  auth?: { user: string; pass: string } | 'any';
  /** The oldest messages are dropped beyond this many. Default: all are kept. */
  maxMessages?: number;
  /** Larger messages are refused with 552. Default 10 MiB. */
  maxMessageBytes?: number;
  onMessage?: (mail: ReceivedMail) => void;
}

export interface SmtpCatcher {
  readonly port: number;
  readonly host: string;
  /** `smtp://127.0.0.1:<port>` (no credentials). */
  readonly url: string;
  readonly messages: ReceivedMail[];
  /** Resolves with all matching messages once at least `n` arrived; rejects after `timeoutMs` (default 10 s). */
  waitForMessages(n: number, opts?: { timeoutMs?: number; to?: string }): Promise<ReceivedMail[]>;
  /** Stops listening and drops open connections (an outage); keeps the messages. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  rejectNext(opts: RejectOptions): PendingFault;
  /**
   * Takes the next `count` messages (stored in `messages`, marked `replyDropped`) and cuts each
   * connection before the 250 reply: the classic way an SMTP client ends up sending a message twice.
   */
  dropNext(opts?: DropOptions): PendingFault;
  /** Every accept, refusal and drop, in order. */
  readonly events: SmtpEvent[];
  /** Number of AUTH attempts the server has seen (successful or not). */
  readonly authAttempts: number;
  close(): Promise<void>;
}

interface PendingRejection {
  code: number;
  message: string;
  remaining: number;
  stage: 'rcpt' | 'data';
  /** Lower case; null: any recipient. */
  to: string | null;
}

interface PendingDrop {
  remaining: number;
  to: string | null;
}

/** A positive whole count (default 1), or a RangeError naming the method. */
function countOf(method: string, count: number | undefined): number {
  const n = count ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${method}: count must be a positive integer`);
  return n;
}

/** Takes one use of the first rule that matches one of `recipients`; null when none does. */
function takeFirst<T extends { remaining: number; to: string | null }>(
  rules: T[],
  recipients: readonly string[],
  fits: (rule: T) => boolean = () => true,
): T | null {
  const lower = recipients.map((r) => r.toLowerCase());
  const rule = rules.find((r) => r.remaining > 0 && fits(r) && (r.to === null || lower.includes(r.to)));
  if (!rule) return null;
  rule.remaining -= 1;
  if (rule.remaining === 0) rules.splice(rules.indexOf(rule), 1);
  return rule;
}

function smtpError(code: number, message: string): SMTPServerError {
  const err: SMTPServerError = new Error(message);
  err.responseCode = code;
  return err;
}

function addressesOf(header: AddressObject | AddressObject[] | undefined): string[] {
  if (!header) return [];
  const list = Array.isArray(header) ? header : [header];
  return list.flatMap((h) => h.value.flatMap((v) => (v.address ? [v.address] : [])));
}

function textOf(header: AddressObject | AddressObject[] | undefined): string {
  if (!header) return '';
  return (Array.isArray(header) ? header : [header]).map((h) => h.text).join(', ');
}

function linksIn(...parts: string[]): string[] {
  const found = parts.flatMap((part) => part.match(/https?:\/\/[^\s"'<>]+/g) ?? []);
  return [...new Set(found.map((link) => link.replace(/&amp;/g, '&').replace(/[).,;]+$/, '')))];
}

async function readStream(stream: SMTPServerDataStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startSmtpCatcher(opts: SmtpCatcherOptions = {}): Promise<SmtpCatcher> {
  const messages: ReceivedMail[] = [];
  const events: SmtpEvent[] = [];
  const rejections: PendingRejection[] = [];
  const drops: PendingDrop[] = [];
  const host = opts.host ?? LOOPBACK;
  const auth = opts.auth;
  const maxMessageBytes = opts.maxMessageBytes ?? 10 * 1024 * 1024;
  let port = opts.port ?? 0;
  let server: SMTPServer | null = null;
  let closed = false;
  /** Ends every wait for messages when the catcher closes. */
  const closing = new AbortController();
  let authAttempts = 0;
  let nextId = 1;

  /** Queues `rule` in `rules`; the handle withdraws it. */
  const pending = <T extends { remaining: number }>(rules: T[], rule: T): PendingFault => {
    rules.push(rule);
    return {
      get remaining() {
        return rule.remaining;
      },
      cancel() {
        const index = rules.indexOf(rule);
        if (index >= 0) rules.splice(index, 1);
        const left = rule.remaining;
        rule.remaining = 0;
        return left;
      },
    };
  };
  const record = (event: Omit<SmtpEvent, 'at'>): void => void events.push({ at: Date.now(), ...event });

  /** Cuts the session's connection without a reply; the client sees it close after sending DATA. */
  const cutConnection = (session: SMTPServerSession): void => {
    for (const connection of server?.connections ?? []) {
      const c = connection as { id?: string; _socket?: { destroy(): void } };
      if (c.id === session.id) c._socket?.destroy();
    }
  };

  const keep = (mail: ReceivedMail): void => {
    messages.push(mail);
    if (opts.maxMessages !== undefined && messages.length > opts.maxMessages) {
      messages.splice(0, messages.length - opts.maxMessages);
    }
    opts.onMessage?.(mail);
  };

  const options: SMTPServerOptions = {
    secure: false,
    disabledCommands: ['STARTTLS'],
    authOptional: auth === undefined || auth === 'any',
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    disableReverseLookup: true,
    size: maxMessageBytes,
    name: 'smtp-catcher.localhost',
    // Open sessions are cut quickly on stop(), so an outage starts at once.
    closeTimeout: 200,
    socketTimeout: 30_000,
    onAuth(
      a: SMTPServerAuthentication,
      _session: SMTPServerSession,
      callback: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void,
    ): void {
      authAttempts += 1;
      if (auth === 'any' || (auth && a.username === auth.user && a.password === auth.pass)) {
        callback(null, { user: a.username ?? 'anyone' });
        return;
      }
      callback(smtpError(535, 'Authentication credentials invalid'));
    },
    onRcptTo(
      address: SMTPServerAddress,
      _session: SMTPServerSession,
      callback: (err?: Error | null) => void,
    ): void {
      const rule = takeFirst(rejections, [address.address], (r) => r.stage === 'rcpt');
      if (rule)
        record({
          kind: 'rejected',
          stage: 'rcpt',
          code: rule.code,
          recipients: [address.address],
          messageId: null,
        });
      callback(rule ? smtpError(rule.code, rule.message) : null);
    },
    onData(
      stream: SMTPServerDataStream,
      session: SMTPServerSession,
      callback: (err?: Error | null, message?: string) => void,
    ): void {
      // The message is stored before the 250 reply, so a resolved send is already in `messages`.
      readStream(stream)
        .then(async (raw) => {
          const recipients = session.envelope.rcptTo.map((r) => r.address);
          const refuse = (code: number, message: string, messageId: string | null): void => {
            record({ kind: 'rejected', stage: 'data', code, recipients, messageId });
            callback(smtpError(code, message));
          };
          if (stream.sizeExceeded) {
            refuse(552, `Message exceeds ${maxMessageBytes} bytes`, null);
            return;
          }
          const parsed = await simpleParser(raw);
          const messageId = parsed.messageId ?? null;
          const rule = takeFirst(rejections, recipients, (r) => r.stage === 'data');
          if (rule) {
            refuse(rule.code, rule.message, messageId);
            return;
          }
          const drop = takeFirst(drops, recipients);
          const mailFrom = session.envelope.mailFrom;
          const text = parsed.text ?? '';
          const html = typeof parsed.html === 'string' ? parsed.html : '';
          const mail: ReceivedMail = {
            id: nextId++,
            messageId: parsed.messageId,
            from: parsed.from?.text ?? '',
            to: session.envelope.rcptTo.map((r) => r.address),
            headerTo: addressesOf(parsed.to),
            toHeader: textOf(parsed.to),
            envelopeFrom: mailFrom ? mailFrom.address : '',
            subject: parsed.subject ?? '',
            text,
            html,
            links: linksIn(text, html),
            headers: parsed.headers,
            headerLines: parsed.headerLines,
            raw: raw.toString('utf8'),
            receivedAt: Date.now(),
            replyDropped: drop !== null,
          };
          keep(mail);
          record({
            kind: drop ? 'dropped' : 'accepted',
            stage: 'data',
            code: drop ? null : 250,
            recipients,
            messageId,
          });
          // Delivered, but the client never hears so: the socket goes before the 250 (send() skips a destroyed one).
          if (drop) cutConnection(session);
          callback(null, `Queued as ${mail.id}`);
        })
        .catch((err: unknown) => {
          const recipients = session.envelope.rcptTo.map((r) => r.address);
          record({ kind: 'rejected', stage: 'data', code: 451, recipients, messageId: null });
          callback(smtpError(451, `The catcher could not parse the message: ${String(err)}`));
        });
    },
  };

  const start = async (): Promise<void> => {
    if (closed) throw new Error('SMTP catcher is closed');
    if (server) return;
    const instance = new SMTPServer(options);
    // A client hanging up mid-session must not crash the process.
    instance.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void =>
        reject(new Error(`SMTP catcher could not listen on ${host}:${port}: ${err.message}`));
      instance.server.once('error', onError);
      instance.listen(port, host, () => {
        instance.server.off('error', onError);
        resolve();
      });
    });
    const address = instance.server.address();
    if (address === null || typeof address === 'string') throw new Error('SMTP catcher has no TCP address');
    port = address.port;
    server = instance;
  };

  const stop = async (): Promise<void> => {
    const instance = server;
    if (!instance) return;
    server = null;
    await new Promise<void>((resolve) => instance.close(() => resolve()));
  };

  await start();

  return {
    get port() {
      return port;
    },
    host,
    get url() {
      return `smtp://${host}:${port}`;
    },
    messages,
    get authAttempts() {
      return authAttempts;
    },
    async waitForMessages(n, waitOpts = {}) {
      const to = waitOpts.to?.toLowerCase();
      const matching = (): ReceivedMail[] =>
        to === undefined ? [...messages] : messages.filter((m) => m.to.some((a) => a.toLowerCase() === to));
      const what = `${n} message(s)${to !== undefined ? ` to ${to}` : ''} at the SMTP catcher`;
      try {
        return await eventually(
          what,
          () => {
            const found = matching();
            return found.length >= n ? found : undefined;
          },
          { timeoutMs: waitOpts.timeoutMs ?? 10_000, intervalMs: 20, signal: closing.signal },
        );
      } catch (error) {
        const seen = `${matching().length} matching of ${messages.length} received`;
        throw new Error(`${error instanceof Error ? error.message : String(error)}; ${seen}`, {
          cause: error,
        });
      }
    },
    stop,
    start,
    rejectNext(r: RejectOptions): PendingFault {
      if (!Number.isInteger(r.code) || r.code < 400 || r.code > 599) {
        throw new RangeError('rejectNext: code must be a 4xx or 5xx SMTP reply code');
      }
      return pending(rejections, {
        code: r.code,
        message: r.message ?? (r.code >= 500 ? 'Rejected by the catcher' : 'Try again later (catcher)'),
        remaining: countOf('rejectNext', r.count),
        stage: r.stage ?? 'rcpt',
        to: r.to?.toLowerCase() ?? null,
      });
    },
    dropNext(d: DropOptions = {}): PendingFault {
      return pending(drops, { remaining: countOf('dropNext', d.count), to: d.to?.toLowerCase() ?? null });
    },
    events,
    async close(): Promise<void> {
      if (closed) return;
      await stop();
      closed = true;
      closing.abort(new Error('the SMTP catcher closed while waiting for messages'));
    },
  };
}
