// The sandbox's /v3 API over real HTTP: auth, idempotency, consent validation, listing, routing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startSandbox } from '../../tools/heygen-sandbox/server.js';
import type { AvatarGroupItem, Sandbox } from '../../tools/heygen-sandbox/types.js';
import { eventually } from '../../tools/kit/eventually.js';

const KEY = 'unit-key';
const DAY_MS = 24 * 60 * 60 * 1000;

interface ErrorBody {
  error: { code: string; message: string; param: string | null; doc_url: string | null };
}
interface ConsentBody {
  data: { avatar_group: AvatarGroupItem; url: string };
}
interface GroupBody {
  data: AvatarGroupItem;
}
interface ListBody {
  data: AvatarGroupItem[];
  has_more: boolean;
  next_token: string | null;
}

/** `body` is typed as the caller expects; the assertions are what check it. */
interface Answer<T> {
  status: number;
  headers: Headers;
  body: T;
}

function client(sandbox: () => Sandbox) {
  return async <T = unknown>(
    method: string,
    path: string,
    options: { body?: unknown; raw?: string; headers?: Record<string, string>; key?: string | null } = {},
  ): Promise<Answer<T>> => {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
    const key = options.key === undefined ? KEY : options.key;
    if (key !== null) headers['x-api-key'] = key;
    const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    const res = await fetch(`${sandbox().url}${path}`, { method, headers, body });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      body: (text ? JSON.parse(text) : undefined) as T,
    };
  };
}

let sandbox: Sandbox;
const api = client(() => sandbox);
const consentPath = (group: AvatarGroupItem | string) =>
  `/v3/avatars/${typeof group === 'string' ? group : group.id}/consent`;

beforeAll(async () => {
  sandbox = await startSandbox({ apiKeys: [KEY, 'second-key'], now: () => 1_800_000_000_000 });
});

afterAll(async () => {
  await sandbox.close();
});

describe('authentication', () => {
  it('accepts x-api-key and Bearer, and records which one was used', async () => {
    const group = sandbox.createGroup();
    sandbox.clearLedger();
    expect((await api('GET', `/v3/avatars/${group.id}`)).status).toBe(200);
    const bearer = await api<GroupBody>('GET', `/v3/avatars/${group.id}`, {
      key: null,
      headers: { authorization: 'Bearer second-key' },
    });
    expect(bearer.status).toBe(200);
    expect(bearer.body.data.id).toBe(group.id);
    expect(sandbox.ledger().map((e) => e.authScheme)).toEqual(['x-api-key', 'bearer']);
  });

  it('rejects missing, wrong and malformed credentials with 401 authentication_failed', async () => {
    const attempts: Array<Record<string, string>> = [
      {},
      { 'x-api-key': 'nope-secret-123' },
      { authorization: 'Bearer nope-secret-123' },
      { authorization: `Basic ${KEY}` },
      { authorization: KEY },
      { 'x-api-key': '' },
    ];
    for (const headers of attempts) {
      const answer = await api<ErrorBody>('GET', '/v3/avatars', { key: null, headers });
      expect(answer.status).toBe(401);
      expect(answer.body.error).toEqual({
        code: 'authentication_failed',
        message: expect.stringContaining('Invalid or expired API key') as string,
        param: null,
        doc_url: null,
      });
      expect(JSON.stringify(answer.body)).not.toContain('nope-secret-123');
    }
  });

  it('authenticates before routing: an unknown route without a key is 401, with a key 404', async () => {
    expect((await api('GET', '/v3/nothing', { key: null })).status).toBe(401);
    const answer = await api<ErrorBody>('GET', '/v3/nothing');
    expect(answer.status).toBe(404);
    expect(answer.body.error.code).toBe('not_found');
  });
});

