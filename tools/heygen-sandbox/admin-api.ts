import type { IncomingMessage } from 'node:http';

import { z } from 'zod';

import type { SandboxCore } from './core.js';
import type { ApiResponse } from './http.js';
import {
  apiError,
  decodePathSegment,
  invalidParameter,
  methodNotAllowed,
  notFound,
  readJsonBody,
} from './http.js';
import { advanceClockSchema, createGroupInputSchema, groupPatchSchema } from './schemas.js';

/**
 * The admin API under /_sandbox/: drives the sandbox from other processes (browser tests, shell).
 * It has NO authentication and is meant for local use only; the sandbox listens on 127.0.0.1 by
 * default for that reason. Admin requests are not recorded in the ledger.
 *
 *   GET    /_sandbox                       { data: { url, public_url, now } }
 *   GET    /_sandbox/groups                { data: AvatarGroupItem[] } (all, newest first)
 *   POST   /_sandbox/groups                createGroup input -> 201 { data }
 *   GET    /_sandbox/groups/{id}           { data }
 *   PATCH  /_sandbox/groups/{id}           partial AvatarGroupItem -> { data }
 *   DELETE /_sandbox/groups/{id}           204
 *   POST   /_sandbox/groups/{id}/approve   { data } (as if the person agreed)
 *   GET    /_sandbox/consents?group_id=    { data: ConsentRecord[] }
 *   GET    /_sandbox/ledger                { data: LedgerEntry[] }
 *   DELETE /_sandbox/ledger                204
 *   GET    /_sandbox/faults                { data: FaultSpec[] } (pending, remaining counts)
 *   POST   /_sandbox/faults                FaultSpec -> 201 { data }
 *   DELETE /_sandbox/faults                204
 *   GET    /_sandbox/clock                 { data: { now } }
 *   POST   /_sandbox/clock/advance         { ms } -> { data: { now } }
 */
export async function handleAdminRequest(
  core: SandboxCore,
  req: IncomingMessage,
  url: URL,
): Promise<ApiResponse> {
  const method = req.method ?? 'GET';
  // '/_sandbox/groups/' is '/_sandbox/groups'; an empty segment anywhere else is not a route.
  const segments = url.pathname.replace(/\/+$/, '').split('/').slice(2);
  const [resource, id, action, ...extra] = segments.map(decodePathSegment);
  if (extra.length > 0 || segments.some((s) => s === '')) return notFound();

  switch (resource) {
    case undefined:
      if (method !== 'GET') return methodNotAllowed(['GET']);
      return ok({ url: core.publicUrl, public_url: core.publicUrl, now: core.clock.now() });

    case 'groups':
      if (id === undefined) {
        if (method === 'GET') return ok(core.groups.page(Number.MAX_SAFE_INTEGER, null).items);
        if (method !== 'POST') return methodNotAllowed(['GET', 'POST']);
        return withBody(req, createGroupInputSchema, (input) => {
          if (input.id !== undefined && core.groups.has(input.id)) {
            return apiError(409, 'conflict', 'An avatar group with this id already exists.', 'id');
          }
          return { status: 201, body: { data: core.groups.create(input) } };
        });
      }
      if (id === null) return notFound();
      if (!core.groups.has(id)) return apiError(404, 'avatar_group_not_found', 'Avatar group not found.');
      if (action === 'approve') {
        if (method !== 'POST') return methodNotAllowed(['POST']);
        return ok(core.approve(id));
      }
      if (action !== undefined) return notFound();
      if (method === 'GET') return ok(core.groups.get(id));
      if (method === 'DELETE') {
        core.groups.delete(id);
        return noContent();
      }
      if (method !== 'PATCH') return methodNotAllowed(['GET', 'PATCH', 'DELETE']);
      return withBody(req, groupPatchSchema, (patch) => {
        if (patch.id !== undefined && patch.id !== id) {
          return apiError(400, 'invalid_parameter', 'The id cannot be changed.', 'id');
        }
        return ok(core.groups.update(id, patch));
      });

    case 'consents':
      if (id !== undefined) return notFound();
      if (method !== 'GET') return methodNotAllowed(['GET']);
      return ok(core.consents.list(url.searchParams.get('group_id') ?? undefined));

    case 'ledger':
      if (id !== undefined) return notFound();
      if (method === 'GET') return ok(core.ledger.list());
      if (method !== 'DELETE') return methodNotAllowed(['GET', 'DELETE']);
      core.ledger.clear();
      return noContent();

    case 'faults':
      if (id !== undefined) return notFound();
      if (method === 'GET') return ok(core.faults.list());
      if (method === 'DELETE') {
        core.faults.clear();
        return noContent();
      }
      if (method !== 'POST') return methodNotAllowed(['GET', 'POST', 'DELETE']);
      return withBody(req, z.unknown(), (spec) => {
        try {
          return { status: 201, body: { data: core.faults.inject(spec) } };
        } catch (error) {
          if (!(error instanceof z.ZodError)) throw error;
          return invalidParameter(error);
        }
      });

    case 'clock':
      if (id === undefined) {
        return method === 'GET' ? ok({ now: core.clock.now() }) : methodNotAllowed(['GET']);
      }
      if (id !== 'advance' || action !== undefined) return notFound();
      if (method !== 'POST') return methodNotAllowed(['POST']);
      return withBody(req, advanceClockSchema, ({ ms }) => {
        core.clock.advance(ms);
        return ok({ now: core.clock.now() });
      });

    default:
      return notFound();
  }
}

const ok = (data: unknown): ApiResponse => ({ status: 200, body: { data } });
const noContent = (): ApiResponse => ({ status: 204, body: null });

async function withBody<T>(
  req: IncomingMessage,
  schema: z.ZodType<T>,
  handle: (value: T) => ApiResponse,
): Promise<ApiResponse> {
  const body = await readJsonBody(req, schema);
  return body.ok ? handle(body.value) : body.response;
}
