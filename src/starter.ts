/**
 * Starting a consent: `startAvatarConsent()` for backends that import this package, and the CLI
 * `npm run starter -- --group-id ag_1 --email a@example.com [--wait] [--json]` (`node dist/starter.js`
 * once built).
 *
 * One consent runs per group. A second trigger attaches to the running one; when it names a different
 * recipient, that is an error (RecipientConflictError, CLI exit code 3) unless the caller asks to send
 * the running consent to the new recipient (`differentRecipient: 'change'`, `--change-recipient`).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { Client, Connection, WorkflowUpdateFailedError } from '@temporalio/client';
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import {
  AvatarGroupIdAttribute,
  ConsentBlockedAttribute,
  ConsentPhaseAttribute,
  DEFAULT_POLICY,
  DEFAULT_TASK_QUEUE,
  InvalidInputError,
  WORKFLOW_TYPE,
  changeRecipientUpdate,
  formatDuration,
  isSuccessfulOutcome,
  pollProgress,
  parseAvatarConsentInput,
  parseDuration,
  recipientFingerprint,
  statusQuery,
  workflowIdForGroup,
} from './contract/index.js';
import type {
  AvatarConsentInput,
  AvatarConsentResult,
  ChangeRecipientResult,
  ConsentOutcome,
  ConsentStatusView,
  FieldIssue,
  ParsedAvatarConsentInput,
} from './contract/index.js';
import { dataConverterFor, loadCodecKeysFromEnv } from './codec/index.js';
import { escapeMarkdown } from './rules/markdown.js';
import { temporalConnectionFromEnv } from './temporal-connection.js';
import type { TemporalConnectionConfig } from './temporal-connection.js';
import type { avatarConsentWorkflow } from './workflows/avatar-consent.js';

/** What to do when the group's running consent goes to someone else than this input's recipient. */
export type DifferentRecipientPolicy = 'fail' | 'change' | 'attach';

export interface StartOptions {
  taskQueue?: string;
  /** Defaults to `avatar-consent-<groupId>`: one consent workflow per group. */
  workflowId?: string;
  /**
   * Set the `AvatarGroupId` search attribute at start (default true), which also makes the workflow
   * keep `ConsentPhase`, `ConsentOutcome` and `ConsentBlocked` up to date. The cluster must have them
   * registered (docs/deploy.md, "Search attributes on other clusters"); pass false where it does not.
   */
  searchAttributes?: boolean;
  /**
   * When a consent for the group is already running and its emails go to another address:
   * - `'fail'` (default): throw RecipientConflictError, leaving the running consent as it is;
   * - `'change'`: send it to this input's recipient (the `changeRecipient` update: the current link
   *   is emailed to them at once, and later links too), once it has a link;
   * - `'attach'`: attach without looking (no worker needed; the input's recipient is ignored).
   * Only the address counts (trimmed, any case), not the name.
   */
  differentRecipient?: DifferentRecipientPolicy;
  /**
   * How long to wait for the running consent to answer its status query (a worker must be running),
   * and with `'change'` for its first link and the email to the new recipient. Default 30 s.
   */
  recipientCheckTimeoutMs?: number;
}

export const DEFAULT_RECIPIENT_CHECK_TIMEOUT_MS = 30_000;

/**
 * A memo field with a random ID per start request: after a start with USE_EXISTING, the run that
 * carries our ID is one we started, any other is one we attached to (the SDK does not say which).
 */
export const START_REQUEST_MEMO = 'avatarConsentStartRequest';

/** `a***@example.com`: enough for an operator to recognise, not a full address in the UI. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at <= 0) return '***';
  return `${email[0]}***${email.slice(at)}`;
}

export type AvatarConsentHandle = WorkflowHandle<typeof avatarConsentWorkflow>;

/** What a start did, besides giving the handle. */
export interface ConsentStart {
  /** True when this call started the workflow; false when it attached to the one running. */
  readonly started: boolean;
  /** The run started or attached to. */
  readonly runId: string;
  /**
   * How this input's recipient relates to the running consent: `new` (we started it), `same`,
   * `changed` (differentRecipient 'change' sent it to them), or `unchecked` ('attach').
   */
  readonly recipient: 'new' | 'same' | 'changed' | 'unchecked';
  /** The changeRecipient update's answer, when `recipient` is `changed`. */
  readonly recipientChange: ChangeRecipientResult | null;
}

