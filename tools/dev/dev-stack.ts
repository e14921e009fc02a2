/**
 * `npm run dev`: the whole stack on this machine, in one terminal, with no accounts and no Docker.
 *
 *   Temporal dev server + Web UI   the kit's launcher (tools/kit/temporal-server.ts), state in a
 *                                  SQLite file so a restart keeps running workflows
 *   HeyGen sandbox                 in-process (startSandbox), its groups and consent links kept
 *                                  across restarts (sandbox-state.ts)
 *   mail catcher + web inbox       in-process: the kit's SMTP catcher and a web view (web-inbox.ts)
 *   consent-return gateway         in-process (startGateway)
 *   the worker                     in-process (runWorker), wired to the pieces above
 *
 * Each piece is started, then waited for (port, health, pollers). Ctrl-C stops everything in order:
 * the worker drains, the sandbox and the inbox close, the dev server gets SIGTERM and is waited for.
 * Flags and DEV_* variables: settings.ts.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadWorkerConfig, redactConfig } from '../../src/config/worker-config.js';
import type { WorkerConfig } from '../../src/config/worker-config.js';
import { GatewaySecrets, startGateway } from '../../src/gateway/index.js';
import type { Gateway } from '../../src/gateway/index.js';
import { checkNowSender } from '../../src/gateway/main.js';
import { runWorker } from '../../src/worker.js';
import { DEFAULT_API_KEY, startSandbox } from '../heygen-sandbox/index.js';
import type { Sandbox } from '../heygen-sandbox/index.js';
import { isEntryPoint, runCli } from '../kit/cli.js';
import { within } from '../kit/child-process.js';
import { eventually } from '../kit/eventually.js';
import { startSmtpCatcher } from '../kit/smtp-catcher.js';
import type { SmtpCatcher } from '../kit/smtp-catcher.js';
import { temporalServer } from '../kit/temporal-server.js';
import type { TemporalServer } from '../kit/temporal-server.js';
import { portProblems } from './port-plan.js';
import { restoreSandboxState, SandboxStateWriter } from './sandbox-state.js';
import type { Restored } from './sandbox-state.js';
import { DEV_HOST, DEV_NAMESPACE, devGatewaySecret, devWorkerEnv, parseDevArgs, usage } from './settings.js';
import type { DevStackSettings } from './settings.js';
import { startWebInbox } from './web-inbox.js';
import type { WebInbox } from './web-inbox.js';

/** The reason the stack's stop signal carries: Ctrl-C, or a piece that went away. */
class StopRequested extends Error {
  override readonly name = 'StopRequested';
}

const say = (line = '') => console.log(line);

