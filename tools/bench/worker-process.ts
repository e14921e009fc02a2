/**
 * The worker under test, in its own process so its memory (RSS) is its own: the product worker
 * (createConsentWorker, exactly as src/worker.ts wires it) or the baseline worker. Started by
 * tools/bench/main.ts with `fork`; talks over IPC (see ./ipc.ts).
 *
 * To count billable actions the benchmark needs every activity attempt, including attempts of a
 * polling window cancelled by checkNow (history keeps no attempt count for those), so the HeyGen
 * client and the mailer are wrapped to note the attempt of the activity that calls them. Every
 * attempt of the consent activities makes exactly one such call. The HeyGen client's fetch is
 * wrapped too, to see each request as sent and each 429's Retry-After.
 */
import { activityInfo } from '@temporalio/activity';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { ActivityDependencies, ConsentMailer, HeyGenApi } from '../../src/activities/index.js';
import { emailDomain } from '../../src/config/worker-config.js';
import { createSmtpMailer } from '../../src/email/index.js';
import { GatewaySecrets } from '../../src/gateway/tokens.js';
import { HeyGenClient, RateGate } from '../../src/heygen/index.js';
import { createConsentWorker } from '../../src/worker.js';
import { createBaselineActivities } from './baseline-activities.js';
import { parentMessageSchema } from './ipc.js';
import type { AttemptRecord, ChildMessage, RequestRecord, WorkerStart } from './ipc.js';

const MEMORY_SAMPLE_MS = 200;

/** Epoch milliseconds with sub-millisecond precision: a request and a 429 can share a millisecond. */
const preciseNow = (): number => performance.timeOrigin + performance.now();

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

class Recorder {
  readonly attempts = new Map<string, AttemptRecord>();
  readonly requests: RequestRecord[] = [];

  constructor(readonly enabled: boolean) {}

  noteAttempt(): void {
    if (!this.enabled) return;
    let info;
    try {
      info = activityInfo();
    } catch {
      return; // not inside an activity
    }
    const runId = info.workflowExecution?.runId ?? '';
    const key = `${runId}/${info.activityId}`;
    const seen = this.attempts.get(key);
    if (!seen || seen[4] < info.attempt) {
      this.attempts.set(key, [
        info.workflowExecution?.workflowId ?? '',
        runId,
        info.activityId,
        info.activityType,
        info.attempt,
      ]);
    }
  }

  fetch: typeof fetch = async (input, init) => {
    const sentAt = preciseNow();
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    try {
      const response = await fetch(input, init);
      if (this.enabled) {
        this.requests.push([
          sentAt,
          preciseNow(),
          response.status,
          response.headers.get('retry-after'),
          method,
          url.pathname,
        ]);
      }
      return response;
    } catch (err) {
      if (this.enabled) this.requests.push([sentAt, preciseNow(), 0, null, method, url.pathname]);
      throw err;
    }
  };
}

function dependencies(start: WorkerStart, recorder: Recorder): ActivityDependencies & { close(): void } {
  const client = new HeyGenClient({
    baseUrl: start.heygenUrl,
    apiKey: start.heygenApiKey,
    timeoutMs: 15_000,
    // One gate per worker process, as src/worker.ts does.
    rateGate: new RateGate(),
    fetch: recorder.fetch,
  });
  const heygen: HeyGenApi = {
    createConsent: (...args) => {
      recorder.noteAttempt();
      return client.createConsent(...args);
    },
    getAvatarGroup: (...args) => {
      recorder.noteAttempt();
      return client.getAvatarGroup(...args);
    },
  };
  const smtp = createSmtpMailer({ smtpUrl: start.smtpUrl, from: start.emailFrom });
  const mailer: ConsentMailer = {
    sendConsentEmail: (...args) => {
      recorder.noteAttempt();
      return smtp.sendConsentEmail(...args);
    },
  };
  return {
    heygen,
    mailer,
    messageIdDomain: emailDomain(start.emailFrom),
    returnLinks: start.returnLinks
      ? {
          publicBaseUrl: start.returnLinks.publicBaseUrl,
          secrets: GatewaySecrets.fromTexts([start.returnLinks.secretText]),
          ttlMs: start.returnLinks.ttlMs,
        }
      : undefined,
    close: () => smtp.close(),
  };
}

async function run(start: WorkerStart): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const recorder = new Recorder(start.record);
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    const { rss, heapUsed } = process.memoryUsage();
    peakRss = Math.max(peakRss, rss);
    void send({ type: 'memory', at: Date.now(), rss, heapUsed });
  }, MEMORY_SAMPLE_MS);

  const deps = dependencies(start, recorder);
  const connection = await NativeConnection.connect({ address: start.temporalAddress });
  const workflowBundle = { codePath: start.bundlePath };
  const worker =
    start.system === 'product'
      ? await createConsentWorker({
          connection,
          namespace: start.namespace,
          taskQueue: start.taskQueue,
          dependencies: deps,
          workflowBundle,
        })
      : await Worker.create({
          connection,
          namespace: start.namespace,
          taskQueue: start.taskQueue,
          workflowBundle,
          activities: createBaselineActivities(deps),
        });

  process.on('message', (raw) => {
    const message = parentMessageSchema.safeParse(raw);
    if (message.success && message.data.type === 'stop') worker.shutdown();
  });
  const running = worker.run();
  await send({ type: 'ready' });
  await running;
  clearInterval(sampler);
  deps.close();
  await connection.close();
  await send({
    type: 'report',
    attempts: [...recorder.attempts.values()],
    requests: recorder.requests,
    peakRss: Math.max(peakRss, process.memoryUsage().rss),
  });
}

process.once('message', (raw) => {
  const message = parentMessageSchema.safeParse(raw);
  if (!message.success || message.data.type !== 'start') {
    void send({ type: 'failed', message: 'expected a start message' }).then(() => process.exit(2));
    return;
  }
  run(message.data).then(
    () => process.exit(0),
    (err: unknown) => {
      void send({ type: 'failed', message: err instanceof Error ? err.message : String(err) }).then(() =>
        process.exit(1),
      );
    },
  );
});
