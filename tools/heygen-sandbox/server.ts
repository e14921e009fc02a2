import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { handleAdminRequest } from './admin-api.js';
import { HTML_HEADERS } from './consent-page.js';
import { handleConsentRoute } from './consent-routes.js';
import { SandboxCore } from './core.js';
import type { ApiResponse } from './http.js';
import { apiError, notFound, singleHeader, writeJson, writeRaw } from './http.js';
import { createGroupInputSchema, groupPatchSchema } from './schemas.js';
import { restoreInto, snapshotOf } from './snapshot.js';
import type { AvatarGroupItem, CreateGroupInput, LedgerEntry, Sandbox, SandboxOptions } from './types.js';
import { handleApiRequest } from './v3-api.js';

export type * from './types.js';

/**
 * Starts the HeyGen sandbox: a local stand-in for HeyGen's API (auth, consent, idempotency,
 * listing, errors in HeyGen's envelope), its hosted consent page, and an admin API for tests.
 *
 * Ledger: every request except the admin API (/_sandbox/...) is recorded, including the hosted
 * consent page (/consent/...), so a test can see that a person opened and answered a link.
 */
export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const core = new SandboxCore(options);
  const server = createServer((req, res) => void serve(core, req, res));
  const host = options.host ?? '127.0.0.1';
  await listen(server, options.port ?? 0, host);
  const { port } = server.address() as AddressInfo;
  const url = `http://${urlHost(host)}:${port}`;
  core.publicUrl = (options.publicUrl ?? url).replace(/\/+$/, '');

  const changing =
    <A extends unknown[], R>(fn: (...args: A) => R) =>
    (...args: A): R => {
      const result = fn(...args);
      core.notifyStateChange();
      return result;
    };

  let closing: Promise<void> | undefined;
  return {
    url,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        core.shutdown();
        server.close(() => resolve());
        // Idle keep-alive sockets, in-flight requests and 'hang' faults alike.
        server.closeAllConnections();
      });
      return closing;
    },
    createGroup: changing((input?: CreateGroupInput) =>
      core.groups.create(createGroupInputSchema.parse(input ?? {})),
    ),
    getGroup: (id) => core.groups.get(id),
    updateGroup: changing((id: string, patch: Partial<AvatarGroupItem>) => {
      core.groups.update(id, groupPatchSchema.parse(patch));
    }),
    deleteGroup: changing((id: string) => {
      core.groups.delete(id);
    }),
    approve: changing((groupId: string) => {
      core.approve(groupId);
    }),
    consents: (groupId) => core.consents.list(groupId),
    ledger: () => core.ledger.list(),
    clearLedger: () => core.ledger.clear(),
    injectFault: (fault) => void core.faults.inject(fault),
    clearFaults: () => core.faults.clear(),
    faults: () => core.faults.list(),
    advanceClock: (ms) => core.clock.advance(ms),
    now: () => core.clock.now(),
    snapshot: () => snapshotOf(core),
    restore: changing((snapshot: unknown) => restoreInto(core, snapshot)),
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** A host for URLs: wildcard addresses become loopback, IPv6 literals get brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

const LOCAL_BASE = 'http://sandbox.invalid';

async function serve(core: SandboxCore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  // A request target no URL parser accepts is routed as '/', which answers 404.
  const target = req.url ?? '/';
  const url = new URL(URL.canParse(target, LOCAL_BASE) ? target : '/', LOCAL_BASE);
  const path = url.pathname;
  const isAdmin = path === '/_sandbox' || path.startsWith('/_sandbox/');
  const entry: LedgerEntry | null = isAdmin
    ? null
    : core.ledger.open({
        at: core.clock.now(),
        method,
        path,
        query: url.search.slice(1),
        idempotencyKey: singleHeader(req, 'idempotency-key') ?? null,
      });
  // Reads leave the state as it was; anything else may have changed it (even when it failed).
  if (method !== 'GET' && method !== 'HEAD') res.once('close', () => core.notifyStateChange());
  const sendJson = (response: ApiResponse): void => {
    if (entry) entry.status = response.status;
    if (response.status === 204) res.writeHead(204).end();
    else writeJson(res, response);
  };

  try {
    if (entry === null) {
      sendJson(await handleAdminRequest(core, req, url));
    } else if (path === '/v3' || path.startsWith('/v3/')) {
      const outcome = await handleApiRequest(core, req, url, entry);
      if (outcome.kind === 'hang') return; // answered never; close() drops the socket
      if (outcome.kind === 'raw') {
        entry.status = outcome.status;
        writeRaw(res, outcome.status, outcome.contentType, outcome.body);
      } else {
        entry.replayed = outcome.replayed;
        sendJson(outcome.response);
      }
    } else if (path.startsWith('/consent/')) {
      const outcome = handleConsentRoute(core, method, path);
      if (outcome.kind === 'redirect') {
        entry.status = 303;
        res.writeHead(303, { location: outcome.location, 'cache-control': 'no-store' }).end();
      } else {
        entry.status = outcome.status;
        res.writeHead(outcome.status, { ...HTML_HEADERS, ...outcome.headers }).end(outcome.html);
      }
    } else {
      sendJson(notFound());
    }
  } catch (error) {
    // Closing aborts sleeping handlers, and clients may hang up mid-body: nobody is listening then.
    if (core.shuttingDown || res.destroyed) return;
    console.error('heygen sandbox: unexpected error while handling', method, path, error);
    if (res.headersSent) res.destroy();
    else sendJson(apiError(500, 'internal_error', 'An internal error occurred. Please retry.'));
  }
}