export type StartedAvatarConsent = WorkflowHandleWithFirstExecutionRunId<typeof avatarConsentWorkflow> &
  ConsentStart;

/**
 * Why a start attached to the group's running consent but could not leave it as the caller wanted:
 * - `different_recipient`: its emails go to another address (pass differentRecipient 'change');
 * - `recipient_unchecked`: no answer to its status query in time (is a worker running?);
 * - `recipient_not_changed`: with 'change', the workflow refused or did not finish the update.
 * Never carries an address: the recipients are compared by fingerprint.
 */
export type RecipientConflictReason = 'different_recipient' | 'recipient_unchecked' | 'recipient_not_changed';

export class RecipientConflictError extends Error {
  override readonly name = 'RecipientConflictError';
  constructor(
    readonly reason: RecipientConflictReason,
    readonly workflowId: string,
    readonly runId: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The workflow's summary and details in the Temporal UI (markdown: every value escaped). */
export function startMetadata(input: ParsedAvatarConsentInput): {
  staticSummary: string;
  staticDetails: string;
} {
  const deadlineMs = input.policy?.deadline ?? parseDuration(DEFAULT_POLICY.deadline)!;
  return {
    staticSummary: `Avatar consent for HeyGen group ${escapeMarkdown(input.groupId)}`,
    staticDetails: [
      `**Group:** ${escapeMarkdown(input.groupId)}`,
      `**Recipient:** ${escapeMarkdown(maskEmail(input.recipient.email))}`,
      input.notify
        ? `**Notifies:** workflow ${escapeMarkdown(input.notify.workflowId)}`
        : '**Notifies:** parent or nobody',
      `**Deadline:** ${escapeMarkdown(formatDuration(deadlineMs))}`,
    ].join('\n\n'),
  };
}

/**
 * Starts the consent workflow for a group, or attaches to the one already running for it
 * (deterministic workflow ID with USE_EXISTING): triggering twice never requests a second consent.
 * Throws InvalidInputError, naming each bad field, before anything reaches Temporal, and
 * RecipientConflictError when the running consent is for someone else (see `differentRecipient`).
 */
export async function startAvatarConsent(
  client: Client,
  input: AvatarConsentInput,
  options: StartOptions = {},
): Promise<StartedAvatarConsent> {
  const parsed = parseAvatarConsentInput(input);
  const startRequest = randomUUID();
  const handle = await client.workflow.start<typeof avatarConsentWorkflow>(WORKFLOW_TYPE, {
    taskQueue: options.taskQueue ?? DEFAULT_TASK_QUEUE,
    workflowId: options.workflowId ?? workflowIdForGroup(parsed.groupId),
    workflowIdConflictPolicy: 'USE_EXISTING',
    args: [input],
    memo: { [START_REQUEST_MEMO]: startRequest },
    ...(options.searchAttributes === false
      ? {}
      : {
          // The phase is set here, so the workflow upserts only what operators filter on later.
          typedSearchAttributes: [
            { key: AvatarGroupIdAttribute, value: parsed.groupId },
            { key: ConsentPhaseAttribute, value: 'looking' },
            { key: ConsentBlockedAttribute, value: 'none' },
          ],
        }),
    ...startMetadata(parsed),
  });
  const runId = handle.firstExecutionRunId;
  const policy = options.differentRecipient ?? 'fail';
  const done = (start: Omit<ConsentStart, 'runId'>): StartedAvatarConsent => ({ ...handle, runId, ...start });
  if (policy === 'attach') return done({ started: false, recipient: 'unchecked', recipientChange: null });

  const description = await handle.describe();
  if (description.memo?.[START_REQUEST_MEMO] === startRequest)
    return done({ started: true, recipient: 'new', recipientChange: null });

  // Queries and updates go to the latest run by ID: `firstExecutionRunId` here is the run that start
  // found, which need not be the first of its chain after a continue-as-new.
  const latest = client.workflow.getHandle<typeof avatarConsentWorkflow>(handle.workflowId);
  const check = new RecipientCheck(client, latest, runId, parsed, options);
  const status = await check.status();
  if (status.recipientFingerprint === recipientFingerprint(parsed.recipient.email))
    return done({ started: false, recipient: 'same', recipientChange: null });
  if (policy === 'fail') throw check.differentRecipient(status);
  return done({ started: false, recipient: 'changed', recipientChange: await check.change() });
}

/** The look at a running consent that a start attached to, and the change of its recipient. */
class RecipientCheck {
  private readonly deadline: number;

  constructor(
    private readonly client: Client,
    private readonly handle: AvatarConsentHandle,
    private readonly runId: string,
    private readonly input: ParsedAvatarConsentInput,
    options: StartOptions,
  ) {
    this.deadline = Date.now() + (options.recipientCheckTimeoutMs ?? DEFAULT_RECIPIENT_CHECK_TIMEOUT_MS);
  }

  private get what(): string {
    return `A consent for group ${this.input.groupId} is already running (workflow ${this.handle.workflowId}, run ${this.runId})`;
  }

  private conflict(
    reason: RecipientConflictReason,
    message: string,
    cause?: unknown,
  ): RecipientConflictError {
    return new RecipientConflictError(reason, this.handle.workflowId, this.runId, message, { cause });
  }

  /**
   * The running consent's status. A worker answers it; right after a start the workflow may not have
   * registered its query handler yet, so failures are retried until the deadline.
   */
  async status(until: (status: ConsentStatusView) => boolean = () => true): Promise<ConsentStatusView> {
    let lastError: unknown;
    let last: ConsentStatusView | undefined;
    while (Date.now() < this.deadline) {
      try {
        last = await this.client.withDeadline(this.deadline, () => this.handle.query(statusQuery));
        if (typeof last.recipientFingerprint !== 'string')
          throw this.conflict(
            'recipient_unchecked',
            `${this.what}, but its workflow version does not report its recipient. Nothing was changed.`,
          );
        if (until(last)) return last;
      } catch (error) {
        if (error instanceof RecipientConflictError) throw error;
        lastError = error;
      }
      await sleep(Math.min(500, Math.max(0, this.deadline - Date.now())));
    }
    if (last)
      throw this.conflict(
        'recipient_not_changed',
        `${this.what}, but it has no consent link yet (phase ${last.phase}), so its recipient cannot be changed. Nothing was changed; try again in a moment.`,
      );
    const detail = lastError instanceof Error ? ` (${lastError.message})` : '';
    throw this.conflict(
      'recipient_unchecked',
      `${this.what}, but no worker answered its status query in time${detail}, so its recipient could not be checked. Nothing was changed.`,
      lastError,
    );
  }

  differentRecipient(status: ConsentStatusView): RecipientConflictError {
    const ended = status.outcome
      ? ` It has just ended (${status.outcome}); a new trigger will start afresh.`
      : '';
    return this.conflict(
      'different_recipient',
      `${this.what}, and its emails go to a different recipient. Nothing was changed.${ended} ` +
        "To send it to this recipient instead, pass differentRecipient: 'change'; to keep it, cancel it or let it end first.",
    );
  }

  /** Waits for the first link (the update needs one), then sends the consent to the new recipient. */
  async change(): Promise<ChangeRecipientResult> {
    const status = await this.status((s) => s.linkGeneration >= 1 || s.outcome !== null);
    if (status.outcome !== null)
      throw this.conflict(
        'recipient_not_changed',
        `${this.what.replace('is already running', 'was running')}, but it has ended (${status.outcome}) before its recipient could be changed.`,
      );
    const { email, name } = this.input.recipient;
    try {
      return await this.client.withDeadline(this.deadline, () =>
        this.handle.executeUpdate(changeRecipientUpdate, {
          args: [{ email, ...(name ? { name } : {}), reason: 'a new trigger named another recipient' }],
        }),
      );
    } catch (error) {
      const why =
        error instanceof WorkflowUpdateFailedError
          ? `the workflow refused the change (${error.cause?.message ?? error.message})`
          : `the change did not complete in time (${error instanceof Error ? error.message : String(error)}); the email may still be on its way, so check the status query's recipientFingerprint`;
      throw this.conflict('recipient_not_changed', `${this.what}, but ${why}.`, error);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------

export const EXIT = { ok: 0, failed: 1, usage: 2, recipientConflict: 3 } as const;

const SYNOPSIS = 'Usage: npm run starter -- --group-id <id> --email <address> [options]';

export const usage = `${SYNOPSIS}

Starts the HeyGen avatar consent for a group: the person gets an email with the consent link, and the
workflow polls HeyGen until they approve. If a consent for the group is already running, this attaches
to it instead (one consent per group).

Example (a local dev server, a worker running on the default task queue):
  TEMPORAL_ADDRESS=localhost:7233 npm run starter -- \\
    --group-id ag_8f2c41 --email ada@example.com --name "Ada Lovelace" \\
    --reroute-url https://app.example.com/consent-done --deadline 7d --wait
prints
  Started the consent for group ag_8f2c41: workflow avatar-consent-ag_8f2c41 (run 0193…). The email goes to a***@example.com.
  phase=awaiting  consent_status=pending  polls=1  emails=1  link=g1  next poll …
  Outcome: approved: the avatar may be used at 2026-…; group ag_8f2c41, 3 polls, 1 email, workflow avatar-consent-ag_8f2c41
In a script, take the JSON (npm's --silent keeps its banner off stdout):
  npm run --silent starter -- --group-id ag_8f2c41 --email ada@example.com --wait --json | jq -r .result.outcome

  --group-id <id>             HeyGen avatar group ID (required)
  --email <address>           the person who must approve (required)
  --name <name>               their name, used in the email
  --reroute-url <url>         where their browser goes after the consent page (https)
  --consent-text <text>       custom consent text (HeyGen enterprise; max 1000 chars, no < >)
  --notify-workflow-id <id>   workflow to signal (avatarConsentCompleted) when done
  --notify-signal <name>      signal name for --notify-workflow-id
  --deadline <duration>       give up after this long, e.g. 7d (default), 36h
  --task-queue <name>         default ${DEFAULT_TASK_QUEUE}
  --no-search-attributes      for clusters without the AvatarGroupId/Consent* search attributes
  --change-recipient          if the group's running consent goes to another address, send it to
                              --email instead (its current link is emailed to them at once)
  --wait                      show progress until the end, then one line with the outcome
  --json                      print one JSON object on stdout (progress goes to stderr), for scripts
  --connect-timeout <dur>     how long to try to reach Temporal (default 10s)
  -h, --help                  this text

Exit codes: 0 started or attached (with --wait: approved or not_required); 1 another outcome, or
Temporal failed; 2 bad arguments or settings; 3 the group's running consent goes to another
recipient (use --change-recipient), or its recipient could not be checked (is a worker running?).

Environment: TEMPORAL_ADDRESS (default localhost:7233), TEMPORAL_NAMESPACE (default default),
TEMPORAL_API_KEY, TEMPORAL_TLS*, or TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE for a profile of a
Temporal config file (the same settings as the temporal CLI); AVATAR_CONSENT_CODEC_KEYS or
AVATAR_CONSENT_CODEC_KEY_FILE (the worker's payload encryption keys).`;

export interface StarterSettings {
  input: AvatarConsentInput;
  options: StartOptions;
  wait: boolean;
  json: boolean;
  connectTimeoutMs: number;
}

/** Bad command-line arguments: each line names a flag and what is wrong with it. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

/** The flag that sets each field of the workflow input, to name flags (not fields) in errors. */
const FLAG_FOR_FIELD: Record<string, string> = {
  groupId: '--group-id',
  'recipient.email': '--email',
  'recipient.name': '--name',
  rerouteUrl: '--reroute-url',
  consentText: '--consent-text',
  'notify.workflowId': '--notify-workflow-id',
  'notify.signalName': '--notify-signal',
  'policy.deadline': '--deadline',
};

export function flagProblems(fields: readonly FieldIssue[]): string[] {
  return fields.map((field) => `${FLAG_FOR_FIELD[field.path] ?? field.path}: ${field.message}`);
}

/** node:util's parseArgs errors, said with the flag. */
function argumentProblem(error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  const quoted = /'([^']+)'/.exec(message ?? '')?.[1];
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${quoted ?? ''}`.trimEnd();
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return `${quoted?.split(' ')[0] ?? 'an option'} needs a value`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument "${quoted ?? ''}" (every value follows its --flag)`;
    default:
      return message ?? String(error);
  }
}

const MIN_CONNECT_TIMEOUT_MS = 1_000;
const MAX_CONNECT_TIMEOUT_MS = 300_000;

/** The CLI's arguments as settings, 'help', or a UsageError naming every bad flag. */
export function parseStarterArgs(argv: string[]): StarterSettings | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
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
        'change-recipient': { type: 'boolean', default: false },
        wait: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        'connect-timeout': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError([argumentProblem(error)]);
  }
  if (values.help) return 'help';

