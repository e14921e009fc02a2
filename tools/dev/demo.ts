/**
 * `npm run demo`: one consent, end to end, against the stack of `npm run dev`.
 *
 * Creates an avatar group in the HeyGen sandbox (admin API), starts the consent workflow for it with
 * startAvatarConsent(), and says where to look: the workflow in the Temporal Web UI, the email in
 * the inbox, the consent page behind the link. With --wait it follows the workflow to its end.
 *
 * Against `docker compose` instead: TEMPORAL_UI_URL=http://localhost:8080 INBOX_URL=http://localhost:8025.
 */
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { z } from 'zod';
import { envVar, parseEnv } from '../../src/config/env.js';
import { DEFAULT_TASK_QUEUE, isSuccessfulOutcome } from '../../src/contract/index.js';
import { startAvatarConsent, waitWithProgress } from '../../src/starter.js';
import { isEntryPoint, runCli } from '../kit/cli.js';
import { DEV_HOST, DEV_NAMESPACE, devPortsFromEnv } from './settings.js';

const usage = `Usage: npm run demo [-- options]

Starts one avatar consent against the local stack (npm run dev must be running).

  --email <address>   who must approve (default demo@example.com; the inbox catches it)
  --name <name>       their name in the email (default Demo Person)
  --group-id <id>     use this existing sandbox group instead of creating one
  --wait              follow the workflow until it ends; exit 0 when approved
  --help              this text

Environment (defaults follow DEV_* ports of npm run dev):
  TEMPORAL_ADDRESS   (127.0.0.1:7233)          TEMPORAL_NAMESPACE (default)
  TEMPORAL_UI_URL    (http://localhost:8233)   INBOX_URL (http://localhost:1080)
  SANDBOX_URL        (http://127.0.0.1:4010)   TEMPORAL_TASK_QUEUE (avatar-consent)`;

export interface DemoSettings {
  email: string;
  name: string;
  groupId: string | undefined;
  wait: boolean;
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  temporalUiUrl: string;
  inboxUrl: string;
  sandboxUrl: string;
}

const trimSlash = (url: string) => url.replace(/\/+$/, '');

const optional = envVar(z.string().trim().optional());
const optionalUrl = envVar(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional());
const demoEnvSchema = z.object({
  TEMPORAL_ADDRESS: optional,
  TEMPORAL_NAMESPACE: optional,
  TEMPORAL_TASK_QUEUE: optional,
  TEMPORAL_UI_URL: optionalUrl,
  INBOX_URL: optionalUrl,
  SANDBOX_URL: optionalUrl,
});

export function parseDemoArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): DemoSettings | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      email: { type: 'string', default: 'demo@example.com' },
      name: { type: 'string', default: 'Demo Person' },
      'group-id': { type: 'string' },
      wait: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return 'help';
  const ports = devPortsFromEnv(env);
  const e = parseEnv(demoEnvSchema, env, 'demo');
  return {
    email: values.email,
    name: values.name,
    groupId: values['group-id'],
    wait: values.wait,
    temporalAddress: e.TEMPORAL_ADDRESS ?? `${DEV_HOST}:${ports.temporal}`,
    namespace: e.TEMPORAL_NAMESPACE ?? DEV_NAMESPACE,
    taskQueue: e.TEMPORAL_TASK_QUEUE ?? DEFAULT_TASK_QUEUE,
    temporalUiUrl: trimSlash(e.TEMPORAL_UI_URL ?? `http://localhost:${ports.temporalUi}`),
    inboxUrl: trimSlash(e.INBOX_URL ?? `http://localhost:${ports.inbox}`),
    sandboxUrl: trimSlash(e.SANDBOX_URL ?? `http://${DEV_HOST}:${ports.sandbox}`),
  };
}

