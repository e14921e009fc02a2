/**
 * Starting a consent: `startAvatarConsent()` for backends that import this package, and the CLI
 * `npm run starter -- --group-id ag_1 --email a@example.com [--wait]`.
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import {
  AvatarGroupIdAttribute,
  DEFAULT_POLICY,
  DEFAULT_TASK_QUEUE,
  InvalidInputError,
  WORKFLOW_TYPE,
  isSuccessfulOutcome,
  parseAvatarConsentInput,
  statusQuery,
  workflowIdForGroup,
} from './contract/index.js';
import type { AvatarConsentInput, AvatarConsentResult, ConsentStatusView } from './contract/index.js';
import { dataConverterFor, loadCodecKeysFromEnv } from './codec/index.js';
import { temporalConnectionFromEnv } from './temporal-connection.js';
import type { avatarConsentWorkflow } from './workflows/avatar-consent.js';

export interface StartOptions {
  taskQueue?: string;
  /** Defaults to `avatar-consent-<groupId>`: one consent workflow per group. */
  workflowId?: string;
  /**
   * Set the `AvatarGroupId` search attribute at start (default true), which also makes the workflow
   * keep `ConsentPhase`, `ConsentOutcome` and `ConsentBlocked` up to date. The cluster must have them
   * registered (README, "Search attributes"); pass false where it does not.
   */
  searchAttributes?: boolean;
}

/** `a***@example.com`: enough for an operator to recognise, not a full address in the UI. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at <= 0) return '***';
  return `${email[0]}***${email.slice(at)}`;
}

export type AvatarConsentHandle = WorkflowHandle<typeof avatarConsentWorkflow>;

/**
 * Starts the consent workflow for a group, or attaches to the one already running for it
 * (deterministic workflow ID with USE_EXISTING): triggering twice never requests a second consent.
 * Throws InvalidInputError, naming each bad field, before anything reaches Temporal.
 */
export async function startAvatarConsent(
  client: Client,
  input: AvatarConsentInput,
  options: StartOptions = {},
): Promise<AvatarConsentHandle> {
  const parsed = parseAvatarConsentInput(input);
  return client.workflow.start<typeof avatarConsentWorkflow>(WORKFLOW_TYPE, {
    taskQueue: options.taskQueue ?? DEFAULT_TASK_QUEUE,
    workflowId: options.workflowId ?? workflowIdForGroup(parsed.groupId),
    workflowIdConflictPolicy: 'USE_EXISTING',
    args: [input],
    ...(options.searchAttributes === false
      ? {}
      : { typedSearchAttributes: [{ key: AvatarGroupIdAttribute, value: parsed.groupId }] }),
    staticSummary: `Avatar consent for HeyGen group ${parsed.groupId}`,
    staticDetails: [
      `**Group:** \`${parsed.groupId}\``,
      `**Recipient:** ${maskEmail(parsed.recipient.email)}`,
      parsed.notify
        ? `**Notifies:** workflow \`${parsed.notify.workflowId}\``
        : '**Notifies:** parent or nobody',
      `**Deadline:** ${input.policy?.deadline ?? DEFAULT_POLICY.deadline}`,
    ].join('\n\n'),
  });
}

// ---------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------

const usage = `Usage: npm run starter -- --group-id <id> --email <address> [options]

  --group-id <id>             HeyGen avatar group ID (required)
  --email <address>           the person who must approve (required)
  --name <name>               their name, used in the email
  --reroute-url <url>         where their browser goes after the consent page (https)
  --consent-text <text>       custom consent text (HeyGen enterprise; max 1000 chars, no < >)
  --notify-workflow-id <id>   workflow to signal (avatarConsentCompleted) when done
  --notify-signal <name>      signal name for --notify-workflow-id
  --deadline <duration>       give up after this long, e.g. 7d (default)
  --task-queue <name>         default ${DEFAULT_TASK_QUEUE}
  --no-search-attributes      for clusters without the AvatarGroupId/Consent* search attributes
  --wait                      show progress until the end; exit 0 only for approved or not_required

Environment: TEMPORAL_ADDRESS (default localhost:7233), TEMPORAL_NAMESPACE (default default),
TEMPORAL_API_KEY, TEMPORAL_TLS*, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE (Temporal's envconfig),
AVATAR_CONSENT_CODEC_KEYS / AVATAR_CONSENT_CODEC_KEY_FILE (the worker's payload encryption keys).`;