  const problems: string[] = [];
  if (values['group-id'] === undefined) problems.push('missing --group-id');
  if (values.email === undefined) problems.push('missing --email');
  if (values['notify-signal'] !== undefined && values['notify-workflow-id'] === undefined)
    problems.push('--notify-signal: needs --notify-workflow-id (the workflow to signal)');
  if (values['task-queue'] !== undefined && values['task-queue'].trim() === '')
    problems.push('--task-queue: must not be empty');
  let connectTimeoutMs = 10_000;
  if (values['connect-timeout'] !== undefined) {
    const ms = parseDuration(values['connect-timeout']);
    if (ms === undefined || ms < MIN_CONNECT_TIMEOUT_MS || ms > MAX_CONNECT_TIMEOUT_MS)
      problems.push('--connect-timeout: must be a duration from 1s to 5m, e.g. 3s');
    else connectTimeoutMs = ms;
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
  try {
    parseAvatarConsentInput(input);
  } catch (error) {
    if (!(error instanceof InvalidInputError)) throw error;
    // A missing flag is said once, as missing, not again as an invalid empty value.
    const missing = (path: string) =>
      (path === 'groupId' && values['group-id'] === undefined) ||
      (path === 'recipient.email' && values.email === undefined);
    problems.push(...flagProblems(error.fields.filter((field) => !missing(field.path))));
  }
  if (problems.length > 0) throw new UsageError(problems);

  return {
    input,
    options: {
      ...(values['task-queue'] !== undefined ? { taskQueue: values['task-queue'].trim() } : {}),
      ...(values['no-search-attributes'] ? { searchAttributes: false } : {}),
      differentRecipient: values['change-recipient'] ? 'change' : 'fail',
    },
    wait: values.wait,
    json: values.json,
    connectTimeoutMs,
  };
}

/** One progress line; polls and the next poll are for `nowMs`, from the open window's schedule. */
export function describeStatus(status: ConsentStatusView, nowMs = Date.now()): string {
  const progress = pollProgress(status, nowMs);
  const parts = [
    `phase=${status.phase}`,
    `consent_status=${status.consentStatus ?? 'null'}`,
    `polls=${progress.polls}`,
    `emails=${status.emailsSent}`,
    `link=g${status.linkGeneration}`,
  ];
  if (progress.nextPollAt) parts.push(`next poll ${progress.nextPollAt}`);
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
    let answered = false;
    try {
      const line = describeStatus(await handle.query(statusQuery));
      answered = true;
      if (line !== last) print(line);
      last = line;
    } catch {
      // Just started (no handler yet), just closed, or no worker yet: ask again soon; the result tells.
    }
    await Promise.race([
      result.catch(() => undefined),
      new Promise((resolve) => setTimeout(resolve, answered ? intervalMs : Math.min(intervalMs, 250))),
    ]);
  }
  return result;
}