describe('POST /v3/avatars/{group_id}/consent', () => {
  it('returns the group (still pending) and a consent URL on the public base', async () => {
    const group = sandbox.createGroup({ name: 'Anna' });
    const answer = await api<ConsentBody>('POST', consentPath(group), {
      body: { reroute_url: 'https://app.test/done' },
    });
    expect(answer.status).toBe(200);
    expect(answer.body.data.avatar_group).toEqual(group);
    expect(answer.body.data.avatar_group.consent_status).toBe('pending');
    expect(answer.body.data.url).toMatch(new RegExp(`^${sandbox.url}/consent/cst_[0-9a-f]{32}$`));
    const [record] = sandbox.consents(group.id);
    expect(record).toMatchObject({
      groupId: group.id,
      url: answer.body.data.url,
      rerouteUrl: 'https://app.test/done',
      consentText: null,
      idempotencyKey: null,
      decision: 'pending',
    });
  });

  it('gives a new link on every call without a key; earlier links stay valid', async () => {
    const group = sandbox.createGroup();
    const first = await api<ConsentBody>('POST', consentPath(group), { body: {} });
    const second = await api<ConsentBody>('POST', consentPath(group), { body: {} });
    expect(first.body.data.url).not.toBe(second.body.data.url);
    for (const url of [first.body.data.url, second.body.data.url]) {
      expect((await fetch(url)).status).toBe(200);
    }
    expect(sandbox.consents(group.id)).toHaveLength(2);
  });

  it('validates the body: consent_text length in characters, no < or >, types; unknown fields ignored', async () => {
    const group = sandbox.createGroup();
    const accepted = [
      {},
      { reroute_url: null, consent_text: null },
      { consent_text: '😀'.repeat(1000) }, // 1000 characters, 2000 UTF-16 units
      { consent_text: 'ok', extra_field: { anything: true } },
    ];
    for (const body of accepted) expect((await api('POST', consentPath(group), { body })).status).toBe(200);

    const rejected: Array<[unknown, string]> = [
      [{ consent_text: 'x'.repeat(1001) }, 'consent_text'],
      [{ consent_text: '😀'.repeat(1001) }, 'consent_text'],
      [{ consent_text: '<script>' }, 'consent_text'],
      [{ consent_text: 'a > b' }, 'consent_text'],
      [{ consent_text: 12 }, 'consent_text'],
      [{ reroute_url: 12 }, 'reroute_url'],
      [{ reroute_url: ['https://x.test'] }, 'reroute_url'],
    ];
    for (const [body, param] of rejected) {
      const answer = await api<ErrorBody>('POST', consentPath(group), { body });
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.error).toMatchObject({ code: 'invalid_parameter', param });
    }
  });

  it('answers malformed JSON, non-object bodies and bodies over 64 KiB in the error envelope', async () => {
    const group = sandbox.createGroup();
    for (const raw of ['{"consent_text":', '[]', '"text"', 'null']) {
      const answer = await api<ErrorBody>('POST', consentPath(group), { raw });
      expect(answer.status).toBe(400);
      expect(answer.body.error).toEqual({
        code: 'invalid_parameter',
        message: expect.any(String) as string,
        param: null,
        doc_url: null,
      });
    }
    const big = await api<ErrorBody>('POST', consentPath(group), {
      raw: JSON.stringify({ pad: 'x'.repeat(64 * 1024) }),
    });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('request_too_large');
  });

  it('404 avatar_group_not_found for unknown or deleted groups', async () => {
    const group = sandbox.createGroup();
    sandbox.deleteGroup(group.id);
    for (const id of ['ag_unknown', group.id]) {
      const answer = await api<ErrorBody>('POST', consentPath(id), { body: {} });
      expect(answer.status).toBe(404);
      expect(answer.body.error.code).toBe('avatar_group_not_found');
    }
  });

  it('refuses a consent flow for a group that needs none (consent_status null)', async () => {
    const group = sandbox.createGroup({ consentRequired: false });
    const answer = await api<ErrorBody>('POST', consentPath(group), { body: {} });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'invalid_parameter', param: 'group_id' });
    expect(sandbox.consents(group.id)).toEqual([]);
  });

  it('still gives a link for an approved group, which then stays approved', async () => {
    const group = sandbox.createGroup({ consentStatus: 'approved' });
    const answer = await api<ConsentBody>('POST', consentPath(group), { body: {} });
    expect(answer.status).toBe(200);
    expect(answer.body.data.avatar_group.consent_status).toBe('approved');
  });
});

