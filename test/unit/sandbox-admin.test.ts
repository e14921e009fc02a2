// The sandbox's admin API (/_sandbox/...) and its programmatic twin.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startSandbox } from '../../tools/heygen-sandbox/server.js';
import type { AvatarGroupItem, LedgerEntry, Sandbox } from '../../tools/heygen-sandbox/types.js';

const KEY = 'admin-test-key';

let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = await startSandbox({ apiKeys: [KEY], trainingTimeMs: 10_000, now: () => 1_800_000_000_000 });
});

afterAll(async () => {
  await sandbox.close();
});

/** An admin answer: `data` typed as the caller expects on success, `error` on failure; assertions check. */
interface AdminAnswer<T> {
  status: number;
  body: { data: T; error: { code: string; message: string; param: string | null } };
}

async function admin<T = unknown>(method: string, path: string, body?: unknown): Promise<AdminAnswer<T>> {
  const res = await fetch(`${sandbox.url}/_sandbox${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as AdminAnswer<T>['body'] };
}

describe('groups', () => {
  it('creates with defaults, reads, patches and deletes, without auth and without ledger entries', async () => {
    sandbox.clearLedger();
    const created = await admin<AvatarGroupItem>('POST', '/groups', { name: 'Admin Anna' });
    expect(created.status).toBe(201);
    const group = created.body.data;
    expect(group).toEqual({
      id: expect.stringMatching(/^ag_[0-9a-f]{16}$/) as string,
      name: 'Admin Anna',
      created_at: 1_800_000_000,
      looks_count: 1,
      preview_image_url: null,
      preview_video_url: null,
      gender: null,
      default_voice_id: null,
      consent_status: 'pending',
      status: 'pending_consent',
      error: null,
    });
    expect((await admin('GET', `/groups/${group.id}`)).body.data).toEqual(group);

    const patched = await admin('PATCH', `/groups/${group.id}`, {
      consent_status: 'expired',
      gender: 'female',
    });
    expect(patched.body.data).toMatchObject({
      consent_status: 'expired',
      gender: 'female',
      status: 'pending_consent',
    });
    expect(sandbox.getGroup(group.id)?.consent_status).toBe('expired');

    expect((await admin('DELETE', `/groups/${group.id}`)).status).toBe(204);
    expect(sandbox.getGroup(group.id)).toBeUndefined();
    expect((await admin('GET', `/groups/${group.id}`)).status).toBe(404);
    expect(sandbox.ledger()).toEqual([]);
  });

  it('lists groups and validates input (strict: unknown fields are errors)', async () => {
    const listed = await admin('GET', '/groups');
    expect(Array.isArray(listed.body.data)).toBe(true);
    expect((await admin('POST', '/groups', { status: 'training' })).body.error).toMatchObject({
      code: 'invalid_parameter',
      param: 'status',
    });
    expect((await admin('POST', '/groups', { consent_status: 'pending' })).status).toBe(400);
    expect((await admin('POST', '/groups', { id: 'ag_fixed' })).status).toBe(201);
    expect((await admin('POST', '/groups', { id: 'ag_fixed' })).status).toBe(409);
    expect((await admin('PATCH', '/groups/ag_fixed', { id: 'ag_other' })).status).toBe(400);
    expect((await admin('PATCH', '/groups/ag_fixed', { looks_count: 'many' })).status).toBe(400);
    expect((await admin('PATCH', '/groups/ag_missing', {})).status).toBe(404);
  });

  it('approves like the person agreeing, and training follows the sandbox clock', async () => {
    const group = sandbox.createGroup();
    const approved = await admin('POST', `/groups/${group.id}/approve`);
    expect(approved.body.data).toMatchObject({ consent_status: 'approved', status: 'processing' });
    expect((await admin<{ now: number }>('POST', '/clock/advance', { ms: 10_000 })).body.data.now).toBe(
      sandbox.now(),
    );
    expect(sandbox.getGroup(group.id)?.status).toBe('completed');
    expect((await admin('GET', '/groups/ag_missing/approve')).status).toBe(404);
    expect((await admin('GET', `/groups/${group.id}/approve`)).status).toBe(405);
  });
});

describe('consents, ledger, faults and clock', () => {
  it('lists consents, optionally for one group', async () => {
    const a = sandbox.createGroup();
    const b = sandbox.createGroup();
    for (const group of [a, b, a]) {
      await fetch(`${sandbox.url}/v3/avatars/${group.id}/consent`, {
        method: 'POST',
        headers: { 'x-api-key': KEY },
        body: '{}',
      });
    }
    const forA = await admin('GET', `/consents?group_id=${a.id}`);
    expect(forA.body.data).toHaveLength(2);
    expect(forA.body.data).toEqual(sandbox.consents(a.id));
    expect((await admin<unknown[]>('GET', '/consents')).body.data.length).toBeGreaterThanOrEqual(3);
  });

  it('reads and clears the ledger', async () => {
    await fetch(`${sandbox.url}/v3/avatars`, { headers: { 'x-api-key': KEY } });
    const ledger = await admin<LedgerEntry[]>('GET', '/ledger');
    expect(ledger.body.data.at(-1)).toMatchObject({ method: 'GET', path: '/v3/avatars', status: 200 });
    expect((await admin('DELETE', '/ledger')).status).toBe(204);
    expect(sandbox.ledger()).toEqual([]);
  });

  it('injects, lists and clears faults, validating them', async () => {
    const injected = await admin('POST', '/faults', {
      kind: 'status',
      status: 503,
      count: 2,
      pathPrefix: '/v3/',
    });
    expect(injected.status).toBe(201);
    expect((await admin('GET', '/faults')).body.data).toEqual([
      { kind: 'status', status: 503, count: 2, pathPrefix: '/v3/' },
    ]);
    expect((await fetch(`${sandbox.url}/v3/avatars`, { headers: { 'x-api-key': KEY } })).status).toBe(503);
    expect(sandbox.faults()).toEqual([{ kind: 'status', status: 503, count: 1, pathPrefix: '/v3/' }]);
    const invalid = await admin('POST', '/faults', { kind: 'status', status: 501, count: 1 });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error).toMatchObject({ code: 'invalid_parameter', param: 'status' });
    expect((await admin('DELETE', '/faults')).status).toBe(204);
    expect(sandbox.faults()).toEqual([]);
  });

  it('reads and advances the clock; refuses going back', async () => {
    const before = (await admin<{ now: number }>('GET', '/clock')).body.data.now;
    expect(before).toBe(sandbox.now());
    expect((await admin<{ now: number }>('POST', '/clock/advance', { ms: 1500 })).body.data.now).toBe(
      before + 1500,
    );
    expect((await admin<{ now: number }>('POST', '/clock/advance', { ms: -1 })).status).toBe(400);
    expect((await admin('POST', '/clock/advance', {})).body.error.param).toBe('ms');
    expect(() => sandbox.advanceClock(-5)).toThrow(RangeError);
    expect(sandbox.now()).toBe(before + 1500);
  });

  it('answers unknown admin routes, wrong methods and bad JSON in the envelope', async () => {
    expect((await admin('GET', '/nothing')).body.error.code).toBe('not_found');
    expect((await admin('PUT', '/ledger')).status).toBe(405);
    const res = await fetch(`${sandbox.url}/_sandbox/faults`, { method: 'POST', body: '{nope' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'invalid_parameter', param: null } });
    expect((await admin('GET', '')).body.data).toMatchObject({ url: sandbox.url, now: sandbox.now() });
  });
});

describe('programmatic API', () => {
  it('returns copies, validates input and refuses unknown groups', () => {
    const group = sandbox.createGroup({ consentRequired: false });
    expect(group).toMatchObject({ consent_status: null, status: 'completed', error: null });
    group.name = 'mutated';
    expect(sandbox.getGroup(group.id)?.name).not.toBe('mutated');

    expect(sandbox.createGroup({ status: 'failed' }).error).toEqual({
      code: 'training_failed',
      message: expect.any(String) as string,
    });
    expect(sandbox.createGroup({ consentStatus: 'approved' }).status).toBe('completed');
    expect(sandbox.createGroup({ consentStatus: 'skipped' }).status).toBe('pending_consent');
    expect(() => sandbox.createGroup({ id: group.id })).toThrow(/already exists/);
    expect(() => sandbox.createGroup({ status: 'bogus' as never })).toThrow();
    expect(() => sandbox.updateGroup('ag_missing', { name: 'x' })).toThrow(/not found/);
    expect(() => sandbox.updateGroup(group.id, { id: 'other' })).toThrow();
    expect(() => sandbox.deleteGroup('ag_missing')).not.toThrow();
  });

  it('updateGroup with a status takes over the lifecycle from a running training', () => {
    const group = sandbox.createGroup();
    sandbox.approve(group.id);
    sandbox.updateGroup(group.id, {
      status: 'failed',
      error: { code: 'consent_mismatch', message: 'Not the same person' },
    });
    sandbox.advanceClock(60_000);
    expect(sandbox.getGroup(group.id)).toMatchObject({
      status: 'failed',
      error: { code: 'consent_mismatch' },
    });
  });

  it('refuses bad options', async () => {
    await expect(startSandbox({ apiKeys: [] })).rejects.toThrow(RangeError);
    await expect(startSandbox({ rateLimit: { limit: 0, windowMs: 1000 } })).rejects.toThrow(RangeError);
    await expect(startSandbox({ trainingTimeMs: -1 })).rejects.toThrow(RangeError);
  });
});
