/**
 * `npm run demo`: one consent, end to end, against the stack of `npm run dev`.
 *
 * Creates an avatar group in the HeyGen sandbox (admin API), starts the consent workflow for it with
 * startAvatarConsent(), and says where to look: the workflow in the Temporal Web UI, the email in
 * the inbox, the consent page behind the link. With --wait it follows the workflow to its end.
 *
 * Against `docker compose` instead: TEMPORAL_UI_URL=http://localhost:8080 INBOX_URL=http://localhost:8025.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { z } from 'zod';
import { DEFAULT_TASK_QUEUE, isSuccessfulOutcome } from '../../src/contract.js';
import { startAvatarConsent, waitWithProgress } from '../../src/starter.js';
import { devPortsFromEnv } from './dev-stack.js';

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
  return {
    email: values.email,
    name: values.name,
    groupId: values['group-id'],
    wait: values.wait,
    temporalAddress: env.TEMPORAL_ADDRESS || `127.0.0.1:${ports.temporal}`,
    namespace: env.TEMPORAL_NAMESPACE || 'default',
    taskQueue: env.TEMPORAL_TASK_QUEUE || DEFAULT_TASK_QUEUE,
    temporalUiUrl: trimSlash(env.TEMPORAL_UI_URL || `http://localhost:${ports.temporalUi}`),
    inboxUrl: trimSlash(env.INBOX_URL || `http://localhost:${ports.inbox}`),
    sandboxUrl: trimSlash(env.SANDBOX_URL || `http://127.0.0.1:${ports.sandbox}`),
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
    say(`Poll now:      temporal workflow signal --workflow-id ${handle.workflowId} --name checkNow`);
    say(`No browser?    curl -X POST ${settings.sandboxUrl}/_sandbox/groups/${group.id}/approve`);
    say(`Status (CLI):  temporal workflow describe --workflow-id ${handle.workflowId}`);
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
    say(JSON.stringify(result, null, 2));
    return isSuccessfulOutcome(result.outcome) ? 0 : 1;
  } finally {
    await connection.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let settings: DemoSettings | 'help';
  try {
    settings = parseDemoArgs(process.argv.slice(2));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    console.error(`\n${usage}`);
    process.exit(2);
  }
  if (settings === 'help') {
    console.log(usage);
    process.exit(0);
  }
  main(settings).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
