// `npm run dev` as a developer runs it, stopped with Ctrl-C and started again in the middle of a
// consent: the consent link emailed before the restart still opens, and after resendEmail the person
// can open the link and agree, and the workflow ends approved. (Before, the sandbox forgot its links
// on a restart: the old link and the re-sent one, which is the same, answered 404.)
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkNowSignal,
  DEFAULT_TASK_QUEUE,
  resendEmailUpdate,
  WORKFLOW_TYPE,
  workflowIdForGroup,
} from '../../src/contract/index.js';
import type { AvatarConsentInput, AvatarConsentResult } from '../../src/contract/index.js';
import { consentLinkIn } from '../../tools/heygen-sandbox/index.js';
import { endProcess, exited, keepLines } from '../../tools/kit/child-process.js';
import { eventually } from '../../tools/kit/eventually.js';
import { freePort, LOOPBACK } from '../../tools/kit/ports.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));

let stateDir: string;
let env: NodeJS.ProcessEnv;
let ports: { temporal: number; sandbox: number; inbox: number };
const started: ChildProcess[] = [];

/** `npm run dev -- --no-ui` (the same entry point, without npm in between), and its output lines. */
async function startDev(): Promise<{ proc: ChildProcess; lines: string[] }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'tools/dev/dev-stack.ts', '--no-ui'], {
    cwd: repo,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(proc);
  const lines: string[] = [];
  keepLines(proc.stdout, lines, 500);
  keepLines(proc.stderr, lines, 500);
  const gone = new AbortController();
  void exited(proc).then((exit) =>
    gone.abort(new Error(`npm run dev exited (${JSON.stringify(exit)}): ${lines.slice(-10).join(' | ')}`)),
  );
  await eventually('npm run dev to be running', () => lines.includes('avatar-consent dev stack is running'), {
    timeoutMs: 120_000,
    intervalMs: 250,
    signal: gone.signal,
  });
  return { proc, lines };
}

/** Ctrl-C, as in the terminal: the stack stops in order and exits 0. */
async function stopDev(proc: ChildProcess): Promise<void> {
  const exit = await endProcess(proc, { signal: 'SIGINT', graceMs: 60_000 });
  expect(exit).toMatchObject({ code: 0, graceful: true });
}

/** The consent links in the dev inbox's mails to `email`, oldest first. */
async function linksMailedTo(email: string): Promise<string[]> {
  const response = await fetch(`http://${LOOPBACK}:${ports.inbox}/api/messages`);
  const mails = (await response.json()) as Array<{ envelopeTo: string[]; links: string[] }>;
  return mails
    .filter((mail) => mail.envelopeTo.includes(email))
    .reverse()
    .map((mail) => consentLinkIn(mail.links.join(' ')))
    .filter((link): link is string => link !== null);
}

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'dev-restart-'));
  ports = { temporal: await freePort(), sandbox: await freePort(), inbox: await freePort() };
  env = {
    ...process.env,
    DEV_STATE_DIR: stateDir,
    DEV_TEMPORAL_PORT: String(ports.temporal),
    DEV_SANDBOX_PORT: String(ports.sandbox),
    DEV_INBOX_PORT: String(ports.inbox),
    DEV_SMTP_PORT: String(await freePort()),
    DEV_GATEWAY_PORT: String(await freePort()),
    DEV_TEMPORAL_UI_PORT: String(await freePort()),
    // The dev stack's own defaults, not whatever the shell running the tests points at.
    HEYGEN_BASE_URL: '',
    HEYGEN_API_KEY: '',
    SMTP_URL: '',
    PUBLIC_BASE_URL: '',
  };
});

afterAll(async () => {
  // Ctrl-C first: a SIGKILLed dev stack would leave its Temporal server (its own process group) running.
  await Promise.all(started.map((proc) => endProcess(proc, { signal: 'SIGINT', graceMs: 60_000 })));
  rmSync(stateDir, { recursive: true, force: true });
});

describe('npm run dev, restarted in the middle of a consent', () => {
  it('the emailed link still opens, and after resendEmail the person can agree', async () => {
    const email = 'ada.restart@example.com';
    let dev = await startDev();

    const created = await fetch(`http://${LOOPBACK}:${ports.sandbox}/_sandbox/groups`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Ada Restart' }),
    });
    expect(created.status).toBe(201);
    const groupId = ((await created.json()) as { data: { id: string } }).data.id;

    const connection = await Connection.connect({ address: `${LOOPBACK}:${ports.temporal}` });
    try {
      const client = new Client({ connection });
      const input: AvatarConsentInput = { groupId, recipient: { email, name: 'Ada' } };
      const handle = await client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: DEFAULT_TASK_QUEUE,
        workflowId: workflowIdForGroup(groupId),
        args: [input],
      });
      const [link] = await eventually('the consent email', async () => {
        const links = await linksMailedTo(email);
        return links.length > 0 && links;
      });
      expect((await fetch(link!)).status).toBe(200);

      await stopDev(dev.proc);
      dev = await startDev();
      expect(dev.lines.join('\n')).toMatch(/1 sandbox group\(s\) and 1 consent link\(s\) restored/);

      // The link in the email from before the restart opens on the restarted sandbox.
      expect((await fetch(link!)).status).toBe(200);

      // An operator sends it again (the person lost the email): the new email's link opens too.
      await handle.executeUpdate(resendEmailUpdate, { args: [{ reason: 'lost the first email' }] });
      const [resent] = await eventually('the re-sent email in the restarted inbox', async () => {
        const links = await linksMailedTo(email);
        return links.length > 0 && links;
      });
      const page = await fetch(resent!);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('Ada Restart');
      const agreed = await fetch(`${resent}/agree`, { method: 'POST', redirect: 'manual' });
      expect(agreed.status).toBe(303);

      await handle.signal(checkNowSignal);
      const result = (await handle.result()) as AvatarConsentResult;
      expect(result.outcome).toBe('approved');
    } finally {
      await connection.close();
    }
    await stopDev(dev.proc);
  }, 300_000);
});
