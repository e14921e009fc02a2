/**
 * The consent-return gateway: where HeyGen's consent page sends the person's browser.
 *
 *   GET /consent-return?t=<token>  valid → nudge the workflow (checkNow), 303 to the token's `to`
 *                                  (or the thank-you page); invalid 400, expired 410, no nudge
 *   GET /thank-you                 neutral thank-you page
 *   GET /healthz                   200
 *
 * The redirect destination comes only from the signed token (no open redirect). The nudge is a
 * hint: whatever happens to it (workflow gone, Temporal down, slow), the person is still
 * redirected, because they did their part and the workflow's scheduled poll will see the outcome.
 *
 * Floods: every request but /healthz takes a token from its client's bucket (429 with Retry-After
 * when empty), a workflow is nudged at most once per cooldown, and what a flood would log over and
 * over (refusals, replays) goes through a sampled log, so the log volume stays bounded.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rerouteUrlSchema } from '../rules/input.js';
import { HTML_SECURITY_HEADERS, pageStatus, renderPage } from './pages.js';
import type { GatewayPage } from './pages.js';
import { clientAddress, clientFingerprinter, ClientRateLimiter } from './rate-limit.js';
import { createSampledLog } from './sampled-log.js';
import { RETURN_PATH, ReturnTokenError, tokenFingerprint, verifyReturnToken } from './tokens.js';
import type { GatewaySecrets, ReturnTokenPayload } from './tokens.js';

/** Sends `checkNow` to the workflow (runId-less handle, so continue-as-new is fine). */
export type CheckNowSender = (workflowId: string, runId?: string) => Promise<void>;

export type LogFields = Record<string, string | number | boolean | null | undefined>;
export interface GatewayLogger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** One JSON object per line on stdout/stderr. */
export const jsonLineLogger: GatewayLogger = {
  info: (message, fields) => console.log(JSON.stringify({ level: 'info', msg: message, ...fields })),
  warn: (message, fields) => console.warn(JSON.stringify({ level: 'warn', msg: message, ...fields })),
  error: (message, fields) => console.error(JSON.stringify({ level: 'error', msg: message, ...fields })),
};

export interface GatewayOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  secrets: GatewaySecrets;
  signal: CheckNowSender;
  /** Where to send the person when the token has no `to`; default the built-in `thank-you` page. */
  thankYouUrl?: string;
  /** Clock for token expiry, the rate limit and the log sampling intervals (tests). */
  now?: () => number;
  logger?: GatewayLogger;
  /** How long the redirect waits for the signal before going ahead anyway. Default 2000 ms. */
  signalTimeoutMs?: number;
  /**
   * Each nudge makes the workflow poll HeyGen at once, and a return link can be replayed: at most
   * one signal per workflow per this many ms. Default 10 000; 0 turns it off.
   */
  signalCooldownMs?: number;
  /** Signals in flight beyond this are skipped (the scheduled poll still runs). Default 64. */
  maxSignalsInFlight?: number;
  /**
   * How long close() waits for open requests and pending signals before cutting connections.
   * Default 10 000; keep it above the signal's own deadline so no call outlives the gateway.
   */
  closeGraceMs?: number;
  /**
   * Per-client limit on every request but /healthz: `burst` requests in a row, then `perMinute`
   * sustained. Default DEFAULT_RATE_LIMIT; perMinute 0 turns it off.
   */
  rateLimit?: { perMinute: number; burst: number };
  /**
   * How many reverse proxies in front append the client's address to X-Forwarded-For. Default 0:
   * the header is ignored and the socket's peer is the client (anyone can send the header).
   */
  trustedProxies?: number;
  /**
   * Refusals and replays are logged one by one up to this many per reason per interval, then
   * counted in one summary line. Defaults 5 and 60 000 ms.
   */
  refusedLog?: { perReason?: number; intervalMs?: number };
}

/**
 * A person needs a few requests (link, thank-you page, favicon); 60 in a row leaves room for an
 * office behind one address, and 60 a minute sustained is far below a flood (2,862 requests/s seen).
 */
export const DEFAULT_RATE_LIMIT = { perMinute: 60, burst: 60 } as const;

export interface Gateway {
  /** http://host:port, for tests and logs. */
  url: string;
  host: string;
  port: number;
  /** Stops accepting requests, lets in-flight ones finish (bounded), and waits for pending signals. */
  close(): Promise<void>;
}

/** Longer request targets get 414 before any parsing; a valid one is at most ~1.9 kB. */
export const MAX_REQUEST_TARGET_LENGTH = 4096;
export const THANK_YOU_PATH = '/thank-you';
/**
 * Relative, so it also works when a reverse proxy serves the gateway under a path prefix: the
 * browser resolves it against …/consent-return.
 */
