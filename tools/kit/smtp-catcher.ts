// A real SMTP server for tests (smtp-server + mailparser), on 127.0.0.1. It records every accepted
// message, can refuse the next N recipients or messages with a chosen reply code, and can stop and
// start again on the same port to simulate an outage.
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

export interface ReceivedMail {
  messageId: string | undefined;
  /** The From header as text, e.g. `"Consent" <consent@example.com>`. */
  from: string;
  /** Envelope recipients (RCPT TO), i.e. everyone who actually receives the message. */
  to: string[];
  /** Addresses in the To header. */
  headerTo: string[];
  /** Envelope sender (MAIL FROM). */
  envelopeFrom: string;
  subject: string;
  text: string;
  html: string;
  /** mailparser's parsed headers, keys in lower case. */
  headers: Map<string, unknown>;
  /** Header lines as received (lower-case key, raw line). */
  headerLines: ReadonlyArray<{ key: string; line: string }>;
  raw: string;
  receivedAt: number;
}

export interface RejectOptions {
  code: number;
  message?: string;
  /** How many RCPT commands (stage 'rcpt') or messages (stage 'data') to refuse; default 1. */
  count?: number;
  /** Default 'rcpt'. */
  stage?: 'rcpt' | 'data';
}

export interface SmtpTestServer {
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
  rejectNext(opts: RejectOptions): void;
  /** Number of AUTH attempts the server has seen (successful or not). */
  readonly authAttempts: number;
  close(): Promise<void>;
}

interface PendingRejection {
  code: number;
  message: string;
  remaining: number;
  stage: 'rcpt' | 'data';
}

const HOST = '127.0.0.1';

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

async function readStream(stream: SMTPServerDataStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startSmtpTestServer(
  opts: { port?: number; auth?: { user: string; pass: string } } = {},
): Promise<SmtpTestServer> {
  const messages: ReceivedMail[] = [];
  const rejections: PendingRejection[] = [];
  const waiters = new Set<{ check: () => void; fail: (err: Error) => void }>();
  const auth = opts.auth;
  let port = opts.port ?? 0;
  let server: SMTPServer | null = null;
  let closed = false;
  let authAttempts = 0;

  const takeRejection = (stage: 'rcpt' | 'data'): PendingRejection | null => {
    const rule = rejections.find((r) => r.stage === stage && r.remaining > 0);
    if (!rule) return null;
    rule.remaining -= 1;
    if (rule.remaining === 0) rejections.splice(rejections.indexOf(rule), 1);
    return rule;
  };

  const notify = (): void => {
    for (const waiter of [...waiters]) waiter.check();
  };

  const options: SMTPServerOptions = {
    secure: false,
    disabledCommands: ['STARTTLS'],
    authOptional: !auth,
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    disableReverseLookup: true,
    name: 'smtp-test-server.local',
    // Open sessions are cut quickly on stop(), so an outage starts at once.
    closeTimeout: 200,
    socketTimeout: 30_000,
    onAuth(
      a: SMTPServerAuthentication,
      _session: SMTPServerSession,
      callback: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void,
    ): void {
      authAttempts += 1;
      if (auth && a.username === auth.user && a.password === auth.pass) {
        callback(null, { user: a.username });
        return;
      }
      callback(smtpError(535, 'Authentication credentials invalid'));
    },
    onRcptTo(
      _address: SMTPServerAddress,
      _session: SMTPServerSession,
      callback: (err?: Error | null) => void,
    ): void {
      const rule = takeRejection('rcpt');
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
          const rule = takeRejection('data');
          if (rule) {
            callback(smtpError(rule.code, rule.message));
            return;
          }
          const parsed = await simpleParser(raw);
          const mailFrom = session.envelope.mailFrom;
          messages.push({
            messageId: parsed.messageId,
            from: parsed.from?.text ?? '',
            to: session.envelope.rcptTo.map((r) => r.address),
            headerTo: addressesOf(parsed.to),
            envelopeFrom: mailFrom ? mailFrom.address : '',
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            html: typeof parsed.html === 'string' ? parsed.html : '',
            headers: parsed.headers,
            headerLines: parsed.headerLines,
            raw: raw.toString('utf8'),
            receivedAt: Date.now(),
          });
          callback(null, 'Message queued');
          notify();
        })
        .catch((err: unknown) => {
          callback(smtpError(451, `Test server could not parse the message: ${String(err)}`));
        });
    },
  };

  const start = async (): Promise<void> => {
    if (closed) throw new Error('SMTP test server is closed');
    if (server) return;
    const instance = new SMTPServer(options);
    // A listener for 'error' keeps a socket error from crashing the test process.
    instance.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      instance.server.once('error', onError);
      instance.listen(port, HOST, () => {
        instance.server.off('error', onError);
        resolve();
      });
    });
    const address = instance.server.address();
    if (address === null || typeof address === 'string')
      throw new Error('SMTP test server has no TCP address');
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
    host: HOST,
    get url() {
      return `smtp://${HOST}:${port}`;
    },
    messages,
    get authAttempts() {
      return authAttempts;
    },
    waitForMessages(n: number, waitOpts: { timeoutMs?: number; to?: string } = {}): Promise<ReceivedMail[]> {
      const timeoutMs = waitOpts.timeoutMs ?? 10_000;
      const to = waitOpts.to?.toLowerCase();
      const matching = (): ReceivedMail[] =>
        to === undefined ? [...messages] : messages.filter((m) => m.to.some((a) => a.toLowerCase() === to));
      return new Promise<ReceivedMail[]>((resolve, reject) => {
        const waiter = {
          check: (): void => {
            const found = matching();
            if (found.length >= n) {
              cleanup();
              resolve(found);
            }
          },
          fail: (err: Error): void => {
            cleanup();
            reject(err);
          },
        };
        const timer = setTimeout(() => {
          waiter.fail(
            new Error(
              `SMTP test server: timed out after ${timeoutMs} ms waiting for ${n} message(s)` +
                `${to !== undefined ? ` to ${to}` : ''}; ${matching().length} matching of ${messages.length} received`,
            ),
          );
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          waiters.delete(waiter);
        };
        waiters.add(waiter);
        waiter.check();
      });
    },
    stop,
    start,
    rejectNext(r: RejectOptions): void {
      if (!Number.isInteger(r.code) || r.code < 400 || r.code > 599) {
        throw new RangeError('rejectNext: code must be a 4xx or 5xx SMTP reply code');
      }
      const count = r.count ?? 1;
      if (!Number.isInteger(count) || count < 1)
        throw new RangeError('rejectNext: count must be a positive integer');
      rejections.push({
        code: r.code,
        message: r.message ?? (r.code >= 500 ? 'Rejected by test server' : 'Try again later (test server)'),
        remaining: count,
        stage: r.stage ?? 'rcpt',
      });
    },
    async close(): Promise<void> {
      if (closed) return;
      await stop();
      closed = true;
      for (const waiter of [...waiters])
        waiter.fail(new Error('SMTP test server closed while waiting for messages'));
    },
  };
}
