/**
 * The dev stack's web inbox: a small read-only web view over the kit's SMTP catcher.
 *
 * `/` (list, refreshes itself), `/messages/<id>` (one message, its HTML part in a sandboxed frame),
 * `/messages/<id>/raw`, `/api/messages` (JSON, newest first), `/api/messages/<id>`; `POST /clear`
 * and `DELETE /api/messages` empty it.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { escapeHtml } from '../../src/rules/html.js';
import type { ReceivedMail, SmtpCatcher } from '../kit/smtp-catcher.js';

export interface WebInbox {
  /** e.g. http://localhost:1080 */
  readonly url: string;
  close(): Promise<void>;
}

/** One message as the JSON API shows it. */
export interface InboxMessage {
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
  links: string[];
  raw: string;
}

function inboxMessage(mail: ReceivedMail): InboxMessage {
  return {
    id: mail.id,
    receivedAt: new Date(mail.receivedAt).toISOString(),
    envelopeFrom: mail.envelopeFrom,
    envelopeTo: mail.to,
    from: mail.from,
    to: mail.toHeader,
    subject: mail.subject || '(no subject)',
    messageId: mail.messageId ?? null,
    text: mail.text,
    html: mail.html || null,
    links: mail.links,
    raw: mail.raw,
  };
}

const HTML_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  // The email's HTML is shown in a frame without scripts; nothing on these pages needs any.
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; img-src data: http: https:; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:980px;padding:0 1rem;color:#1d1d1f}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #e3e3e3;vertical-align:top}
th{font-weight:600;color:#555}a{color:#0a58ca}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{color:#666}
iframe{width:100%;height:60vh;border:1px solid #ddd;border-radius:6px}pre{white-space:pre-wrap;background:#f6f6f6;padding:1rem;border-radius:6px}
.muted{color:#777}form{display:inline}button{font:inherit;padding:.2rem .7rem}`;

function page(title: string, body: string, refreshSeconds?: number): string {
  const refresh = refreshSeconds ? `<meta http-equiv="refresh" content="${refreshSeconds}">` : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>${refresh}<style>${STYLE}</style></head><body>${body}</body></html>`;
}

function listPage(mails: readonly InboxMessage[]): string {
  const rows = [...mails]
    .reverse()
    .map(
      (mail) =>
        `<tr><td class="muted">${escapeHtml(mail.receivedAt.replace('T', ' ').slice(0, 19))}</td>` +
        `<td>${escapeHtml(mail.envelopeTo.join(', '))}</td>` +
        `<td><a href="/messages/${mail.id}">${escapeHtml(mail.subject)}</a></td></tr>`,
    )
    .join('');
  const table = mails.length
    ? `<table><thead><tr><th>Received (UTC)</th><th>To</th><th>Subject</th></tr></thead><tbody>${rows}</tbody></table>`
    : '<p class="muted">No mail yet. This page refreshes itself.</p>';
  return page(
    `Inbox (${mails.length})`,
    `<h1>Dev inbox <span class="muted">(${mails.length})</span></h1>` +
      `<p class="muted">Everything the worker sends over SMTP lands here; nothing leaves this machine. ` +
      `<form method="post" action="/clear"><button>Clear</button></form></p>${table}`,
    5,
  );
}

function messagePage(mail: InboxMessage): string {
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
  return page(
    mail.subject,
    `<p><a href="/">← Inbox</a></p><h1>${escapeHtml(mail.subject)}</h1><dl>` +
      `<dt>From</dt><dd>${escapeHtml(mail.from)}</dd><dt>To</dt><dd>${escapeHtml(mail.to || mail.envelopeTo.join(', '))}</dd>` +
      `<dt>Received</dt><dd>${escapeHtml(mail.receivedAt)}</dd><dt>Message-ID</dt><dd>${escapeHtml(mail.messageId ?? '')}</dd>` +
      `<dt>Source</dt><dd><a href="/messages/${mail.id}/raw">raw message</a></dd></dl>` +
      (links ? `<h2>Links</h2><ul>${links}</ul>` : '') +
      frame +
      `<h2>Text part</h2><pre>${escapeHtml(mail.text)}</pre>`,
  );
}

function serve(req: IncomingMessage, res: ServerResponse, catcher: SmtpCatcher): void {
  const url = new URL(req.url ?? '/', 'http://inbox.invalid');
  const method = req.method ?? 'GET';
  const send = (status: number, body: string, headers: Record<string, string> = HTML_HEADERS) => {
    res.writeHead(status, headers).end(body);
  };
  const json = (status: number, value: unknown) =>
    send(status, JSON.stringify(value, null, 2), { 'content-type': 'application/json; charset=utf-8' });
  const mails = catcher.messages.map(inboxMessage);
  const find = (id: string | undefined) => mails.find((mail) => String(mail.id) === id);
  const summary = ({ raw: _raw, text: _text, html: _html, ...rest }: InboxMessage) => rest;
  const segments = url.pathname.split('/').filter(Boolean);

  if (method === 'POST' && url.pathname === '/clear') {
    catcher.messages.splice(0);
    res.writeHead(303, { location: '/' }).end();
    return;
  }
  if (method === 'DELETE' && url.pathname === '/api/messages') {
    catcher.messages.splice(0);
    res.writeHead(204).end();
    return;
  }
  if (method !== 'GET') return send(405, page('Method not allowed', '<p>Method not allowed.</p>'));

  if (url.pathname === '/') return send(200, listPage(mails));
  if (segments[0] === 'messages' && segments.length === 2) {
    const mail = find(segments[1]);
    if (!mail)
      return send(404, page('Not found', '<p>No such message. <a href="/">Back to the inbox</a></p>'));
    return send(200, messagePage(mail));
  }
  if (segments[0] === 'messages' && segments.length === 3 && segments[2] === 'raw') {
    const mail = find(segments[1]);
    if (!mail) return send(404, 'No such message', { 'content-type': 'text/plain; charset=utf-8' });
    return send(200, mail.raw, {
      'content-type': 'text/plain; charset=utf-8',
      'x-content-type-options': 'nosniff',
    });
  }
  if (url.pathname === '/api/messages') return json(200, [...mails].reverse().map(summary));
  if (segments[0] === 'api' && segments[1] === 'messages' && segments.length === 3) {
    const mail = find(segments[2]);
    return mail ? json(200, mail) : json(404, { error: 'not_found' });
  }
  return send(404, page('Not found', '<p>Not found. <a href="/">Inbox</a></p>'));
}

/** Serves the catcher's messages on host:port (0: a free port). */
export async function startWebInbox(
  catcher: SmtpCatcher,
  { host, port }: { host: string; port: number },
): Promise<WebInbox> {
  const server = createServer((req, res) => serve(req, res, catcher));
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) =>
      reject(new Error(`The web inbox could not listen on ${host}:${port}: ${error.message}`));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address();
  const bound = address !== null && typeof address === 'object' ? address.port : port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://localhost:${bound}`,
    close: () => {
      closing ??= new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