const OUTCOME_MEANING: Record<ConsentOutcome, string> = {
  approved: 'the avatar may be used',
  not_required: 'HeyGen needs no consent for this group, so the avatar may be used',
  failed: 'HeyGen marked the avatar group failed',
  group_not_found: 'HeyGen has no such avatar group',
  invalid_request: 'HeyGen rejected the request',
  email_undeliverable: 'the mail server refused the address',
  expired: 'the deadline passed without approval',
  canceled: 'canceled',
  invalid_input: 'the workflow refused its input',
};

/** The one line `--wait` ends with: outcome, what it means, and the counts. */
export function outcomeLine(result: AvatarConsentResult, workflowId: string): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const error =
    result.error && !isSuccessfulOutcome(result.outcome)
      ? ` (${result.error.code}: ${result.error.message})`
      : '';
  const when = result.approvedAt ? ` at ${result.approvedAt}` : '';
  return (
    `Outcome: ${result.outcome}: ${OUTCOME_MEANING[result.outcome] ?? result.outcome}${when}${error}; ` +
    `group ${result.groupId}, ${plural(result.polls, 'poll')}, ${plural(result.emailsSent, 'email')}, workflow ${workflowId}`
  );
}

/** The result for --json: the consent link is personal, so it is never printed. */
export function printableResult(result: AvatarConsentResult): AvatarConsentResult {
  return { ...result, consentUrl: result.consentUrl === null ? null : '[hidden]' };
}