describe('Idempotency-Key', () => {
  it('replays the original response, same url, even when the body differs; the ledger says replayed', async () => {
    const group = sandbox.createGroup();
    sandbox.clearLedger();
    const headers = { 'idempotency-key': 'gen-1:abc_DEF.-' };
    const first = await api<ConsentBody>('POST', consentPath(group), {
      body: { reroute_url: 'https://a.test' },
      headers,
    });
    const again = await api<ConsentBody>('POST', consentPath(group), {
      body: { consent_text: 'different' },
      headers,
    });
    const malformed = await api<ConsentBody>('POST', consentPath(group), { raw: '{oops', headers });
    expect(first.status).toBe(200);
    expect(again).toMatchObject({ status: 200, body: first.body });
    expect(malformed).toMatchObject({ status: 200, body: first.body });
    expect(sandbox.consents(group.id)).toHaveLength(1);
    expect(sandbox.consents(group.id)[0]?.idempotencyKey).toBe('gen-1:abc_DEF.-');
    expect(sandbox.ledger().map((e) => [e.idempotencyKey, e.status, e.replayed])).toEqual([
      ['gen-1:abc_DEF.-', 200, false],
      ['gen-1:abc_DEF.-', 200, true],
      ['gen-1:abc_DEF.-', 200, true],
    ]);
  });

  it('stops replaying after 24 hours of sandbox time', async () => {
    const group = sandbox.createGroup();
    const headers = { 'idempotency-key': 'expiring-key' };
    const first = await api<ConsentBody>('POST', consentPath(group), { body: {}, headers });
    sandbox.advanceClock(DAY_MS - 1);
    const within = await api<ConsentBody>('POST', consentPath(group), { body: {}, headers });
    expect(within.body.data.url).toBe(first.body.data.url);
    sandbox.advanceClock(1);
    const after = await api<ConsentBody>('POST', consentPath(group), { body: {}, headers });
    expect(after.status).toBe(200);
    expect(after.body.data.url).not.toBe(first.body.data.url);
    expect(sandbox.ledger().at(-1)?.replayed).toBe(false);
    // The new response is what the key replays from now on.
    const later = await api<ConsentBody>('POST', consentPath(group), { body: {}, headers });
    expect(later.body.data.url).toBe(after.body.data.url);
  });

  it('is scoped per path parameter and per endpoint', async () => {
    const a = sandbox.createGroup();
    const b = sandbox.createGroup();
    const headers = { 'idempotency-key': 'shared-key' };
    const onA = await api<ConsentBody>('POST', consentPath(a), { body: {}, headers });
    const onB = await api<ConsentBody>('POST', consentPath(b), { body: {}, headers });
    expect(onB.status).toBe(200);
    expect(onB.body.data.avatar_group.id).toBe(b.id);
    expect(onB.body.data.url).not.toBe(onA.body.data.url);
    const created = await api<GroupBody>('POST', '/v3/avatars', {
      body: { type: 'photo', name: 'P' },
      headers,
    });
    expect(created.status).toBe(200);
    expect(created.body.data.name).toBe('P');
    expect(
      sandbox
        .ledger()
        .slice(-2)
        .map((e) => e.replayed),
    ).toEqual([false, false]);
  });

  it('does not remember failures: a corrected retry with the same key is executed', async () => {
    const group = sandbox.createGroup();
    const headers = { 'idempotency-key': 'fix-and-retry' };
    expect((await api('POST', consentPath(group), { body: { consent_text: '<' }, headers })).status).toBe(
      400,
    );
    const retry = await api('POST', consentPath(group), { body: { consent_text: 'fine' }, headers });
    expect(retry.status).toBe(200);
    expect(sandbox.ledger().at(-1)?.replayed).toBe(false);
  });

  it('rejects keys outside ^[A-Za-z0-9_\\-:.]{1,255}$ with param Idempotency-Key; 255 characters are fine', async () => {
    const group = sandbox.createGroup();
    for (const key of ['has space', 'slash/no', 'k'.repeat(256), 'ümlaut', 'a,b']) {
      const answer = await api<ErrorBody>('POST', consentPath(group), {
        body: {},
        headers: { 'idempotency-key': key },
      });
      expect(answer.status, key).toBe(400);
      expect(answer.body.error).toMatchObject({ code: 'invalid_parameter', param: 'Idempotency-Key' });
    }
    const longest = await api('POST', consentPath(group), {
      body: {},
      headers: { 'idempotency-key': 'k'.repeat(255) },
    });
    expect(longest.status).toBe(200);
  });

  it('answers 409 request_in_progress while the original is in flight, then replays it', async () => {
    const slow = await startSandbox({ apiKeys: [KEY], processingLatencyMs: 500 });
    const slowApi = client(() => slow);
    try {
      const group = slow.createGroup();
      const headers = { 'idempotency-key': 'in-flight' };
      const original = slowApi<ConsentBody>('POST', consentPath(group), { body: {}, headers });
      await eventually('the original request in the ledger', () => slow.ledger().length === 1, {
        intervalMs: 5,
        timeoutMs: 2_000,
      });
      const retry = await slowApi<ErrorBody>('POST', consentPath(group), { body: {}, headers });
      expect(retry.status).toBe(409);
      expect(retry.body.error).toMatchObject({ code: 'request_in_progress', param: null });
      // Another group's request with the same key is independent and goes through.
      const other = slow.createGroup();
      const otherAnswer = slowApi('POST', consentPath(other), { body: {}, headers });
      const done = await original;
      expect(done.status).toBe(200);
      expect((await otherAnswer).status).toBe(200);
      const replay = await slowApi<ConsentBody>('POST', consentPath(group), { body: {}, headers });
      expect(replay.body).toEqual(done.body);
      expect(slow.ledger().map((e) => [e.status, e.replayed])).toEqual([
        [200, false],
        [409, false],
        [200, false],
        [200, true],
      ]);
    } finally {
      await slow.close();
    }
  });
});

