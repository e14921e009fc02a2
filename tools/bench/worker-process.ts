/**
 * A worker under test, in its own process so its memory (RSS) is its own. Started by the benchmark
 * with `fork`; talks over IPC (see ./ipc.ts).
 * - product: `runWorker` from dist/worker.js (what `node dist/worker.js` runs), configured only by
 *   this process's environment: HEYGEN_MAX_RPS, the QueueGate, HEYGEN_RATE_GATE_FILE, the gateway.
 * - control and baseline: a plain Worker over the product's activities (see their workflow files).
 *
 * To count billable actions the benchmark needs every activity attempt, including attempts of a
 * polling window cancelled by checkNow (history keeps no attempt count for those), and to judge
 * Retry-After it needs each HeyGen request as sent. So the HeyGen fetch is wrapped: it notes the
 * calling activity's attempt, each request's times and status, and when a 429's body was read. For
 * the product the wrapper replaces the global fetch, which its HeyGen client calls; nothing else in
 * the product changes.
 */
import { activityInfo } from '@temporalio/activity';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { LogEntry } from '@temporalio/worker';
import type { ActivityDependencies, ConsentMailer, HeyGenApi } from '../../src/activities/index.js';
import { createActivities } from '../../src/activities/index.js';
import { emailDomain } from '../../src/config/worker-config.js';
import { createSmtpMailer } from '../../src/email/index.js';
import { HeyGenClient, RateGate } from '../../src/heygen/index.js';
import type * as WorkerConfigModule from '../../src/config/worker-config.js';
import type * as WorkerModule from '../../src/worker.js';
import { createBaselineActivities } from './baseline-activities.js';
import { parentMessageSchema } from './ipc.js';
import type { AttemptRecord, ChildMessage, LoopStart, RequestRecord, WorkerStart } from './ipc.js';

const MEMORY_SAMPLE_MS = 200;
/** What the product's QueueGate logs when it has closed the HeyGen queue for every worker. */
const QUEUE_CLOSED_MESSAGE = 'HeyGen task queue closed for every worker';

/** The host's monotonic clock in ms with fractions: the same in every process, never adjusted. */
const monotonicNow = (): number => Number(process.hrtime.bigint()) / 1e6;

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

function urlOf(input: Parameters<typeof fetch>[0]): string {
  if (typeof input === 'string') return input;
  return input instanceof URL ? input.href : input.url;
}

class Recorder {
  readonly attempts = new Map<string, AttemptRecord>();
  readonly requests: RequestRecord[] = [];
  readonly queueClosedAt: number[] = [];

  constructor(
    readonly enabled: boolean,
    private readonly heygenUrl: string,
  ) {}

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

  /** `original`, recording each HeyGen request (other URLs pass untouched). */
  wrap(original: typeof fetch): typeof fetch {
    return async (input, init) => {
      const url = urlOf(input);
      if (!this.enabled || !url.startsWith(this.heygenUrl)) return original(input, init);
      this.noteAttempt();
      const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
      const path = new URL(url).pathname;
      const sentAt = monotonicNow();
      let response: Response;
      try {
        response = await original(input, init);
      } catch (err) {
        this.requests.push([sentAt, monotonicNow(), null, 0, null, method, path]);
        throw err;
      }
      const record: RequestRecord = [
        sentAt,
        monotonicNow(),
        null,
        response.status,
        response.headers.get('retry-after'),
        method,
        path,
      ];
      this.requests.push(record);
      if (response.status !== 429 || response.body === null) return response;
      // The client closes its gate on a 429's headers; when its body was read is a later bound.
      const body = response.body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          flush: () => {
            record[2] = monotonicNow();
          },
        }),
      );
      return new Response(body, {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
      });
    };
  }
}

function loopDependencies(start: LoopStart, recorder: Recorder): ActivityDependencies & { close(): void } {
  const client = new HeyGenClient({
    baseUrl: start.heygenUrl,
    apiKey: start.heygenApiKey,
    timeoutMs: 15_000,
    // One gate per worker process, as src/worker.ts does.
    rateGate: new RateGate(),
    fetch: recorder.wrap((input, init) => fetch(input, init)),
  });
  // An attempt the rate gate keeps from being sent makes no request: note it here too.
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
  return { heygen, mailer, messageIdDomain: emailDomain(start.emailFrom), close: () => smtp.close() };
}

/** The control's and the baseline's worker: one plain Worker, until the parent says stop. */
async function runLoopWorker(start: LoopStart, recorder: Recorder): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const deps = loopDependencies(start, recorder);
  const connection = await NativeConnection.connect({ address: start.temporalAddress });
  const worker = await Worker.create({
    connection,
    namespace: start.namespace,
    taskQueue: start.taskQueue,
    workflowBundle: { codePath: start.bundlePath },
    activities: start.system === 'control' ? createActivities(deps) : createBaselineActivities(deps),
  });
  process.on('message', (raw) => {
    const message = parentMessageSchema.safeParse(raw);
    if (message.success && message.data.type === 'stop') worker.shutdown();
  });
  const running = worker.run();
  await send({ type: 'ready' });
  await running;
  deps.close();
  await connection.close();
}

/** The product's worker: dist/worker.js's runWorker, with this process's environment as its config. */
async function runProductWorker(recorder: Recorder): Promise<void> {
  const print = new DefaultLogger('WARN');
  // The product logs through the runtime: WARN and above go to the log file; the QueueGate's
  // closures (INFO) are noted for the Retry-After figures.
  Runtime.install({
    logger: new DefaultLogger('INFO', (entry: LogEntry) => {
      if (entry.message === QUEUE_CLOSED_MESSAGE) recorder.queueClosedAt.push(monotonicNow());
      if (entry.level === 'WARN' || entry.level === 'ERROR')
        print.log(entry.level, entry.message, entry.meta);
    }),
  });
  globalThis.fetch = recorder.wrap(globalThis.fetch.bind(globalThis));
  const dist = (file: string) => new URL(`../../dist/${file}`, import.meta.url).href;
  const { runWorker } = (await import(dist('worker.js'))) as typeof WorkerModule;
  const { loadWorkerConfig } = (await import(dist('config/worker-config.js'))) as typeof WorkerConfigModule;
  const config = loadWorkerConfig();
  // Stopped as a deployment stops it: SIGTERM, which the runtime turns into a graceful shutdown.
  process.on('message', (raw) => {
    const message = parentMessageSchema.safeParse(raw);
    if (message.success && message.data.type === 'stop') process.kill(process.pid, 'SIGTERM');
  });
  const running = runWorker(config, { installRuntime: false });
  await send({ type: 'ready' });
  await running;
}

async function run(start: WorkerStart): Promise<void> {
  const recorder = new Recorder(start.record, start.heygenUrl);
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    const { rss, heapUsed } = process.memoryUsage();
    peakRss = Math.max(peakRss, rss);
    void send({ type: 'memory', at: Date.now(), rss, heapUsed });
  }, MEMORY_SAMPLE_MS);
  if (start.system === 'product') await runProductWorker(recorder);
  else await runLoopWorker(start, recorder);
  clearInterval(sampler);
  await send({
    type: 'report',
    attempts: [...recorder.attempts.values()],
    requests: recorder.requests,
    queueClosedAt: recorder.queueClosedAt,
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
