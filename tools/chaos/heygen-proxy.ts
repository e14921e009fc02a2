/**
 * A recording HTTP proxy between the worker and the HeyGen sandbox. It sees what the sandbox ledger
 * does not keep (the Retry-After header of every 429, the probe's tags on each request) and it can
 * go down for real (connections refused) and come back on the same port: a full HeyGen outage.
 *
 * It forwards bytes as they are. A worker that gives up on a request (client timeout) does not cancel
 * the upstream request, as with a real network: HeyGen may well finish work the client stopped waiting for.
 */
import { createHash } from 'node:crypto';
import { Agent, createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import type { ProxyRecord } from './retry-after.js';

export interface RecordingProxy {
  readonly url: string;
  readonly records: ProxyRecord[];
  readonly isUp: boolean;
  /** Refuses connections and drops the open ones (in-flight requests fail). */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
]);

/** Identifies a credential without keeping it. */
function keyIdOf(req: IncomingMessage): string {
  const apiKey = req.headers['x-api-key'];
  const bearer = /^Bearer +(\S+)/i.exec(req.headers.authorization ?? '')?.[1];
  const secret = (Array.isArray(apiKey) ? apiKey[0] : apiKey) ?? bearer;
  return secret ? createHash('sha256').update(secret).digest('hex').slice(0, 12) : '';
}

function textHeader(req: IncomingMessage, name: string): string | undefined {
  const raw = req.headers[name];
  return Array.isArray(raw) ? raw[0] : raw;
}

function numberHeader(req: IncomingMessage, name: string): number | null {
  const raw = textHeader(req, name);
  const value = Number(raw);
  return raw === undefined || !Number.isFinite(value) ? null : value;
}

/** The probe's activity tags, when the request came from inside an activity. */
function activityOf(req: IncomingMessage): ProxyRecord['activity'] {
  const type = textHeader(req, 'x-chaos-activity');
  const attempt = numberHeader(req, 'x-chaos-attempt');
  if (type === undefined || attempt === null) return null;
  return {
    type,
    attempt,
    id: textHeader(req, 'x-chaos-activity-id') ?? '',
    runId: textHeader(req, 'x-chaos-run-id') ?? '',
  };
}

export async function startRecordingProxy(opts: {
  target: string;
  /** Upstream requests still unanswered after this are dropped (a 'hang' fault). Default 30 s. */
  upstreamTimeoutMs?: number;
}): Promise<RecordingProxy> {
  const target = new URL(opts.target);
  const upstreamTimeoutMs = opts.upstreamTimeoutMs ?? 30_000;
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const records: ProxyRecord[] = [];
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let port = 0;
  let nextId = 1;

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://proxy.invalid');
    const record: ProxyRecord = {
      id: nextId++,
      at: Date.now(),
      method: req.method ?? 'GET',
      path: url.pathname,
      keyId: keyIdOf(req),
      pid: numberHeader(req, 'x-chaos-pid'),
      knownUntil: numberHeader(req, 'x-chaos-known-until'),
      sentAt: numberHeader(req, 'x-chaos-sent-at'),
      activity: activityOf(req),
      status: 0,
      retryAfter: null,
      respondedAt: null,
      clientAborted: false,
    };
    records.push(record);

    const headers: Record<string, string | string[] | undefined> = { ...req.headers, host: target.host };
    for (const name of Object.keys(headers)) if (HOP_BY_HOP.has(name)) delete headers[name];
    const upstream = httpRequest(
      {
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers,
        agent,
      },
      (upstreamRes) => {
        const status = upstreamRes.statusCode ?? 502;
        const retryAfter = upstreamRes.headers['retry-after'];
        const outHeaders: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(upstreamRes.headers)) {
          if (value !== undefined && !HOP_BY_HOP.has(name)) outHeaders[name] = value;
        }
        if (status === 429) {
          record.retryAfter = retryAfter ?? null;
          outHeaders['x-chaos-at'] = String(record.at);
        }
        if (res.destroyed) {
          upstreamRes.resume();
          return;
        }
        record.status = status;
        res.writeHead(status, outHeaders);
        upstreamRes.pipe(res);
      },
    );
    upstream.setTimeout(upstreamTimeoutMs, () => upstream.destroy(new Error('upstream timeout')));
    upstream.on('error', () => {
      if (!res.headersSent && !res.destroyed) {
        record.status = 502;
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(
          '{"error":{"code":"bad_gateway","message":"chaos proxy: upstream failed","param":null,"doc_url":null}}',
        );
      } else {
        res.destroy();
      }
    });
    res.on('finish', () => {
      record.respondedAt = Date.now();
    });
    res.on('close', () => {
      if (!res.writableFinished) record.clientAborted = true;
    });
    req.pipe(upstream);
  };

  const listen = async (): Promise<void> => {
    const instance = createServer(handle);
    instance.keepAliveTimeout = 5_000;
    instance.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      instance.once('error', reject);
      instance.listen(port, '127.0.0.1', () => {
        instance.off('error', reject);
        resolve();
      });
    });
    port = (instance.address() as AddressInfo).port;
    server = instance;
  };

  const down = async (): Promise<void> => {
    const instance = server;
    if (!instance) return;
    server = null;
    const closed = new Promise<void>((resolve) => instance.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  };

  await listen();
  return {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    records,
    get isUp() {
      return server !== null;
    },
    down,
    up: async () => {
      if (!server) await listen();
    },
    close: async () => {
      await down();
      agent.destroy();
    },
  };
}