/** Where the Temporal address came from, for the message when it cannot be reached. */
export function addressSource(env: NodeJS.ProcessEnv): string {
  if (env.TEMPORAL_ADDRESS) return 'from TEMPORAL_ADDRESS';
  if (env.TEMPORAL_PROFILE || env.TEMPORAL_CONFIG_FILE)
    return `from profile "${env.TEMPORAL_PROFILE || 'default'}" of ${env.TEMPORAL_CONFIG_FILE || 'the Temporal config file'}`;
  return 'the default, or a Temporal config file: TEMPORAL_ADDRESS is not set';
}

export function connectionFailure(
  config: TemporalConnectionConfig,
  env: NodeJS.ProcessEnv,
  connectTimeoutMs: number,
  error: unknown,
): string {
  const reason = error instanceof Error ? error.message : String(error);
  return (
    `Cannot reach Temporal at ${config.connectionOptions.address} (${addressSource(env)}; namespace ${config.namespace}) ` +
    `within ${formatDuration(connectTimeoutMs)}: ${reason}\n` +
    'Set TEMPORAL_ADDRESS=host:port to your Temporal frontend (`temporal server start-dev` listens on localhost:7233), ' +
    'or TEMPORAL_PROFILE (with TEMPORAL_CONFIG_FILE) to use a profile of a Temporal config file; ' +
    '--connect-timeout sets how long to try.'
  );
}