describe('GET /v3/avatars/{group_id}', () => {
  it('returns the group as {data}', async () => {
    const group = sandbox.createGroup({ name: 'Bob', consentStatus: 'skipped', status: 'completed' });
    const answer = await api('GET', `/v3/avatars/${group.id}`);
    expect(answer).toMatchObject({ status: 200, body: { data: group } });
    // Unix seconds on the sandbox clock (a fixed base here, moved only by advanceClock).
    expect(group.created_at).toBe(Math.floor(sandbox.now() / 1000));
  });

  it('shows a failed group with its error', async () => {
    const group = sandbox.createGroup({ consentStatus: 'approved', status: 'failed' });
    const answer = await api<GroupBody>('GET', `/v3/avatars/${group.id}`);
    expect(answer.body.data.error).toEqual({
      code: 'training_failed',
      message: expect.any(String) as string,
    });
  });

  it('decodes the path segment and 404s unknown ids', async () => {
    const group = sandbox.createGroup({ id: 'ag odd/id' });
    expect((await api<GroupBody>('GET', `/v3/avatars/${encodeURIComponent(group.id)}`)).body.data.id).toBe(
      'ag odd/id',
    );
    const missing = await api<ErrorBody>('GET', '/v3/avatars/ag_nope');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('avatar_group_not_found');
  });
});