export interface CliArgs {
  input: AvatarConsentInput;
  wait: boolean;
  options: StartOptions;
}

export function inputFromArgs(argv: string[]): CliArgs {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'group-id': { type: 'string' },
      email: { type: 'string' },
      name: { type: 'string' },
      'reroute-url': { type: 'string' },
      'consent-text': { type: 'string' },
      'notify-workflow-id': { type: 'string' },
      'notify-signal': { type: 'string' },
      deadline: { type: 'string' },
      'task-queue': { type: 'string' },
      'no-search-attributes': { type: 'boolean', default: false },
      wait: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const input: AvatarConsentInput = {
    groupId: values['group-id'] ?? '',
    recipient: { email: values.email ?? '', ...(values.name !== undefined ? { name: values.name } : {}) },
    ...(values['reroute-url'] !== undefined ? { rerouteUrl: values['reroute-url'] } : {}),
    ...(values['consent-text'] !== undefined ? { consentText: values['consent-text'] } : {}),
    ...(values['notify-workflow-id'] !== undefined
      ? {
          notify: {
            workflowId: values['notify-workflow-id'],
            ...(values['notify-signal'] !== undefined ? { signalName: values['notify-signal'] } : {}),
          },
        }
      : {}),
    ...(values.deadline !== undefined ? { policy: { deadline: values.deadline } } : {}),
  };
  const options: StartOptions = {
    ...(values['task-queue'] ? { taskQueue: values['task-queue'] } : {}),
    ...(values['no-search-attributes'] ? { searchAttributes: false } : {}),
  };
  return { input, wait: values.wait, options };
}

function describeStatus(status: ConsentStatusView): string {
  const parts = [
    `phase=${status.phase}`,
    `consent_status=${status.consentStatus ?? 'null'}`,
    `polls=${status.polls}`,
    `emails=${status.emailsSent}`,
    `link=g${status.linkGeneration}`,
  ];
  if (status.nextPollAt) parts.push(`next poll ${status.nextPollAt}`);
  if (status.blocked) parts.push(`BLOCKED (${status.blocked})`);
  if (status.lastError) parts.push(`last error: ${status.lastError.code}: ${status.lastError.message}`);
  return parts.join('  ');
}

/** Prints status changes until the workflow ends; returns its result. */
export async function waitWithProgress(
  handle: AvatarConsentHandle,
  print: (line: string) => void,
  intervalMs = 2_000,
): Promise<AvatarConsentResult> {
  let done = false;
  const result = handle.result().finally(() => {
    done = true;
  });
  let last = '';
  while (!done) {
    try {
      const line = describeStatus(await handle.query(statusQuery));
      if (line !== last) print(line);
      last = line;
    } catch {
      // The workflow may have just closed, or no worker is running yet; the result tells.
    }
    await Promise.race([
      result.catch(() => undefined),
      new Promise((resolve) => setTimeout(resolve, intervalMs)),
    ]);
  }
  return result;
}

async function main(argv: string[]): Promise<number> {
  let parsed: CliArgs;
  try {
    parsed = inputFromArgs(argv);
    parseAvatarConsentInput(parsed.input);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    console.error(`\n${usage}`);
    return 2;
  }
  const temporal = temporalConnectionFromEnv(process.env);
  const connection = await Connection.connect(temporal.connectionOptions);
  try {
    // The same payload codec as the worker: the input (an address) is encrypted before it leaves.
    const client = new Client({
      connection,
      namespace: temporal.namespace,
      dataConverter: dataConverterFor(loadCodecKeysFromEnv(process.env)),
    });
    const handle = await startAvatarConsent(client, parsed.input, parsed.options);
    console.log(`consent workflow ${handle.workflowId} (run ${(await handle.describe()).runId})`);
    if (!parsed.wait) return 0;
    const result = await waitWithProgress(handle, (line) => console.log(line));
    console.log(JSON.stringify(result, null, 2));
    return isSuccessfulOutcome(result.outcome) ? 0 : 1;
  } finally {
    await connection.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(
        err instanceof InvalidInputError
          ? err.message
          : `starter failed: ${err instanceof Error ? err.message : String(err)}`,
      );
      process.exit(1);
    },
  );
}
