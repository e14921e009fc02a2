// The sandbox across a restart of `npm run dev`: its state saved after every change
// (tools/dev/sandbox-state.ts, no explicit save before the "crash"), then restored into a new
// sandbox on the same address, where the old consent link opens and can be agreed to.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
  restoreSandboxState,
  SANDBOX_STATE_FILE,
  SandboxStateWriter,
} from '../../tools/dev/sandbox-state.js';
import { startSandbox } from '../../tools/heygen-sandbox/server.js';
import type { Sandbox } from '../../tools/heygen-sandbox/types.js';
import { eventually } from '../../tools/kit/eventually.js';

const KEY = 'restart-key';
const API = { 'x-api-key': KEY, 'content-type': 'application/json' };

let stateDir: string;
const open: Sandbox[] = [];
const writers: SandboxStateWriter[] = [];

beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'sandbox-restart-'));
});

afterEach(async () => {
  // As the dev stack stops: the last write happens now, not after the folder is gone.
  for (const writer of writers.splice(0)) writer.flush();
  await Promise.all(open.splice(0).map((sandbox) => sandbox.close()));
  rmSync(stateDir, { recursive: true, force: true });
});

/** A sandbox as the dev stack runs it: its state written after every change. */
async function devSandbox(port = 0): Promise<{ sandbox: Sandbox; writer: SandboxStateWriter }> {
  // The writer needs the sandbox, and the sandbox's callback the writer: it is filled in below.
  const late: { writer?: SandboxStateWriter } = {};
  const sandbox = await startSandbox({ port, apiKeys: [KEY], onStateChange: () => late.writer?.schedule() });
  open.push(sandbox);
  const writer = new SandboxStateWriter(sandbox, stateDir, 20);
  late.writer = writer;
  writers.push(writer);
  return { sandbox, writer };
}

async function requestConsent(sandbox: Sandbox, groupId: string, idempotencyKey: string): Promise<string> {
  const response = await fetch(`${sandbox.url}/v3/avatars/${groupId}/consent`, {
    method: 'POST',
    headers: { ...API, 'idempotency-key': idempotencyKey },
    body: '{}',
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: { url: string } }).data.url;
}

const stateFile = () => join(stateDir, SANDBOX_STATE_FILE);
const savedTokens = () =>
  (JSON.parse(readFileSync(stateFile(), 'utf8')) as { consents: Array<{ token: string }> }).consents.map(
    (record) => record.token,
  );

describe('the dev sandbox across a restart', () => {
  it('a consent link handed out before the restart opens and approves afterwards', async () => {
    const first = await devSandbox();
    const older = first.sandbox.createGroup({ name: 'Older' });
    const group = first.sandbox.createGroup({ name: 'Ada' });
    const link = await requestConsent(first.sandbox, group.id, 'consent-ada-1');
    // Saved soon after the request, without a flush: a crash right after loses nothing.
    await eventually('the state file to hold the link', () =>
      existsSync(stateFile()) ? savedTokens().some((token) => link.endsWith(token)) : false,
    );
    expect(statSync(stateFile()).mode & 0o777).toBe(0o600);
    const port = Number(new URL(first.sandbox.url).port);
    await first.sandbox.close();

    const second = await devSandbox(port);
    expect(restoreSandboxState(second.sandbox, stateDir)).toEqual({ groups: 2, consents: 1, elsewhere: 0 });

    const page = await fetch(link);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Ada');
    const agreed = await fetch(`${link}/agree`, { method: 'POST', redirect: 'manual' });
    expect(agreed.status).toBe(303);
    const polled = await fetch(`${second.sandbox.url}/v3/avatars/${group.id}`, { headers: API });
    expect(((await polled.json()) as { data: { consent_status: string } }).data.consent_status).toBe(
      'approved',
    );

    // HeyGen replays a consent request with the same key for 24 h: so does the restored sandbox.
    expect(await requestConsent(second.sandbox, group.id, 'consent-ada-1')).toBe(link);
    expect(await requestConsent(second.sandbox, group.id, 'consent-ada-2')).not.toBe(link);
    // The list keeps its order: a group made after the restart comes first, the restored ones after.
    const newer = second.sandbox.createGroup({ name: 'Newer' });
    const listed = await fetch(`${second.sandbox.url}/v3/avatars`, { headers: API });
    const ids = ((await listed.json()) as { data: Array<{ id: string }> }).data.map((item) => item.id);
    expect(ids).toEqual([newer.id, group.id, older.id]);
  });

  it('flush() writes at once, and a restored sandbox names links made for another address', async () => {
    const first = await devSandbox();
    const group = first.sandbox.createGroup({ name: 'Moved' });
    await requestConsent(first.sandbox, group.id, 'moved-1');
    expect(first.writer.flush()).toBe(1);
    await first.sandbox.close();

    const second = await devSandbox(); // another port: the old link names the old one
    expect(restoreSandboxState(second.sandbox, stateDir)).toEqual({ groups: 1, consents: 1, elsewhere: 1 });
    expect(second.sandbox.getGroup(group.id)?.name).toBe('Moved');
  });

  it('sets an unreadable file aside with a warning and starts empty', async () => {
    writeFileSync(stateFile(), '{"version": 1, "groups": "no"}');
    const { sandbox } = await devSandbox();
    const warnings: string[] = [];
    expect(restoreSandboxState(sandbox, stateDir, (line) => warnings.push(line))).toEqual({
      groups: 0,
      consents: 0,
      elsewhere: 0,
    });
    expect(warnings.join('\n')).toMatch(
      /not a saved sandbox state; moved it to .*sandbox-state\.json\.unreadable/,
    );
    expect(existsSync(`${stateFile()}.unreadable`)).toBe(true);
    expect(existsSync(stateFile())).toBe(false);
    expect(sandbox.snapshot().groups).toEqual([]);
  });

  it('reads the groups-only file of earlier versions', async () => {
    writeFileSync(
      join(stateDir, 'sandbox-groups.json'),
      JSON.stringify([
        { id: 'ag_new', name: 'New', consent_status: 'approved', status: 'completed', error: null },
        { id: 'ag_old', name: 'Old', consent_status: 'pending', status: 'pending_consent', error: null },
      ]),
    );
    const { sandbox } = await devSandbox();
    expect(restoreSandboxState(sandbox, stateDir)).toEqual({ groups: 2, consents: 0, elsewhere: 0 });
    expect(sandbox.getGroup('ag_old')).toMatchObject({ name: 'Old', consent_status: 'pending' });
    const listed = await fetch(`${sandbox.url}/v3/avatars`, { headers: API });
    const ids = ((await listed.json()) as { data: Array<{ id: string }> }).data.map((item) => item.id);
    expect(ids).toEqual(['ag_new', 'ag_old']);
  });

  it('restores only into an empty sandbox, and refuses a snapshot with a token twice', async () => {
    const { sandbox } = await devSandbox();
    const group = sandbox.createGroup();
    await requestConsent(sandbox, group.id, 'twice-1');
    const snapshot = sandbox.snapshot();
    expect(() => sandbox.restore(snapshot)).toThrow(/already holds/);

    const { sandbox: empty } = await devSandbox();
    const doubled = { ...snapshot, consents: [...snapshot.consents, ...snapshot.consents] };
    expect(() => empty.restore(doubled)).toThrow(/a consent token appears twice/);
    expect(empty.snapshot().groups).toEqual([]);
  });
});