describe('GET /v3/avatars', () => {
  it('pages through 45 groups, newest first, 20 at a time', async () => {
    const own = await startSandbox({ apiKeys: [KEY] });
    const ownApi = client(() => own);
    try {
      const created = Array.from({ length: 45 }, (_, i) => own.createGroup({ name: `G${i}` }).id);
      const pages: string[][] = [];
      let token: string | null = null;
      do {
        const query: string = token ? `?limit=20&token=${encodeURIComponent(token)}` : '?limit=20';
        const answer = await ownApi<ListBody>('GET', `/v3/avatars${query}`);
        expect(answer.status).toBe(200);
        pages.push(answer.body.data.map((g) => g.id));
        expect(answer.body.has_more).toBe(answer.body.next_token !== null);
        token = answer.body.next_token;
      } while (token !== null && pages.length < 10);
      expect(pages.map((p) => p.length)).toEqual([20, 20, 5]);
      expect(pages.flat()).toEqual([...created].reverse());

      const defaults = await ownApi<ListBody>('GET', '/v3/avatars?ownership=private');
      expect(defaults.body.data).toHaveLength(20);
      expect(defaults.body.has_more).toBe(true);
      expect((await ownApi('GET', '/v3/avatars?limit=50')).body).toMatchObject({
        has_more: false,
        next_token: null,
      });
    } finally {
      await own.close();
    }
  });

  it('keeps its place when groups are deleted between pages', async () => {
    const own = await startSandbox({ apiKeys: [KEY] });
    const ownApi = client(() => own);
    try {
      const ids = Array.from({ length: 4 }, () => own.createGroup().id).reverse();
      const first = await ownApi<ListBody>('GET', '/v3/avatars?limit=2');
      own.deleteGroup(ids[0]!);
      const second = await ownApi<ListBody>('GET', `/v3/avatars?limit=2&token=${first.body.next_token}`);
      expect(second.body.data.map((g) => g.id)).toEqual(ids.slice(2));
      expect(second.body.has_more).toBe(false);
    } finally {
      await own.close();
    }
  });

  it('rejects a limit outside 1-50 (param limit) and a bad token (param token)', async () => {
    for (const limit of ['0', '51', 'abc', '-1', '2.5', '']) {
      const answer = await api<ErrorBody>('GET', `/v3/avatars?limit=${limit}`);
      expect(answer.status, limit).toBe(400);
      expect(answer.body.error).toMatchObject({ code: 'invalid_parameter', param: 'limit' });
    }
    for (const token of ['garbage', Buffer.from('after:x').toString('base64url'), '%%%']) {
      const answer = await api<ErrorBody>('GET', `/v3/avatars?token=${encodeURIComponent(token)}`);
      expect(answer.status, token).toBe(400);
      expect(answer.body.error).toMatchObject({ code: 'invalid_parameter', param: 'token' });
    }
  });
});

describe('POST /v3/avatars', () => {
  it('creates a digital twin waiting for consent, and photo/prompt avatars that need none', async () => {
    const twin = await api<GroupBody>('POST', '/v3/avatars', {
      body: { type: 'digital_twin', name: 'Twin' },
    });
    expect(twin.status).toBe(200);
    expect(twin.body.data).toMatchObject({
      name: 'Twin',
      consent_status: 'pending',
      status: 'pending_consent',
    });
    expect(twin.body.data.id).toMatch(/^ag_[0-9a-f]{16}$/);
    expect(sandbox.getGroup(twin.body.data.id)).toEqual(twin.body.data);
    for (const type of ['photo', 'prompt']) {
      const answer = await api<GroupBody>('POST', '/v3/avatars', { body: { type, name: type } });
      expect(answer.body.data).toMatchObject({ consent_status: null, status: 'completed' });
    }
  });

  it('validates type (param type) and name (param name)', async () => {
    for (const body of [{}, { type: 'video' }, { type: 3 }]) {
      const answer = await api<ErrorBody>('POST', '/v3/avatars', { body });
      expect(answer.status).toBe(400);
      expect(answer.body.error).toMatchObject({ code: 'invalid_parameter', param: 'type' });
    }
    const badName = await api<ErrorBody>('POST', '/v3/avatars', { body: { type: 'photo', name: 7 } });
    expect(badName.body.error).toMatchObject({ code: 'invalid_parameter', param: 'name' });
  });
});

describe('routing', () => {
  it('answers 405 with Allow in the envelope for wrong methods', async () => {
    const group = sandbox.createGroup();
    const cases: Array<[string, string, string]> = [
      ['DELETE', '/v3/avatars', 'GET, POST'],
      ['POST', `/v3/avatars/${group.id}`, 'GET'],
      ['GET', consentPath(group), 'POST'],
    ];
    for (const [method, path, allow] of cases) {
      const answer = await api<ErrorBody>(method, path);
      expect(answer.status).toBe(405);
      expect(answer.headers.get('allow')).toBe(allow);
      expect(answer.body.error).toMatchObject({ code: 'method_not_allowed', param: null, doc_url: null });
    }
  });

  it('answers 404 not_found in the envelope for unknown paths, inside and outside /v3', async () => {
    for (const path of ['/v3/avatars/x/looks', '/v3/avatars//consent', '/v3', '/', '/v2/avatars']) {
      const answer = await api<ErrorBody>('GET', path);
      expect(answer.status, path).toBe(404);
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
      expect(answer.body.error.code).toBe('not_found');
    }
  });
});
