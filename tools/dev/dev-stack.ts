/**
 * `npm run dev`: the whole stack on this machine, in one terminal, with no accounts and no Docker.
 *
 *   Temporal dev server + Web UI   the `temporal` CLI (resolveTemporalExecutable), state in a SQLite
 *                                  file so a restart keeps running workflows
 *   HeyGen sandbox                 in-process (startSandbox)
 *   mail catcher + web inbox       in-process (smtp-server + mailparser, a small inbox page here)
 *   the worker                     in-process (runWorker), wired to the three above
 *
 * Each piece is started, then waited for (port, health, pollers). Ctrl-C stops everything in order:
 * the worker drains, the sandbox and the inbox close, the dev server gets SIGTERM and is waited for.
 *
 * Flags: --no-ui (no Temporal Web UI), --help. Ports: DEV_TEMPORAL_PORT (7233), DEV_TEMPORAL_UI_PORT
 * (8233), DEV_SANDBOX_PORT (4010), DEV_SMTP_PORT (1025), DEV_INBOX_PORT (1080); state directory
 * DEV_STATE_DIR (.temporal-dev). HEYGEN_BASE_URL + HEYGEN_API_KEY point the worker at the real API
 * instead of the sandbox, SMTP_URL at a real mail server instead of the inbox.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createConnection, createServer as createTcpServer } from 'node:net';
import type { Server as NetServer } from 'node:net';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { z } from 'zod';
import { loadWorkerConfig, redactConfig } from '../../src/config/worker-config.js';
import type { WorkerConfig } from '../../src/config/worker-config.js';
import { CONSENT_SEARCH_ATTRIBUTES, DEFAULT_TASK_QUEUE } from '../../src/contract.js';
import { escapeHtml } from '../../src/email/template.js';
import { DEFAULT_API_KEY, startSandbox } from '../heygen-sandbox/index.js';
import type { CreateGroupInput, Sandbox } from '../heygen-sandbox/index.js';
import { GatewaySecrets, startGateway } from '../../src/gateway/index.js';
import type { Gateway } from '../../src/gateway/index.js';
import { checkNowSender } from '../../src/gateway/main.js';
import { runWorker } from '../../src/worker.js';
import { howToInstall, resolveTemporalExecutable } from '../kit/temporal-binaries.js';

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/** Loopback only: the sandbox admin API and the inbox have no authentication. */
export const DEV_HOST = '127.0.0.1';
export const DEV_NAMESPACE = 'default';
/** The CLI's names and the API's IndexedValueType numbers for the SDK's search attribute types. */
const ATTRIBUTE_TYPES: Record<string, { cli: string; indexedValueType: number }> = {
  TEXT: { cli: 'Text', indexedValueType: 1 },
  KEYWORD: { cli: 'Keyword', indexedValueType: 2 },
  INT: { cli: 'Int', indexedValueType: 3 },
  DOUBLE: { cli: 'Double', indexedValueType: 4 },
  BOOL: { cli: 'Bool', indexedValueType: 5 },
  DATETIME: { cli: 'Datetime', indexedValueType: 6 },
  KEYWORD_LIST: { cli: 'KeywordList', indexedValueType: 7 },
};

function attributeType(key: (typeof CONSENT_SEARCH_ATTRIBUTES)[number]) {
  const type = ATTRIBUTE_TYPES[key.type];
  if (!type) throw new Error(`search attribute ${key.name}: unknown type ${key.type}`);
  return type;
}

/** The workflow's search attributes as `--search-attribute` values (registered when the DB is new). */
export function searchAttributeFlags(): string[] {
  return CONSENT_SEARCH_ATTRIBUTES.map((key) => `${key.name}=${attributeType(key).cli}`);
}

/**
 * Registers the workflow's search attributes that the namespace lacks. start-dev's flags apply only
 * to a new database, so an attribute added to the contract later needs this on an existing one.
 */
async function ensureSearchAttributes(connection: Connection, signal: AbortSignal): Promise<string[]> {
  const listed = async () =>
    (await connection.operatorService.listSearchAttributes({ namespace: DEV_NAMESPACE })).customAttributes ??
    {};
  const present = await listed();
  const missing = CONSENT_SEARCH_ATTRIBUTES.filter((key) => !(key.name in present));
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({
    namespace: DEV_NAMESPACE,
    searchAttributes: Object.fromEntries(
      missing.map((key) => [key.name, attributeType(key).indexedValueType]),
    ),
  });
  await waitFor(
    `search attributes ${missing.map((key) => key.name).join(', ')}`,
    async () => {
      const now = await listed();
      return missing.every((key) => key.name in now);
    },
    { timeoutMs: 15_000, signal },
  );
  return missing.map((key) => key.name);
}