const THANK_YOU_LOCATION = `.${THANK_YOU_PATH}`;
const MAX_COOLDOWN_ENTRIES = 10_000;
/** Token characters; anything after them (HeyGen might append its own text) is ignored. */
const tokenPrefix = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/;

const baseHeaders = {
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
} as const;

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const logger = options.logger ?? jsonLineLogger;
  const now = options.now ?? Date.now;
  const signalTimeoutMs = options.signalTimeoutMs ?? 2_000;
  const cooldownMs = options.signalCooldownMs ?? 10_000;
  const maxInFlight = options.maxSignalsInFlight ?? 64;
  const closeGraceMs = options.closeGraceMs ?? 10_000;
  const thankYouLocation = options.thankYouUrl ?? THANK_YOU_LOCATION;
  if (options.thankYouUrl !== undefined && !rerouteUrlSchema.safeParse(options.thankYouUrl).success) {
    throw new TypeError('thankYouUrl must be an https URL (plain http only for localhost)');
  }

  const lastSignalAt = new Map<string, number>();
  const inFlight = new Set<Promise<void>>();
  const rateLimit = options.rateLimit ?? DEFAULT_RATE_LIMIT;
  const limiter =
    rateLimit.perMinute > 0
      ? new ClientRateLimiter({ perMinute: rateLimit.perMinute, burst: rateLimit.burst, now })
      : undefined;
  const trustedProxies = options.trustedProxies ?? 0;
  const fingerprintClient = clientFingerprinter();
  const sampled = createSampledLog(logger, { ...options.refusedLog, now });

  function sendPage(res: ServerResponse, page: GatewayPage, extraHeaders: Record<string, string> = {}): void {
    const body = renderPage(page);
    res.writeHead(pageStatus(page), {
      ...HTML_SECURITY_HEADERS,
      ...extraHeaders,
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }

  function redirect(res: ServerResponse, location: string): void {
    res.writeHead(303, { ...baseHeaders, Location: location, 'Content-Length': 0 });
    res.end();
  }

  /** The one place the destination is chosen: the signed `to`, else the thank-you page. */
  function destinationOf(payload: ReturnTokenPayload): string {
    if (payload.to !== undefined) {
      const checked = rerouteUrlSchema.safeParse(payload.to);
      // Normalised by URL: no raw control characters can reach the Location header.
      if (checked.success) return new URL(checked.data).href;
    }
    return thankYouLocation;
  }

  function rememberSignal(workflowId: string, at: number): void {
    lastSignalAt.delete(workflowId);
    lastSignalAt.set(workflowId, at);
    if (lastSignalAt.size > MAX_COOLDOWN_ENTRIES) {
      // Maps iterate in insertion order: the first key is the least recently nudged.
      const oldest = lastSignalAt.keys().next().value;
      if (oldest !== undefined) lastSignalAt.delete(oldest);
    }
  }

  /**
   * Sends checkNow, waiting at most signalTimeoutMs; never throws. Returns why it did not try, if
   * it did not: the caller logs that (sampled), since a replayed link repeats it at will.
   */
  async function nudge(
    payload: ReturnTokenPayload,
    fingerprint: string,
  ): Promise<'cooldown' | 'overloaded' | undefined> {
    const fields = { workflowId: payload.wid, runId: payload.rid, token: fingerprint };
    const at = now();
    const last = lastSignalAt.get(payload.wid);
    if (cooldownMs > 0 && last !== undefined && at - last < cooldownMs) return 'cooldown';
    if (inFlight.size >= maxInFlight) return 'overloaded';
    rememberSignal(payload.wid, at);

    const started = Date.now();
    const sending = (async () => {
      try {
        await options.signal(payload.wid, payload.rid);
        logger.info('checkNow sent', { ...fields, outcome: 'signalled', ms: Date.now() - started });
      } catch (err) {
        const name = err instanceof Error ? err.name : typeof err;
        if (name === 'WorkflowNotFoundError') {
          logger.info('checkNow not delivered: workflow not found (probably finished)', {
            ...fields,
            outcome: 'not_found',
          });
        } else {
          // Temporal unreachable or similar: the scheduled poll will still see the approval.
          logger.warn('checkNow failed', {
            ...fields,
            outcome: 'failed',
            error: name,
            detail: err instanceof Error ? err.message.slice(0, 300) : undefined,
          });
        }
      }
    })();
    inFlight.add(sending);
    void sending.finally(() => inFlight.delete(sending));

    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), signalTimeoutMs);
      timer.unref();
    });
    const first = await Promise.race([sending.then(() => 'done' as const), timedOut]);
    clearTimeout(timer);
    if (first === 'timeout') {
      logger.warn('checkNow still pending; redirecting without waiting', {
        ...fields,
        outcome: 'timeout',
        waitedMs: signalTimeoutMs,
      });
    }
    return undefined;
  }

  async function consentReturn(res: ServerResponse, query: URLSearchParams): Promise<void> {
    const values = query.getAll('t');
    // Zero or several `t`: refuse rather than guess which one was meant.
    const raw = values.length === 1 ? values[0]! : '';
    const token = tokenPrefix.exec(raw)?.[0] ?? raw;
    const fingerprint = tokenFingerprint(token);
    let payload: ReturnTokenPayload;
    try {
      payload = verifyReturnToken(token, options.secrets, now());
    } catch (err) {
      const code = err instanceof ReturnTokenError ? err.code : 'malformed';
      sampled.warn(code, 'consent return refused', {
        token: values.length === 1 ? fingerprint : `${values.length} t parameters`,
        tokenLength: raw.length,
        workflowId: err instanceof ReturnTokenError ? err.workflowId : undefined,
      });
      sendPage(res, code === 'expired' ? 'expired-link' : 'invalid-link');
      return;
    }
    const skipped = await nudge(payload, fingerprint);
    const location = destinationOf(payload);
    const fields = {
      workflowId: payload.wid,
      token: fingerprint,
      // The origin only: the caller's URL may carry their own identifiers.
      redirect: location === thankYouLocation ? 'thank-you' : new URL(location).origin,
    };
    if (skipped === 'cooldown') {
      sampled.info('cooldown', 'consent return; checkNow skipped: workflow nudged moments ago', {
        ...fields,
        runId: payload.rid,
        outcome: 'cooldown',
      });
    } else if (skipped === 'overloaded') {
      sampled.warn('overloaded', 'consent return; checkNow skipped: too many signals in flight', {
        ...fields,
        runId: payload.rid,
        outcome: 'overloaded',
      });
    } else {
      logger.info('consent return', fields);
    }
    redirect(res, location);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Nothing here reads a body; drain it so keep-alive connections stay usable.
    req.resume();
    const target = req.url ?? '/';
    const queryAt = target.indexOf('?');
    const path = queryAt === -1 ? target : target.slice(0, queryAt);
    // Health checks come from the orchestrator, often through the same proxy: never limited.
    if (limiter && path !== '/healthz') {
      const client = clientAddress(req, trustedProxies);
      const decision = limiter.take(client);
      if (!decision.allowed) {
        const retryAfterS = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
        sampled.warn('rate_limited', 'request refused: too many requests from one client', {
          client: fingerprintClient(client),
          retryAfterS,
        });
        sendPage(res, 'too-many-requests', { 'Retry-After': String(retryAfterS) });
        return;
      }
    }
    if (target.length > MAX_REQUEST_TARGET_LENGTH) {
      sampled.warn('uri_too_long', 'request target too long', { length: target.length });
      sendPage(res, 'uri-too-long');
      return;
    }
    const query = new URLSearchParams(queryAt === -1 ? '' : target.slice(queryAt + 1));
    const method = req.method ?? 'GET';
    const readOnly = method === 'GET' || method === 'HEAD';

    switch (path) {
      case '/healthz':
        if (!readOnly) return sendPage(res, 'method-not-allowed', { Allow: 'GET, HEAD' });
        res.writeHead(200, {
          ...baseHeaders,
          'Content-Type': 'text/plain; charset=utf-8',
          'Content-Length': 3,
        });
        res.end(method === 'HEAD' ? undefined : 'ok\n');
        return;
      case THANK_YOU_PATH:
        if (!readOnly) return sendPage(res, 'method-not-allowed', { Allow: 'GET, HEAD' });
        return sendPage(res, 'thank-you');
      case RETURN_PATH:
        // Only a real navigation (GET) nudges; HEAD from link checkers must not.
        if (method !== 'GET') return sendPage(res, 'method-not-allowed', { Allow: 'GET' });
        return consentReturn(res, query);
      default:
        return sendPage(res, 'not-found');
    }
  }

  const server = createServer(
    { requestTimeout: 15_000, headersTimeout: 10_000, keepAliveTimeout: 5_000, maxHeaderSize: 16_384 },
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        sampled.error('server_error', 'request failed', {
          error: err instanceof Error ? err.name : typeof err,
        });
        if (!res.headersSent) sendPage(res, 'server-error');
        else res.destroy();
      });
    },
  );
  server.on('clientError', (_err, socket) => {
    // Malformed HTTP or oversized headers: answer plainly if the socket is still writable.
    if (socket.writable)
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  async function close(): Promise<void> {
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const grace = new Promise<void>((resolve) => setTimeout(resolve, closeGraceMs).unref());
    await Promise.race([Promise.all([stopped, ...inFlight]), grace]);
    // Whatever is still open after the grace period is cut off.
    server.closeAllConnections();
    await stopped;
    // The count of what was left out of the logs since the last summary.
    sampled.close();
  }

  return {
    url: `http://${hostForUrl}:${address.port}`,
    host: address.address,
    port: address.port,
    close: () => (closing ??= close()),
  };
}