/** Failures after connecting, with a hint where one helps. */
function temporalFailure(error: unknown, config: TemporalConnectionConfig): string {
  const reason = error instanceof Error ? error.message : String(error);
  const hint = /search attribute/i.test(reason)
    ? '\nRegister the search attributes (docs/deploy.md, "Search attributes on other clusters"), or pass --no-search-attributes.'
    : /namespace/i.test(reason)
      ? '\nSet TEMPORAL_NAMESPACE to a namespace that exists.'
      : '';
  return `starter failed (Temporal at ${config.connectionOptions.address}, namespace ${config.namespace}): ${reason}${hint}`;
}

/** The CLI's recipient-conflict messages name flags, not library options. */
function conflictMessage(error: RecipientConflictError, email: string): string {
  const message = error.message.replace(
    "pass differentRecipient: 'change'",
    `run again with --change-recipient (its current link is emailed to ${maskEmail(email)} at once)`,
  );
  return error.reason === 'recipient_unchecked'
    ? `${message} The workflow's task queue needs a running worker (npm run worker).`
    : message;
}

interface Output {
  /** Human lines: stdout, or stderr with --json. */
  say(line: string): void;
  /** Problems: always stderr. */
  warn(line: string): void;
  /** --json: the one object on stdout. */
  json(value: unknown): void;
}