export async function runDevStack(settings: DevStackSettings): Promise<number> {
  const { ports } = settings;
  const stop = new AbortController();
  let exitCode = 0;

  let temporal: TemporalServer | undefined;
  let sandbox: Sandbox | undefined;
  let mail: SmtpCatcher | undefined;
  let inbox: WebInbox | undefined;
  let connection: Connection | undefined;
  let worker: Promise<void> | undefined;
  let gateway: Gateway | undefined;
  let sandboxState: SandboxStateWriter | undefined;

  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstSignalAt === 0) {
      firstSignalAt = Date.now();
      say(`\n${signal}: stopping…`);
      stop.abort(new StopRequested(signal));
      return;
    }
    // One Ctrl-C often arrives more than once: from the terminal and relayed by npm and tsx.
    if (Date.now() - firstSignalAt < 2_000) return;
    console.error('Forced stop.');
    sandboxState?.flush();
    // The kit kills a dev server still running when the process exits.
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  /** Asks the whole stack to stop, as Ctrl-C does (Temporal's Runtime also listens for SIGTERM). */
  const requestStop = (reason: string, code: number) => {
    if (stop.signal.aborted) return;
    console.error(reason);
    exitCode = code;
    process.kill(process.pid, 'SIGTERM');
  };

  try {
    // 1. Every port free, and the Temporal CLI there, before anything starts.
    const problems = await portProblems(settings);
    if (problems.length > 0) {
      for (const problem of problems) console.error(problem);
      return 1;
    }
    mkdirSync(settings.stateDir, { recursive: true });
    const logFile = join(settings.stateDir, 'temporal.log');
    temporal = temporalServer({
      port: ports.temporal,
      ui: settings.ui ? { port: ports.temporalUi } : false,
      dbFile: join(settings.stateDir, 'temporal.db'),
      logFile,
      logLevel: 'warn',
      startTimeoutMs: 60_000,
      // HEYGEN_MAX_RPS is split across a queue's partitions; one keeps the cap what it says (operations.md).
      dynamicConfig: ['matching.numTaskqueueReadPartitions=1', 'matching.numTaskqueueWritePartitions=1'],
      onUnexpectedExit: (exit) =>
        requestStop(
          `\nThe Temporal dev server exited (code ${exit.code}, signal ${exit.signal}). Last lines of ${logFile}:\n` +
            temporal!.tail().join('\n'),
          1,
        ),
    });

    say('Starting the local avatar-consent stack…');
    // 2. Temporal boots while the sandbox and the mail catcher start; it answers with its search
    //    attributes registered and its UI serving.
    const booting = temporal.start({ signal: stop.signal });
    // Awaited below; a failure meanwhile must not count as unhandled.
    void booting.catch(() => undefined);
    sandbox = await startSandbox({
      host: DEV_HOST,
      port: ports.sandbox,
      apiKeys: [DEFAULT_API_KEY],
      // Saved soon after every change, so a link handed out survives even a crash of this process.
      onStateChange: () => sandboxState?.schedule(),
    });
    const restored = restoreSandboxState(sandbox, settings.stateDir);
    sandboxState = new SandboxStateWriter(sandbox, settings.stateDir);
    mail = await startSmtpCatcher({
      host: DEV_HOST,
      port: ports.smtp,
      auth: 'any',
      maxMessages: 500,
      onMessage: (received) => {
        const link = `http://localhost:${ports.inbox}/messages/${received.id}`;
        say(`  mail → ${received.to.join(', ')}: "${received.subject}"  ${link}`);
      },
    });
    inbox = await startWebInbox(mail, { host: DEV_HOST, port: ports.inbox });
    const { registered } = await booting;
    if (registered.length > 0) say(`  registered search attribute(s) ${registered.join(', ')}`);
    connection = await Connection.connect({ address: temporal.address, connectTimeout: 5_000 });

    // 3. The consent-return gateway: the consent page's redirect signals checkNow.
    const gatewaySecret = devGatewaySecret(settings.stateDir);
    gateway = await startGateway({
      host: DEV_HOST,
      port: ports.gateway,
      secrets: GatewaySecrets.fromTexts([gatewaySecret]),
      signal: checkNowSender(new Client({ connection, namespace: DEV_NAMESPACE })),
    });

    // 4. The worker, in this process. A ConfigError names each bad variable, never a value.
    const config: WorkerConfig = loadWorkerConfig(
      devWorkerEnv(process.env, {
        temporalAddress: temporal.address,
        sandboxUrl: sandbox.url,
        smtpUrl: mail.url,
        gatewayUrl: `http://localhost:${ports.gateway}`,
        gatewaySecret,
      }),
    );
    stop.signal.throwIfAborted();
    worker = runWorker(config);
    void worker.then(
      () => {
        if (!stop.signal.aborted) requestStop('\nThe worker stopped on its own.', 1);
      },
      (error: unknown) => {
        requestStop(`\nThe worker failed: ${error instanceof Error ? error.message : String(error)}`, 1);
      },
    );
    const pollers = connection;
    await eventually(
      `the worker to poll task queue ${config.TEMPORAL_TASK_QUEUE}`,
      async () => {
        const queue = await pollers.workflowService.describeTaskQueue({
          namespace: DEV_NAMESPACE,
          taskQueue: { name: config.TEMPORAL_TASK_QUEUE },
          taskQueueType: 1, // TASK_QUEUE_TYPE_WORKFLOW
        });
        return (queue.pollers ?? []).length > 0;
      },
      { timeoutMs: 60_000, intervalMs: 250, signal: stop.signal },
    );

    // 5. Ready.
    printReady(settings, { temporal, config, sandbox, mail, inbox, restored });

    // 6. Run until asked to stop.
    await new Promise<void>((done) => {
      if (stop.signal.aborted) done();
      else stop.signal.addEventListener('abort', () => done(), { once: true });
    });
  } catch (error) {
    if (!(error instanceof StopRequested)) {
      console.error(`\nnpm run dev failed: ${error instanceof Error ? error.message : String(error)}`);
      exitCode = 1;
      // Temporal's Runtime stops the worker on SIGTERM, as on Ctrl-C.
      if (worker && !stop.signal.aborted) process.kill(process.pid, 'SIGTERM');
    }
  } finally {
    // From here on, pieces going away is expected, not a failure to report.
    if (!stop.signal.aborted) stop.abort(new StopRequested('finished'));
    if (worker) {
      const drained = await within(
        35_000,
        'the worker to drain',
        worker.catch(() => undefined),
      ).then(
        () => true,
        () => false,
      );
      if (!drained) console.warn('  the worker did not finish draining within 35 s');
    }
    // Reverse order: the worker is down (or never started), then the pieces it used.
    if (sandbox) {
      const saved = sandboxState?.flush() ?? 0;
      if (saved > 0)
        say(`  saved ${saved} sandbox group(s) and their consent links to ${sandboxState!.file}`);
      await sandbox.close();
    }
    await inbox?.close();
    await mail?.close();
    await gateway?.close();
    await connection?.close().catch(() => undefined);
    if (temporal?.running) {
      const stopped = await temporal.stop(15_000);
      if (!stopped.graceful) console.warn('  the Temporal dev server did not stop within 15 s: killed it');
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (temporal || sandbox || mail) say('Stopped.');
  }
  return exitCode;
}

