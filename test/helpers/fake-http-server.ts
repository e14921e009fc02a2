/**
 * A tiny scripted HTTP server for HeyGen client tests (not the HeyGen sandbox): answers queued responses
 * in order (then a fallback), and records every request with its headers and body.
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventually } from '../../tools/kit/eventually.js';

/** A 127.0.0.1 port with nothing listening (the kit's freePort, under the name the client tests use). */
export { freePort as unusedLocalPort } from '../../tools/kit/ports.js';

export type ScriptedResponse =
  /** A normal answer; an object body is sent as JSON. */
  | { status: number; headers?: Record<string, string>; body?: string | object }
  /** Never answer (the socket stays open until the client gives up or the server closes). */
  | { hang: true }
  /** Send status, headers and the start of a body, then stall forever. */
  | { stallAfter: string; status: number; headers?: Record<string, string> }
  /** Destroy the socket without answering. */
  | { destroy: true };

export interface RecordedRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
  pathname: string;
  searchParams: URLSearchParams;
  headers: IncomingHttpHeaders;
  bodyText: string;
}

export interface FakeHttpServer {
  /** e.g. http://127.0.0.1:43123 */
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Queue answers for the next requests, in order. */
  enqueue(...responses: ScriptedResponse[]): void;
  /** Answer used when the queue is empty (default: 500 with a JSON error). */
  setFallback(response: ScriptedResponse): void;
  /** Scripted answers not yet used. */
  pendingResponses(): number;
  /** Forgets recorded requests and queued answers (the fallback stays). */
  reset(): void;
  /** Resolves once at least `count` requests have arrived (rejects after `timeoutMs`). */
  waitForRequests(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

function send(res: ServerResponse, scripted: ScriptedResponse): void {
  if ('hang' in scripted) return;
  if ('destroy' in scripted) {
    res.socket?.destroy();
    return;
  }
  if ('stallAfter' in scripted) {
    res.writeHead(scripted.status, { 'content-type': 'application/json', ...scripted.headers });
    res.write(scripted.stallAfter);
    return;
  }
  const isJson = scripted.body !== undefined && typeof scripted.body !== 'string';
  const text =
    scripted.body === undefined
      ? ''
      : typeof scripted.body === 'string'
        ? scripted.body
        : JSON.stringify(scripted.body);
  res.writeHead(scripted.status, {
    ...(isJson ? { 'content-type': 'application/json' } : {}),
    ...scripted.headers,
  });
  res.end(text);
}

export async function startFakeHttpServer(): Promise<FakeHttpServer> {
  const requests: RecordedRequest[] = [];
  const queue: ScriptedResponse[] = [];
  let fallback: ScriptedResponse = {
    status: 500,
    body: {
      error: { code: 'internal_error', message: 'fake server: nothing scripted', param: null, doc_url: null },
    },
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const parsed = new URL(req.url ?? '/', 'http://fake.invalid');
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        pathname: parsed.pathname,
        searchParams: parsed.searchParams,
        headers: req.headers,
        bodyText: Buffer.concat(chunks).toString('utf8'),
      });
      send(res, queue.shift() ?? fallback);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    enqueue: (...responses) => queue.push(...responses),
    setFallback: (response) => {
      fallback = response;
    },
    pendingResponses: () => queue.length,
    reset: () => {
      requests.length = 0;
      queue.length = 0;
    },
    waitForRequests: async (count, timeoutMs = 5_000) => {
      await eventually(`${count} request(s) at the fake server`, () => requests.length >= count, {
        timeoutMs,
        intervalMs: 10,
      });
    },
    close: async () => {
      // Hanging and stalled answers keep sockets open; drop them so close() can finish.
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}
