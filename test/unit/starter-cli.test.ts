/**
 * The starter CLI without a Temporal server: its arguments, its messages and its output. The runs
 * against a server (started, attached, another recipient, --wait) are in
 * test/integration/starter-cli.test.ts.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { AvatarConsentResult, ParsedAvatarConsentInput } from '../../src/contract/index.js';
import {
  EXIT,
  UsageError,
  connectionFailure,
  outcomeLine,
  parseStarterArgs,
  printableResult,
  runStarter,
  startMetadata,
  usage,
} from '../../src/starter.js';
import type { StarterSettings } from '../../src/starter.js';
import { exited, keepLines } from '../../tools/kit/child-process.js';
import { freePort } from '../../tools/kit/ports.js';

const required = ['--group-id', 'ag_1', '--email', 'ada@example.com'];

function problemsOf(argv: string[]): string[] {
  try {
    parseStarterArgs(argv);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as UsageError).problems;
  }
  throw new Error(`expected a UsageError for ${argv.join(' ')}`);
}

function settingsOf(argv: string[]): StarterSettings {
  const settings = parseStarterArgs(argv);
  if (settings === 'help') throw new Error('expected settings, got help');
  return settings;
}

/** Runs the CLI in this process, collecting what it says. */
async function runInProcess(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const said: string[] = [];
  const warned: string[] = [];
  const json: unknown[] = [];
  const code = await runStarter(argv, env, {
    say: (line) => said.push(line),
    warn: (line) => warned.push(line),
    json: (value) => json.push(value),
  });
  return { code, said, warned: warned.join('\n'), json };
}

describe('arguments', () => {
  it('every flag becomes the workflow input and the start options', () => {
    const settings = settingsOf([
      ...required,
      '--name',
      'Ada Lovelace',
      '--reroute-url',
      'https://app.example.com/done',
      '--consent-text',
      'I agree.',
      '--notify-workflow-id',
      'orders-42',
      '--notify-signal',
      'consentDone',
      '--deadline',
      '36h',
      '--task-queue',
      'consent-eu',
      '--no-search-attributes',
      '--change-recipient',
      '--wait',
      '--json',
      '--connect-timeout',
      '3s',
    ]);
    expect(settings).toEqual({
      input: {
        groupId: 'ag_1',
        recipient: { email: 'ada@example.com', name: 'Ada Lovelace' },
        rerouteUrl: 'https://app.example.com/done',
        consentText: 'I agree.',
        notify: { workflowId: 'orders-42', signalName: 'consentDone' },
        policy: { deadline: '36h' },
      },
      options: { taskQueue: 'consent-eu', searchAttributes: false, differentRecipient: 'change' },
      wait: true,
      json: true,
      connectTimeoutMs: 3_000,
    });
  });

  it('by default a running consent for another recipient is an error, and Temporal gets 10 s to answer', () => {
    const settings = settingsOf(required);
    expect(settings.options).toEqual({ differentRecipient: 'fail' });
    expect(settings).toMatchObject({ wait: false, json: false, connectTimeoutMs: 10_000 });
  });

  it('a bare call names the missing flags as flags', () => {
    expect(problemsOf([])).toEqual(['missing --group-id', 'missing --email']);
    expect(problemsOf(['--email', 'ada@example.com'])).toEqual(['missing --group-id']);
  });

  it('bad values are named by their flag, never by the input field behind it', () => {
    const problems = problemsOf([
      '--group-id',
      'ag/../x',
      '--email',
      'nobody',
      '--name',
      'Ada\nBcc: x@example.com',
      '--reroute-url',
      'http://app.example.com/done',
      '--deadline',
      'soon',
    ]);
    expect(problems.map((problem) => problem.split(':')[0])).toEqual([
      '--group-id',
      '--email',
      '--name',
      '--reroute-url',
      '--deadline',
    ]);
    expect(problems.join('\n')).not.toMatch(/groupId|recipient\.|rerouteUrl|policy\./);
  });

  it.each([
    [['--group-id'], '--group-id needs a value'],
    [[...required, '--frobnicate'], 'unknown option --frobnicate'],
    [[...required, 'ag_2'], 'unexpected argument "ag_2" (every value follows its --flag)'],
    [
      [...required, '--notify-signal', 'done'],
      '--notify-signal: needs --notify-workflow-id (the workflow to signal)',
    ],
    [
      [...required, '--connect-timeout', '0s'],
      '--connect-timeout: must be a duration from 1s to 5m, e.g. 3s',
    ],
    [[...required, '--task-queue', ' '], '--task-queue: must not be empty'],
  ])('%j: %s', (argv, problem) => {
    expect(problemsOf(argv)).toEqual([problem]);
  });

  it('-h and --help ask for the usage', () => {
    expect(parseStarterArgs(['--help'])).toBe('help');
    expect(parseStarterArgs(['-h'])).toBe('help');
  });
});