const port = (fallback: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a port number')
    .transform(Number)
    .pipe(z.number().int().min(1, 'must be 1-65535').max(65535, 'must be 1-65535'))
    .optional()
    .transform((value) => value ?? fallback);

const devEnvSchema = z.object({
  DEV_TEMPORAL_PORT: port(7233),
  DEV_TEMPORAL_UI_PORT: port(8233),
  DEV_SANDBOX_PORT: port(4010),
  DEV_SMTP_PORT: port(1025),
  DEV_INBOX_PORT: port(1080),
  DEV_GATEWAY_PORT: port(8090),
  DEV_STATE_DIR: z.string().min(1).optional(),
});

export interface DevPorts {
  temporal: number;
  temporalUi: number;
  sandbox: number;
  smtp: number;
  inbox: number;
  gateway: number;
}

export interface DevStackSettings {
  ports: DevPorts;
  ui: boolean;
  /** Absolute path of the state directory (SQLite file, logs, sandbox groups). */
  stateDir: string;
}

/** The dev stack's ports from DEV_* variables (also used by `npm run demo` to find the stack). */
export function devPortsFromEnv(env: NodeJS.ProcessEnv = process.env): DevPorts {
  const result = devEnvSchema.safeParse(env);
  if (!result.success) {
    throw new Error(
      `Invalid dev stack environment: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const e = result.data;
  return {
    temporal: e.DEV_TEMPORAL_PORT,
    temporalUi: e.DEV_TEMPORAL_UI_PORT,
    sandbox: e.DEV_SANDBOX_PORT,
    smtp: e.DEV_SMTP_PORT,
    inbox: e.DEV_INBOX_PORT,
    gateway: e.DEV_GATEWAY_PORT,
  };
}

const usage = `Usage: npm run dev [-- --no-ui]

Starts, in this terminal: the Temporal dev server (+ Web UI), the HeyGen sandbox, a mail catcher
with a web inbox, and the avatar-consent worker. Ctrl-C stops all of it.

  --no-ui      run the Temporal dev server without its Web UI
  --help       this text

Environment:
  DEV_TEMPORAL_PORT (7233)  DEV_TEMPORAL_UI_PORT (8233)  DEV_SANDBOX_PORT (4010)
  DEV_SMTP_PORT (1025)      DEV_INBOX_PORT (1080)        DEV_GATEWAY_PORT (8090)
  DEV_STATE_DIR (.temporal-dev)
  HEYGEN_BASE_URL + HEYGEN_API_KEY   use this HeyGen API instead of the sandbox
  SMTP_URL                           send through this SMTP server instead of the local inbox
  EMAIL_FROM, LOG_LEVEL, TEMPORAL_TASK_QUEUE, TEMPORAL_CLI_PATH`;

export function parseDevArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): DevStackSettings | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'no-ui': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return 'help';
  return {
    ports: devPortsFromEnv(env),
    ui: !values['no-ui'],
    stateDir: resolve(env.DEV_STATE_DIR ?? '.temporal-dev'),
  };
}

/** The worker's environment: the local pieces unless the caller points at real services. */
export function devWorkerEnv(
  env: NodeJS.ProcessEnv,
  local: {
    temporalAddress: string;
    sandboxUrl: string;
    smtpUrl: string;
    gatewayUrl?: string;
    gatewaySecret?: string;
  },
): NodeJS.ProcessEnv {
  // The key goes with the URL: a real key must never be sent to the sandbox, nor the sandbox key to HeyGen.
  const realHeyGen = Boolean(env.HEYGEN_BASE_URL);
  return {
    ...env,
    TEMPORAL_ADDRESS: local.temporalAddress,
    TEMPORAL_NAMESPACE: DEV_NAMESPACE,
    TEMPORAL_TASK_QUEUE: env.TEMPORAL_TASK_QUEUE || DEFAULT_TASK_QUEUE,
    HEYGEN_BASE_URL: realHeyGen ? env.HEYGEN_BASE_URL : local.sandboxUrl,
    HEYGEN_API_KEY: realHeyGen ? env.HEYGEN_API_KEY : DEFAULT_API_KEY,
    SMTP_URL: env.SMTP_URL || local.smtpUrl,
    EMAIL_FROM: env.EMAIL_FROM || 'Avatar consent <consent@localhost>',
    LOG_LEVEL: env.LOG_LEVEL || 'INFO',
    // The consent page's redirect goes through the local gateway, which nudges the workflow.
    ...(local.gatewayUrl && local.gatewaySecret && !env.PUBLIC_BASE_URL
      ? { PUBLIC_BASE_URL: local.gatewayUrl, GATEWAY_SECRET: local.gatewaySecret }
      : {}),
  };
}

/** The gateway's HMAC secret, made once and kept in the state folder so links survive a restart. */
function devGatewaySecret(stateDir: string): string {
  const file = join(stateDir, 'gateway-secret');
  if (!existsSync(file)) writeFileSync(file, `hex:${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

// ---------------------------------------------------------------------------------------------
// Small helpers: ports, waiting
// ---------------------------------------------------------------------------------------------

class StopRequested extends Error {
  override readonly name = 'StopRequested';
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** True when something accepts connections on host:port, or the port cannot be bound there. */
export async function isPortBusy(port: number, host = DEV_HOST): Promise<boolean> {
  const accepts = await new Promise<boolean>((done) => {
    const socket = createConnection({ port, host });
    socket.setTimeout(500);
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      done(false);
    });
    socket.once('error', () => done(false));
  });
  if (accepts) return true;
  return new Promise<boolean>((done) => {
    const server = createTcpServer();
    server.once('error', () => done(true));
    server.listen(port, host, () => server.close(() => done(false)));
  });
}

/** Polls `check` every `intervalMs` until it returns true; throws after `timeoutMs` or when stopped. */
async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  { timeoutMs, intervalMs = 250, signal }: { timeoutMs: number; intervalMs?: number; signal: AbortSignal },
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (signal.aborted) throw new StopRequested('stopped while waiting');
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(intervalMs);
  }
}

async function httpOk(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await response.body?.cancel();
  return response.ok;
}

// ---------------------------------------------------------------------------------------------
// Mail catcher: SMTP in, a web inbox out
// ---------------------------------------------------------------------------------------------

export interface CaughtMail {
  id: number;
  receivedAt: string;
  envelopeFrom: string;
  envelopeTo: string[];
  from: string;
  to: string;
  subject: string;
  messageId: string | null;
  text: string;
  html: string | null;
  /** http(s) links found in the text and HTML parts, e.g. the consent link. */
  links: string[];
  raw: string;
}

export interface MailInbox {
  /** e.g. smtp://127.0.0.1:1025 */
  readonly smtpUrl: string;
  /** e.g. http://localhost:1080 */
  readonly webUrl: string;
  messages(): CaughtMail[];
  close(): Promise<void>;
}

export interface MailInboxOptions {
  host?: string;
  smtpPort: number;
  webPort: number;
  /** Oldest messages are dropped beyond this. Default 500. */
  maxMessages?: number;
  onMessage?: (mail: CaughtMail) => void;
}

const MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

function linksIn(...parts: Array<string | null>): string[] {
  const found = parts.flatMap((part) => part?.match(/https?:\/\/[^\s"'<>]+/g) ?? []);
  return [...new Set(found.map((link) => link.replace(/&amp;/g, '&').replace(/[).,;]+$/, '')))];
}

async function readAll(stream: SMTPServerDataStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

/**
 * An SMTP server that keeps every message in memory, and a small web inbox to read them:
 * `/` (list), `/messages/<id>` (one message, HTML part in a sandboxed frame), `/messages/<id>/raw`,
 * `/api/messages` (JSON, newest first) and `/api/messages/<id>`. Any SMTP login is accepted.
 */
export async function startMailInbox(options: MailInboxOptions): Promise<MailInbox> {
  const host = options.host ?? DEV_HOST;
  const maxMessages = options.maxMessages ?? 500;
  const store: CaughtMail[] = [];
  let nextId = 1;

  const smtp = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    authOptional: true,
    allowInsecureAuth: true,
    logger: false,
    disableReverseLookup: true,
    size: MAX_MESSAGE_BYTES,
    name: 'dev-inbox.localhost',
    closeTimeout: 1_000,
    onAuth(_auth, _session, callback) {
      callback(null, { user: 'dev' });
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
      readAll(stream)
        .then(async (raw) => {
          if (stream.sizeExceeded) {
            callback(smtpError(552, `Message exceeds ${MAX_MESSAGE_BYTES} bytes`));
            return;
          }
          const parsed = await simpleParser(raw);
          const html = typeof parsed.html === 'string' ? parsed.html : null;
          const text = parsed.text ?? '';
          const mailFrom = session.envelope.mailFrom;
          const mail: CaughtMail = {
            id: nextId++,
            receivedAt: new Date().toISOString(),
            envelopeFrom: mailFrom ? mailFrom.address : '',
            envelopeTo: session.envelope.rcptTo.map((rcpt) => rcpt.address),
            from: parsed.from?.text ?? '',
            to: (Array.isArray(parsed.to) ? parsed.to : parsed.to ? [parsed.to] : [])
              .map((a) => a.text)
              .join(', '),
            subject: parsed.subject ?? '(no subject)',
            messageId: parsed.messageId ?? null,
            text,
            html,
            links: linksIn(text, html),
            raw: raw.toString('utf8'),
          };
          store.push(mail);
          if (store.length > maxMessages) store.splice(0, store.length - maxMessages);
          callback(null, `Queued as ${mail.id}`);
          options.onMessage?.(mail);
        })
        .catch((error: unknown) => {
          callback(smtpError(451, `Could not read the message: ${String(error)}`));
        });
    },
  });
  // A client hanging up mid-session must not crash the stack.
  smtp.on('error', () => undefined);

  const webUrl = `http://localhost:${options.webPort}`;
  const web = createHttpServer((req, res) => serveInbox(req, res, store));

  await listenOn(smtp.server, options.smtpPort, host, 'SMTP');
  try {
    await listenOn(web, options.webPort, host, 'inbox');
  } catch (error) {
    await new Promise<void>((done) => smtp.close(() => done()));
    throw error;
  }

  let closing: Promise<void> | undefined;
  return {
    smtpUrl: `smtp://${host}:${options.smtpPort}`,
    webUrl,
    messages: () => [...store],
    close: () => {
      closing ??= Promise.all([
        new Promise<void>((done) => smtp.close(() => done())),
        new Promise<void>((done) => {
          web.close(() => done());
          web.closeAllConnections();
        }),
      ]).then(() => undefined);
      return closing;
    },
  };
}

function listenOn(server: NetServer, port: number, host: string, what: string): Promise<void> {
  return new Promise((done, fail) => {
    const onError = (error: Error) =>
      fail(new Error(`${what} server could not listen on ${host}:${port}: ${error.message}`));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      done();
    });
  });
}

const INBOX_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  // The email's HTML is shown in a frame without scripts; nothing on these pages needs any.
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; img-src data: http: https:; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const INBOX_STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:980px;padding:0 1rem;color:#1d1d1f}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #e3e3e3;vertical-align:top}
th{font-weight:600;color:#555}a{color:#0a58ca}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{color:#666}
iframe{width:100%;height:60vh;border:1px solid #ddd;border-radius:6px}pre{white-space:pre-wrap;background:#f6f6f6;padding:1rem;border-radius:6px}
.muted{color:#777}form{display:inline}button{font:inherit;padding:.2rem .7rem}`;

function inboxPage(title: string, body: string, refreshSeconds?: number): string {
  const refresh = refreshSeconds ? `<meta http-equiv="refresh" content="${refreshSeconds}">` : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>${refresh}<style>${INBOX_STYLE}</style></head><body>${body}</body></html>`;
}

function serveInbox(req: IncomingMessage, res: ServerResponse, store: CaughtMail[]): void {
  const url = new URL(req.url ?? '/', 'http://inbox.invalid');
  const method = req.method ?? 'GET';
  const send = (status: number, body: string, headers: Record<string, string> = INBOX_HEADERS) => {
    res.writeHead(status, headers).end(body);
  };
  const json = (status: number, value: unknown) =>
    send(status, JSON.stringify(value, null, 2), { 'content-type': 'application/json; charset=utf-8' });
  const find = (id: string | undefined) => store.find((mail) => String(mail.id) === id);
  const summary = ({ raw: _raw, text: _text, html: _html, ...rest }: CaughtMail) => rest;
  const segments = url.pathname.split('/').filter(Boolean);

  if (method === 'POST' && url.pathname === '/clear') {
    store.splice(0, store.length);
    res.writeHead(303, { location: '/' }).end();
    return;
  }
  if (method === 'DELETE' && url.pathname === '/api/messages') {
    store.splice(0, store.length);
    res.writeHead(204).end();
    return;
  }
  if (method !== 'GET') return send(405, inboxPage('Method not allowed', '<p>Method not allowed.</p>'));

  if (url.pathname === '/') {
    const rows = [...store]
      .reverse()
      .map(
        (mail) =>
          `<tr><td class="muted">${escapeHtml(mail.receivedAt.replace('T', ' ').slice(0, 19))}</td>` +
          `<td>${escapeHtml(mail.envelopeTo.join(', '))}</td>` +
          `<td><a href="/messages/${mail.id}">${escapeHtml(mail.subject)}</a></td></tr>`,
      )
      .join('');
    const table = store.length
      ? `<table><thead><tr><th>Received (UTC)</th><th>To</th><th>Subject</th></tr></thead><tbody>${rows}</tbody></table>`
      : '<p class="muted">No mail yet. This page refreshes itself.</p>';
    return send(
      200,
      inboxPage(
        `Inbox (${store.length})`,
        `<h1>Dev inbox <span class="muted">(${store.length})</span></h1>` +
          `<p class="muted">Everything the worker sends over SMTP lands here; nothing leaves this machine. ` +
          `<form method="post" action="/clear"><button>Clear</button></form></p>${table}`,
        5,
      ),
    );
  }
  if (segments[0] === 'messages' && segments.length === 2) {
    const mail = find(segments[1]);
    if (!mail)
      return send(404, inboxPage('Not found', '<p>No such message. <a href="/">Back to the inbox</a></p>'));
    // Links in the email open in a new tab: the frame itself may not navigate or run scripts.
    const frame = mail.html
      ? `<iframe sandbox="allow-popups allow-popups-to-escape-sandbox" srcdoc="${escapeHtml(`<base target="_blank">${mail.html}`)}"></iframe>`
      : '';
    const links = mail.links
      .map(
        (link) =>
          `<li><a href="${escapeHtml(link)}" target="_blank" rel="noreferrer">${escapeHtml(link)}</a></li>`,
      )
      .join('');
    return send(
      200,
      inboxPage(
        mail.subject,
        `<p><a href="/">← Inbox</a></p><h1>${escapeHtml(mail.subject)}</h1><dl>` +
          `<dt>From</dt><dd>${escapeHtml(mail.from)}</dd><dt>To</dt><dd>${escapeHtml(mail.to || mail.envelopeTo.join(', '))}</dd>` +
          `<dt>Received</dt><dd>${escapeHtml(mail.receivedAt)}</dd><dt>Message-ID</dt><dd>${escapeHtml(mail.messageId ?? '')}</dd>` +
          `<dt>Source</dt><dd><a href="/messages/${mail.id}/raw">raw message</a></dd></dl>` +
          (links ? `<h2>Links</h2><ul>${links}</ul>` : '') +
          frame +
          `<h2>Text part</h2><pre>${escapeHtml(mail.text)}</pre>`,
      ),
    );
  }
  if (segments[0] === 'messages' && segments.length === 3 && segments[2] === 'raw') {
    const mail = find(segments[1]);
    if (!mail) return send(404, 'No such message', { 'content-type': 'text/plain; charset=utf-8' });
    return send(200, mail.raw, {
      'content-type': 'text/plain; charset=utf-8',
      'x-content-type-options': 'nosniff',
    });
  }
  if (url.pathname === '/api/messages') return json(200, [...store].reverse().map(summary));
  if (segments[0] === 'api' && segments[1] === 'messages' && segments.length === 3) {
    const mail = find(segments[2]);
    return mail ? json(200, mail) : json(404, { error: 'not_found' });
  }
  return send(404, inboxPage('Not found', '<p>Not found. <a href="/">Inbox</a></p>'));
}

// ---------------------------------------------------------------------------------------------
// HeyGen sandbox groups survive a restart (the sandbox itself keeps state in memory only)
// ---------------------------------------------------------------------------------------------

const savedGroupsSchema = z.array(
  z.object({
    id: z.string().min(1),
    name: z.string(),
    consent_status: z.string().nullable(),
    status: z.enum(['processing', 'pending_consent', 'failed', 'completed']).nullable(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
  }),
);

async function saveSandboxGroups(sandbox: Sandbox, file: string): Promise<number> {
  const response = await fetch(`${sandbox.url}/_sandbox/groups`, { signal: AbortSignal.timeout(2_000) });
  const body = z.object({ data: savedGroupsSchema }).parse(await response.json());
  writeFileSync(file, `${JSON.stringify(body.data, null, 2)}\n`);
  return body.data.length;
}

function restoreSandboxGroups(sandbox: Sandbox, file: string): number {
  if (!existsSync(file)) return 0;
  const parsed = savedGroupsSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    console.warn(`  (ignoring ${file}: not a list of sandbox groups)`);
    return 0;
  }
  let restored = 0;
  for (const group of parsed.data) {
    const input: CreateGroupInput = {
      id: group.id,
      name: group.name,
      consentStatus: group.consent_status,
      status: group.status,
      error: group.error,
    };
    try {
      sandbox.createGroup(input);
      restored += 1;
    } catch {
      // A group the sandbox no longer accepts: skip it, the rest still help.
    }
  }
  return restored;
}

// ---------------------------------------------------------------------------------------------
// The Temporal dev server (a child process in its own process group)
// ---------------------------------------------------------------------------------------------

interface DevServer {
  child: ChildProcess;
  exited: Promise<number | null>;
  logFile: string;
}

function startTemporalDevServer(executable: string, settings: DevStackSettings): DevServer {
  const { ports, stateDir } = settings;
  const logFile = join(stateDir, 'temporal.log');
  const log = openSync(logFile, 'a');
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    join(stateDir, 'temporal.db'),
    '--ip',
    DEV_HOST,
    '--port',
    String(ports.temporal),
    ...(settings.ui ? ['--ui-port', String(ports.temporalUi)] : ['--headless']),
    ...searchAttributeFlags().flatMap((flag) => ['--search-attribute', flag]),
    '--log-level',
    'warn',
  ];
  // detached: Ctrl-C in the terminal reaches only this process, which stops the worker first and
  // then the server, instead of both dying at once.
  const child = spawn(executable, args, { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  const exited = new Promise<number | null>((done) => {
    child.once('exit', (code, signal) => done(code ?? (signal ? 128 : null)));
    child.once('error', () => done(-1));
  });
  return { child, exited, logFile };
}

async function stopTemporalDevServer(server: DevServer): Promise<void> {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  child.kill('SIGTERM');
  const stopped = await Promise.race([server.exited.then(() => true), sleep(15_000).then(() => false)]);
  if (!stopped) {
    console.warn('  Temporal dev server did not stop within 15 s: killing it');
    child.kill('SIGKILL');
    await server.exited;
  }
}

function tailOf(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// ---------------------------------------------------------------------------------------------
// The stack
// ---------------------------------------------------------------------------------------------

const say = (line = '') => console.log(line);

export async function runDevStack(settings: DevStackSettings): Promise<number> {
  const { ports } = settings;
  const stop = new AbortController();
  let exitCode = 0;

  let devServer: DevServer | undefined;
  let sandbox: Sandbox | undefined;
  let inbox: MailInbox | undefined;
  let connection: Connection | undefined;
  let worker: Promise<void> | undefined;
  let gateway: Gateway | undefined;
  const groupsFile = join(settings.stateDir, 'sandbox-groups.json');

  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstSignalAt === 0) {
      firstSignalAt = Date.now();
      say(`\n${signal}: stopping…`);
      stop.abort();
      return;
    }
    // One Ctrl-C often arrives more than once: from the terminal and relayed by npm and tsx.
    if (Date.now() - firstSignalAt < 2_000) return;
    console.error('Forced stop.');
    if (devServer?.child.pid !== undefined) devServer.child.kill('SIGKILL');
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Last resort: never leave the dev server running behind us.
  const killOnExit = () => {
    if (devServer && devServer.child.exitCode === null && devServer.child.signalCode === null) {
      devServer.child.kill('SIGKILL');
    }
  };
  process.on('exit', killOnExit);

  /** Asks the whole stack to stop, as Ctrl-C does (Temporal's Runtime also listens for SIGTERM). */
  const requestStop = (reason: string, code: number) => {
    if (stop.signal.aborted) return;
    console.error(reason);
    exitCode = code;
    process.kill(process.pid, 'SIGTERM');
  };

  try {
    // 1. Every port free, before anything starts.
    const wanted: Array<[string, number, string]> = [
      ['Temporal gRPC', ports.temporal, 'DEV_TEMPORAL_PORT'],
      ...(settings.ui
        ? [['Temporal Web UI', ports.temporalUi, 'DEV_TEMPORAL_UI_PORT'] as [string, number, string]]
        : []),
      ['HeyGen sandbox', ports.sandbox, 'DEV_SANDBOX_PORT'],
      ['mail catcher SMTP', ports.smtp, 'DEV_SMTP_PORT'],
      ['web inbox', ports.inbox, 'DEV_INBOX_PORT'],
      ['consent-return gateway', ports.gateway, 'DEV_GATEWAY_PORT'],
    ];
    const seen = new Map<number, [string, string]>();
    for (const [what, port, variable] of wanted) {
      const other = seen.get(port);
      if (other) {
        throw new Error(
          `${other[0]} and ${what} are both on port ${port}: change ${other[1]} or ${variable}.`,
        );
      }
      seen.set(port, [what, variable]);
    }
    const busy = [];
    for (const entry of wanted) if (await isPortBusy(entry[1])) busy.push(entry);
    if (busy.length > 0) {
      for (const [what, port, variable] of busy) {
        console.error(
          `Port ${port} (${what}) is already in use on ${DEV_HOST}. Stop what holds it, or set ${variable}.`,
        );
      }
      console.error(
        '(Is another `npm run dev`, a `temporal server start-dev` or `docker compose up` running?)',
      );
      return 1;
    }

    // 2. The Temporal CLI.
    const executable = resolveTemporalExecutable('dev-server');
    if (executable.type !== 'existing-path') {
      console.error(`The Temporal CLI was not found. ${howToInstall('dev-server')}`);
      return 1;
    }
    mkdirSync(settings.stateDir, { recursive: true });

    say('Starting the local avatar-consent stack…');
    devServer = startTemporalDevServer(executable.path, settings);
    const server = devServer;
    void server.exited.then((code) => {
      if (!stop.signal.aborted) {
        requestStop(
          `\nThe Temporal dev server exited (code ${code}). Last lines of ${server.logFile}:\n${tailOf(server.logFile)}`,
          1,
        );
      }
    });

    // 3. The sandbox and the inbox start while the server boots.
    sandbox = await startSandbox({ host: DEV_HOST, port: ports.sandbox, apiKeys: [DEFAULT_API_KEY] });
    const restored = restoreSandboxGroups(sandbox, groupsFile);
    inbox = await startMailInbox({
      smtpPort: ports.smtp,
      webPort: ports.inbox,
      onMessage: (mail) => {
        const link = `http://localhost:${ports.inbox}/messages/${mail.id}`;
        say(`  mail → ${mail.envelopeTo.join(', ')}: "${mail.subject}"  ${link}`);
      },
    });

    // 4. Temporal answers, the namespace exists, the search attributes are registered, the UI serves.
    const temporalAddress = `${DEV_HOST}:${ports.temporal}`;
    await waitFor(
      `the Temporal dev server on ${temporalAddress} (log: ${server.logFile})`,
      async () => {
        if (server.child.exitCode !== null) throw new Error('dev server exited');
        connection ??= await Connection.connect({ address: temporalAddress, connectTimeout: 1_000 });
        await connection.workflowService.describeNamespace({ namespace: DEV_NAMESPACE });
        return true;
      },
      { timeoutMs: 60_000, signal: stop.signal },
    );
    const added = await ensureSearchAttributes(connection!, stop.signal);
    if (added.length > 0) say(`  registered search attribute(s) ${added.join(', ')}`);
    if (settings.ui) {
      await waitFor(
        `the Temporal Web UI on port ${ports.temporalUi}`,
        () => httpOk(`http://${DEV_HOST}:${ports.temporalUi}/`),
        {
          timeoutMs: 30_000,
          signal: stop.signal,
        },
      );
    }

    // 5. The consent-return gateway: the consent page's redirect signals checkNow.
    const gatewaySecret = devGatewaySecret(settings.stateDir);
    gateway = await startGateway({
      host: DEV_HOST,
      port: ports.gateway,
      secrets: GatewaySecrets.fromTexts([gatewaySecret]),
      signal: checkNowSender(new Client({ connection: connection!, namespace: DEV_NAMESPACE })),
    });
    const gatewayUrl = `http://localhost:${ports.gateway}`;

    // 6. The worker, in this process.
    // A ConfigError names each bad variable, never a value.
    const config: WorkerConfig = loadWorkerConfig(
      devWorkerEnv(process.env, {
        temporalAddress,
        sandboxUrl: sandbox.url,
        smtpUrl: inbox.smtpUrl,
        gatewayUrl,
        gatewaySecret,
      }),
    );
    if (stop.signal.aborted) throw new StopRequested('stopped');
    worker = runWorker(config);
    void worker.then(
      () => {
        if (!stop.signal.aborted) requestStop('\nThe worker stopped on its own.', 1);
      },
      (error: unknown) => {
        requestStop(`\nThe worker failed: ${error instanceof Error ? error.message : String(error)}`, 1);
      },
    );
    await waitFor(
      `the worker to poll task queue ${config.TEMPORAL_TASK_QUEUE}`,
      async () => {
        const queue = await connection!.workflowService.describeTaskQueue({
          namespace: DEV_NAMESPACE,
          taskQueue: { name: config.TEMPORAL_TASK_QUEUE },
          taskQueueType: 1, // TASK_QUEUE_TYPE_WORKFLOW
        });
        return (queue.pollers ?? []).length > 0;
      },
      { timeoutMs: 60_000, signal: stop.signal },
    );

    // 7. Ready.
    const redacted = redactConfig(config);
    const realHeyGen = config.HEYGEN_BASE_URL !== sandbox.url;
    const realSmtp = config.SMTP_URL !== inbox.smtpUrl;
    say();
    say('avatar-consent dev stack is running');
    say(`  Temporal Web UI   ${settings.ui ? `http://localhost:${ports.temporalUi}` : '(off: --no-ui)'}`);
    say(
      `  Temporal          ${temporalAddress}  namespace ${DEV_NAMESPACE}, task queue ${config.TEMPORAL_TASK_QUEUE}`,
    );
    say(`  Mail inbox        ${inbox.webUrl}  (SMTP ${inbox.smtpUrl})`);
    say(`  HeyGen sandbox    ${sandbox.url}  key ${DEFAULT_API_KEY}, admin API ${sandbox.url}/_sandbox`);
    say(
      `  Return gateway    ${config.returnLinks ? `${config.returnLinks.publicBaseUrl} (the consent page's redirect polls at once)` : 'off (PUBLIC_BASE_URL set elsewhere)'}`,
    );
    if (realHeyGen) say(`  Worker → HeyGen   ${String(redacted.HEYGEN_BASE_URL)} (HEYGEN_BASE_URL)`);
    if (realSmtp) say(`  Worker → SMTP     ${String(redacted.SMTP_URL)} (SMTP_URL)`);
    say(`  State             ${join(settings.stateDir, 'temporal.db')} (workflows survive a restart)`);
    if (restored > 0) {
      say(`                    ${restored} sandbox group(s) restored; consent links from before the restart`);
      say(`                    no longer open: curl -X POST ${sandbox.url}/_sandbox/groups/<id>/approve`);
    }
    say();
    say('Try it: `npm run demo` in another terminal. Ctrl-C here stops everything.');
    say();

    // 8. Run until asked to stop.
    await new Promise<void>((done) => {
      if (stop.signal.aborted) done();
      else stop.signal.addEventListener('abort', () => done(), { once: true });
    });
  } catch (error) {
    if (!(error instanceof StopRequested)) {
      console.error(`\nnpm run dev failed: ${error instanceof Error ? error.message : String(error)}`);
      exitCode = 1;
      // Temporal's Runtime stops the worker on SIGTERM, as on Ctrl-C.
      if (worker && !stop.signal.aborted) process.kill(process.pid, 'SIGTERM');
    }
  } finally {
    // From here on, pieces going away is expected, not a failure to report.
    stop.abort();
    if (worker) {
      const drained = await Promise.race([
        worker.then(
          () => true,
          () => true,
        ),
        sleep(35_000).then(() => false),
      ]);
      if (!drained) console.warn('  the worker did not finish draining within 35 s');
    }
    // Reverse order: the worker is down (or never started), then the pieces it used.
    if (sandbox) {
      try {
        const saved = await saveSandboxGroups(sandbox, groupsFile);
        if (saved > 0) say(`  saved ${saved} sandbox group(s) to ${groupsFile}`);
      } catch {
        // Nothing to save, or the sandbox is already gone.
      }
      await sandbox.close();
    }
    await inbox?.close();
    await gateway?.close();
    await connection?.close().catch(() => undefined);
    if (devServer) await stopTemporalDevServer(devServer);
    process.off('exit', killOnExit);
    if (devServer || sandbox || inbox) say('Stopped.');
  }
  return exitCode;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let settings: DevStackSettings | 'help';
  try {
    settings = parseDevArgs(process.argv.slice(2));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    console.error(`\n${usage}`);
    process.exit(2);
  }
  if (settings === 'help') {
    console.log(usage);
    process.exit(0);
  }
  runDevStack(settings).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