/** The Web UI page of one workflow execution. */
export function workflowUiUrl(uiUrl: string, namespace: string, workflowId: string): string {
  return `${trimSlash(uiUrl)}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

const createdGroupSchema = z.object({ data: z.object({ id: z.string().min(1), name: z.string() }) });

/** POST /_sandbox/groups: a new avatar group whose consent is pending. */
async function createSandboxGroup(sandboxUrl: string, name: string): Promise<{ id: string; name: string }> {
  let response: Response;
  try {
    response = await fetch(`${sandboxUrl}/_sandbox/groups`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name }),
      signal: AbortSignal.timeout(5_000),
    });
  } catch {
    throw new Error(`The HeyGen sandbox does not answer on ${sandboxUrl}. Is \`npm run dev\` running?`);
  }
  if (response.status !== 201) {
    throw new Error(
      `The sandbox refused to create a group: HTTP ${response.status} ${await response.text()}`,
    );
  }
  return createdGroupSchema.parse(await response.json()).data;
}

async function main(settings: DemoSettings): Promise<number> {
  const say = (line = '') => console.log(line);

  const group = settings.groupId
    ? { id: settings.groupId, name: '(existing group)' }
    : await createSandboxGroup(settings.sandboxUrl, `Demo Avatar ${new Date().toISOString().slice(11, 19)}`);
  if (!settings.groupId) say(`Created sandbox avatar group ${group.id} ("${group.name}"), consent pending.`);

  let connection: Connection;
  try {
    connection = await Connection.connect({ address: settings.temporalAddress, connectTimeout: 5_000 });
  } catch (error) {
    throw new Error(
      `Temporal does not answer on ${settings.temporalAddress} (${error instanceof Error ? error.message : String(error)}). Is \`npm run dev\` running?`,
      { cause: error },
    );
  }
  try {
    const client = new Client({ connection, namespace: settings.namespace });
    const handle = await startAvatarConsent(
      client,
      { groupId: group.id, recipient: { email: settings.email, name: settings.name } },
      { taskQueue: settings.taskQueue },
    );
    const { runId } = await handle.describe();

    say();
    // USE_EXISTING: with --group-id of a group whose consent is running, this attaches to that run.
    say(`Consent workflow ${handle.workflowId}  (run ${runId})`);
    say();
    say(`  Temporal Web UI  ${workflowUiUrl(settings.temporalUiUrl, settings.namespace, handle.workflowId)}`);
    say(`  Inbox            ${settings.inboxUrl}`);
    say();
    say('What happens now:');
    say(`  1. The worker asks the HeyGen sandbox for a consent link and emails it to ${settings.email}.`);
    say(`  2. Open the inbox, open the email "Please approve the use of your likeness…", click the link.`);
    say('  3. On the consent page press "I agree".');
    say('  4. At its next poll the workflow sees consent_status "approved" and completes. Polls start');
    say('     15 s apart and then back off; the Web UI\'s "Pending Activities" shows the next one.');
    say();
    say(
      `Poll now:      .venv/bin/temporal workflow signal --workflow-id ${handle.workflowId} --name checkNow`,
    );
    say(`No browser?    curl -X POST ${settings.sandboxUrl}/_sandbox/groups/${group.id}/approve`);
    say(`Status (CLI):  .venv/bin/temporal workflow describe --workflow-id ${handle.workflowId}`);
    if (!settings.wait) {
      say();
      say('(Run with --wait to follow the workflow here until it ends.)');
      return 0;
    }

    say();
    say('Waiting for the workflow to end (Ctrl-C stops waiting, not the workflow)…');
    const result = await waitWithProgress(handle, (line) => say(`  ${line}`));
    say();
    say(`Outcome: ${result.outcome}`);
    // The consent link is personal: the result is shown without it.
    say(JSON.stringify({ ...result, consentUrl: result.consentUrl ? '[hidden]' : null }, null, 2));
    return isSuccessfulOutcome(result.outcome) ? 0 : 1;
  } finally {
    await connection.close();
  }
}

if (isEntryPoint(import.meta.url)) {
  runCli({ name: 'demo', usage, parse: (argv) => parseDemoArgs(argv), run: main, stack: false });
}