const consoleOutput = (json: boolean): Output => ({
  say: (line) => (json ? console.error(line) : console.log(line)),
  warn: (line) => console.error(line),
  json: (value) => console.log(JSON.stringify(value)),
});

/** The CLI: returns its exit code. */
export async function runStarter(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  output?: Output,
): Promise<number> {
  const jsonWanted = argv.includes('--json');
  const out = output ?? consoleOutput(jsonWanted);
  const fail = (code: number, kind: string, message: string): number => {
    out.warn(message);
    if (jsonWanted) out.json({ error: { code: kind, message } });
    return code;
  };

  let settings: StarterSettings | 'help';
  try {
    settings = parseStarterArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    return fail(
      EXIT.usage,
      'usage',
      `${error.problems.join('\n')}\n\n${SYNOPSIS}\nRun \`npm run starter -- --help\` for every option and an example.`,
    );
  }
  if (settings === 'help') {
    console.log(usage);
    return EXIT.ok;
  }

  let config: TemporalConnectionConfig;
  let dataConverter: ReturnType<typeof dataConverterFor>;
  try {
    config = temporalConnectionFromEnv(env);
    // The same payload codec as the worker: the input (an address) is encrypted before it leaves.
    dataConverter = dataConverterFor(loadCodecKeysFromEnv(env));
  } catch (error) {
    // Both name the setting, never its value (an API key, a codec key).
    return fail(EXIT.usage, 'settings', error instanceof Error ? error.message : String(error));
  }

  let connection: Connection;
  try {
    connection = await Connection.connect({
      ...config.connectionOptions,
      connectTimeout: settings.connectTimeoutMs,
    });
  } catch (error) {
    return fail(EXIT.failed, 'unreachable', connectionFailure(config, env, settings.connectTimeoutMs, error));
  }
  try {
    const client = new Client({ connection, namespace: config.namespace, dataConverter });
    const { input, options } = settings;
    const email = input.recipient.email;
    let start: StartedAvatarConsent;
    try {
      start = await startAvatarConsent(client, input, options);
    } catch (error) {
      if (error instanceof RecipientConflictError)
        return fail(EXIT.recipientConflict, error.reason, conflictMessage(error, email));
      return fail(EXIT.failed, 'temporal', temporalFailure(error, config));
    }
    const run = `workflow ${start.workflowId} (run ${start.runId})`;
    out.say(
      {
        new: `Started the consent for group ${input.groupId}: ${run}. The email goes to ${maskEmail(email)}.`,
        same: `A consent for group ${input.groupId} is already running for ${maskEmail(email)}: attached to ${run}. Nothing new is sent.`,
        changed: `A consent for group ${input.groupId} was running for another recipient: ${run} now sends it to ${maskEmail(email)} (email ${start.recipientChange?.messageId ?? ''}, link generation ${start.recipientChange?.linkGeneration ?? ''}).`,
        unchecked: `Attached to ${run}.`,
      }[start.recipient],
    );
    const summary = {
      workflowId: start.workflowId,
      runId: start.runId,
      groupId: input.groupId,
      started: start.started,
      recipient: start.recipient,
      recipientChange: start.recipientChange,
    };
    if (!settings.wait) {
      if (settings.json) out.json({ ...summary, result: null });
      return EXIT.ok;
    }
    let result: AvatarConsentResult;
    try {
      result = await waitWithProgress(start, (line) => out.say(line));
    } catch (error) {
      return fail(EXIT.failed, 'temporal', temporalFailure(error, config));
    }
    out.say(outcomeLine(result, start.workflowId));
    if (settings.json) out.json({ ...summary, result: printableResult(result) });
    return isSuccessfulOutcome(result.outcome) ? EXIT.ok : EXIT.failed;
  } finally {
    await connection.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runStarter(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(
        `starter failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
      process.exit(EXIT.failed);
    },
  );
}