function printReady(
  settings: DevStackSettings,
  stack: {
    temporal: TemporalServer;
    config: WorkerConfig;
    sandbox: Sandbox;
    mail: SmtpCatcher;
    inbox: WebInbox;
    restored: Restored;
  },
): void {
  const { temporal, config, sandbox, mail, inbox, restored } = stack;
  const redacted = redactConfig(config);
  say();
  say('avatar-consent dev stack is running');
  say(
    `  Temporal Web UI   ${settings.ui ? `http://localhost:${settings.ports.temporalUi}` : '(off: --no-ui)'}`,
  );
  say(
    `  Temporal          ${temporal.address}  namespace ${DEV_NAMESPACE}, task queue ${config.TEMPORAL_TASK_QUEUE}`,
  );
  say(`  Mail inbox        ${inbox.url}  (SMTP ${mail.url})`);
  say(`  HeyGen sandbox    ${sandbox.url}  key ${DEFAULT_API_KEY}, admin API ${sandbox.url}/_sandbox`);
  say(
    `  Return gateway    ${config.returnLinks ? `${config.returnLinks.publicBaseUrl} (the consent page's redirect polls at once)` : 'off (PUBLIC_BASE_URL set elsewhere)'}`,
  );
  if (config.HEYGEN_BASE_URL !== sandbox.url) {
    say(`  Worker → HeyGen   ${String(redacted.HEYGEN_BASE_URL)} (HEYGEN_BASE_URL)`);
  }
  if (config.SMTP_URL !== mail.url) say(`  Worker → SMTP     ${String(redacted.SMTP_URL)} (SMTP_URL)`);
  say(`  State             ${temporal.dbFile} (workflows survive a restart)`);
  if (restored.groups > 0) {
    say(
      `                    ${restored.groups} sandbox group(s) and ${restored.consents} consent link(s) restored`,
    );
  }
  if (restored.elsewhere > 0) {
    say(
      `                    ${restored.elsewhere} of those links name another sandbox address (DEV_SANDBOX_PORT`,
    );
    say(
      `                    changed?): approve such a group with curl -X POST ${sandbox.url}/_sandbox/groups/<id>/approve`,
    );
  }
  say();
  say('Try it: `npm run demo` in another terminal. Ctrl-C here stops everything.');
  say();
}

if (isEntryPoint(import.meta.url)) {
  runCli({ name: 'npm run dev', usage, parse: (argv) => parseDevArgs(argv), run: runDevStack });
}