describe('--help', () => {
  it('documents every flag, the exit codes and the environment', () => {
    for (const flag of [
      '--group-id',
      '--email',
      '--name',
      '--reroute-url',
      '--consent-text',
      '--notify-workflow-id',
      '--notify-signal',
      '--deadline',
      '--task-queue',
      '--no-search-attributes',
      '--change-recipient',
      '--wait',
      '--json',
      '--connect-timeout',
      '--help',
    ])
      expect(usage).toMatch(new RegExp(`^ {2}(?:-h, )?${flag}\\b`, 'm'));
    expect(usage).toMatch(/Exit codes: 0 .*1 .*2 .*3 /s);
    for (const name of [
      'TEMPORAL_ADDRESS',
      'TEMPORAL_PROFILE',
      'TEMPORAL_CONFIG_FILE',
      'AVATAR_CONSENT_CODEC_KEYS',
    ])
      expect(usage).toContain(name);
  });

  it('its example is a complete, valid command', () => {
    const example = /npm run starter -- \\\n((?:.*\\\n)*.*--wait)/.exec(usage)?.[1];
    expect(example).toBeDefined();
    const argv = (example!.replace(/\\\n/g, ' ').match(/"[^"]*"|\S+/g) ?? []).map((word) =>
      word.replace(/^"|"$/g, ''),
    );
    const settings = settingsOf(argv);
    expect(settings.input).toMatchObject({ groupId: 'ag_8f2c41', recipient: { name: 'Ada Lovelace' } });
    expect(settings.wait).toBe(true);
  });
});

describe('output', () => {
  const result: AvatarConsentResult = {
    outcome: 'approved',
    groupId: 'ag_1',
    consentStatus: 'approved',
    avatarStatus: 'completed',
    consentUrl: 'https://app.heygen.com/consent/abc123?sig=secret',
    approvedAt: '2026-03-01T10:00:00.000Z',
    polls: 3,
    emailsSent: 1,
    linkGeneration: 1,
  };

  it('--wait ends with one line: the outcome, what it means, the counts; never the link', () => {
    const line = outcomeLine(result, 'avatar-consent-ag_1');
    expect(line).toBe(
      'Outcome: approved: the avatar may be used at 2026-03-01T10:00:00.000Z; group ag_1, 3 polls, 1 email, workflow avatar-consent-ag_1',
    );
    expect(line).not.toContain('\n');
    const notFound = outcomeLine(
      {
        ...result,
        outcome: 'group_not_found',
        consentStatus: null,
        consentUrl: null,
        approvedAt: undefined,
        polls: 0,
        emailsSent: 0,
        error: { code: 'avatar_group_not_found', message: 'Avatar group not found' },
      },
      'avatar-consent-ag_1',
    );
    expect(notFound).toBe(
      'Outcome: group_not_found: HeyGen has no such avatar group (avatar_group_not_found: Avatar group not found); group ag_1, 0 polls, 0 emails, workflow avatar-consent-ag_1',
    );
  });

  it('--json never prints the consent link (it is personal)', () => {
    const printed = JSON.stringify(printableResult(result));
    expect(printed).not.toContain('abc123');
    expect(JSON.parse(printed)).toMatchObject({ outcome: 'approved', consentUrl: '[hidden]', polls: 3 });
    expect(printableResult({ ...result, consentUrl: null }).consentUrl).toBeNull();
  });
});

describe('what the starter writes into the Temporal UI (markdown)', () => {
  const input: ParsedAvatarConsentInput = {
    groupId: '__ag_1__',
    recipient: { email: 'ada.lovelace@example.com' },
    // A value from outside that tries to be a link, an image and a heading on a line of its own.
    notify: { workflowId: '[link](https://evil.example/x)\n# ![img](https://evil.example/i.png)' },
    policy: { deadline: 36 * 3_600_000 },
  };

  it('escapes every value: no link, image, heading, emphasis or new line comes from the input', () => {
    const { staticSummary, staticDetails } = startMetadata(input);
    expect(staticSummary).toBe('Avatar consent for HeyGen group \\_\\_ag\\_1\\_\\_');
    const details = staticDetails.split('\n\n');
    expect(details).toHaveLength(4);
    expect(details[2]).toBe(
      '**Notifies:** workflow \\[link\\]\\(https\\://evil\\.example/x\\) \\# \\!\\[img\\]\\(https\\://evil\\.example/i\\.png\\)',
    );
    // Unescaped markup would start with a bracket, a bang or an underscore not preceded by a backslash.
    expect(staticDetails).not.toMatch(/(?<!\\)[[(!_#]/);
    expect(details[3]).toBe('**Deadline:** 36h');
  });

  it('shows the recipient masked, never the address', () => {
    const { staticDetails } = startMetadata(input);
    expect(staticDetails).toContain('**Recipient:** a\\*\\*\\*@example\\.com');
    expect(staticDetails).not.toContain('lovelace');
  });
});

describe('when Temporal cannot be reached', () => {
  it('names the address, where it came from, how long it tried, and what to set', async () => {
    const port = await freePort();
    const { code, warned, said } = await runInProcess([...required, '--connect-timeout', '1s'], {
      TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
    });
    expect(code).toBe(EXIT.failed);
    expect(said).toEqual([]);
    expect(warned).toMatch(
      new RegExp(
        `^Cannot reach Temporal at 127\\.0\\.0\\.1:${port} \\(from TEMPORAL_ADDRESS; namespace default\\) within 1s: `,
      ),
    );
    expect(warned).toContain('TEMPORAL_ADDRESS=host:port');
    expect(warned).toContain('TEMPORAL_PROFILE');
    expect(warned).toContain('--connect-timeout');
  });

  it('says when the address is only the default, or from a profile', () => {
    const config = { connectionOptions: { address: 'localhost:7233' }, namespace: 'default' };
    const failure = new Error('Failed to connect before the deadline');
    expect(connectionFailure(config, {}, 10_000, failure)).toContain(
      'Cannot reach Temporal at localhost:7233 (the default, or a Temporal config file: TEMPORAL_ADDRESS is not set; namespace default) within 10s',
    );
    expect(
      connectionFailure(
        { ...config, connectionOptions: { address: 'prod.tmprl.cloud:7233' } },
        { TEMPORAL_PROFILE: 'prod', TEMPORAL_CONFIG_FILE: '/etc/temporal.toml' },
        10_000,
        failure,
      ),
    ).toContain('at prod.tmprl.cloud:7233 (from profile "prod" of /etc/temporal.toml; namespace default)');
  });

  it('as a process: exit code 1, the message on stderr, and with --json one JSON object on stdout', async () => {
    const port = await freePort();
    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/starter.ts', ...required, '--connect-timeout', '1s', '--json'],
      {
        cwd: fileURLToPath(new URL('../..', import.meta.url)),
        env: { ...process.env, TEMPORAL_ADDRESS: `127.0.0.1:${port}` },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const stdout: string[] = [];
    const stderr: string[] = [];
    keepLines(proc.stdout, stdout);
    keepLines(proc.stderr, stderr);
    expect((await exited(proc)).code).toBe(EXIT.failed);
    expect(stdout).toHaveLength(1);
    const printed = JSON.parse(stdout[0]!) as { error: { code: string; message: string } };
    expect(printed.error.code).toBe('unreachable');
    expect(printed.error.message).toContain(`Cannot reach Temporal at 127.0.0.1:${port}`);
    expect(stderr.join('\n')).toContain(`Cannot reach Temporal at 127.0.0.1:${port}`);
  });

  it('bad settings in the environment exit 2, naming the variable', async () => {
    const { code, warned } = await runInProcess(required, { AVATAR_CONSENT_CODEC_KEYS: 'not-a-key' });
    expect(code).toBe(EXIT.usage);
    expect(warned).toContain('AVATAR_CONSENT_CODEC_KEYS');
  });
});
