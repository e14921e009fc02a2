/**
 * The worker: builds the HeyGen client and the mailer from config, wires them into the activities,
 * and runs the consent workflow's task queue until SIGINT/SIGTERM, then drains and exits.
 */
import { existsSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { NativeConnection, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import type { DataConverter, LogLevel, LogMetadata, Logger } from '@temporalio/common';
import type { WorkerOptions } from '@temporalio/worker';
import { createActivities, createHeyGenActivities } from './activities/index.js';
import { dataConverterFor } from './codec/index.js';
import { heygenTaskQueueFor } from './contract/index.js';
import type { ActivityDependencies, ConsentActivities } from './activities/index.js';
import {
  DEFAULT_WORKER_TUNING,
  emailDomain,
  loadWorkerConfig,
  redactConfig,
  secretsOf,
} from './config/worker-config.js';
import type { WorkerConfig, WorkerTuning } from './config/worker-config.js';
import { createSmtpMailer } from './email/index.js';
import { createAvatarConsentNexusHandler } from './nexus/index.js';
import { HeyGenClient, RateGate } from './heygen/index.js';
import { createJsonLogger } from './logging.js';
import { QueueGate } from './queue-gate.js';
import { isLocalHostname } from './rules/input.js';

/** The workflow entry point, next to this file: `.ts` under tsx and tests, `.js` once built. */
export const workflowsPath = fileURLToPath(
  new URL(`./workflows/index${extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);

export interface ConsentWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  dependencies: ActivityDependencies;
  /** Tests pass a pre-built bundle so each file bundles workflow code once. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** The payload codec (encryption); every client of the project must use the same one. */
  dataConverter?: DataConverter;
  /** Cap on HeyGen activity attempts per second for the whole HeyGen task queue (all workers). */
  heygenMaxRps?: number | undefined;
  /** Cache and concurrency (WORKER_* variables); the defaults keep a worker's memory flat. */
  tuning?: Partial<WorkerTuning>;
  /** Tests and tools only: change an activity of the workflow's queue (e.g. a slow input check). */
  wrapActivities?: (activities: ConsentActivities) => ConsentActivities;
}

/**
 * Production runs the workflow bundle that `npm run build` wrote beside this file: no webpack at
 * start-up, and the same code on every worker. Under tsx (dev) and in tests there is none, and the
 * worker bundles src/workflows when it starts.
 */
export const prebuiltWorkflowBundle = fileURLToPath(new URL('./workflow-bundle.js', import.meta.url));

/**
 * The worker of one process: two Temporal workers sharing a connection. The first runs the
 * workflows and the email activity on the task queue; the second runs the HeyGen activities on
 * `<taskQueue>-heygen`, where `maxTaskQueueActivitiesPerSecond` (HEYGEN_MAX_RPS) caps HeyGen
 * requests across every worker process. The first also serves the HeyGen activities, for activities
 * scheduled there before the HeyGen queue existed.
 */
/**
 * Without a pre-built bundle (tsx, dev), bundles src/workflows now. Webpack's stats go to debug level:
 * at info they would be one large message at every start.
 */
async function bundleAtStart(): Promise<WorkerOptions['workflowBundle']> {
  const logger = Runtime.instance().logger;
  const quiet: Logger = {
    log(level: LogLevel, message: string, meta?: LogMetadata) {
      logger.log(level === 'INFO' ? 'DEBUG' : level, message, meta);
    },
    trace(message: string, meta?: LogMetadata) {
      logger.trace(message, meta);
    },
    debug(message: string, meta?: LogMetadata) {
      logger.debug(message, meta);
    },
    info(message: string, meta?: LogMetadata) {
      logger.debug(message, meta);
    },
    warn(message: string, meta?: LogMetadata) {
      logger.warn(message, meta);
    },
    error(message: string, meta?: LogMetadata) {
      logger.error(message, meta);
    },
  };
  return bundleWorkflowCode({ workflowsPath, logger: quiet });
}

export class ConsentWorker {
  private constructor(readonly workers: readonly [Worker, Worker]) {}

  static async create(options: ConsentWorkerOptions): Promise<ConsentWorker> {
    const created = createActivities(options.dependencies);
    const activities = options.wrapActivities ? options.wrapActivities(created) : created;
    const shared = {
      connection: options.connection,
      namespace: options.namespace,
      ...(options.dataConverter ? { dataConverter: options.dataConverter } : {}),
    };
    const tuning = { ...DEFAULT_WORKER_TUNING, ...options.tuning };
    const workflowBundle =
      options.workflowBundle ??
      (existsSync(prebuiltWorkflowBundle) ? { codePath: prebuiltWorkflowBundle } : await bundleAtStart());
    const main = await Worker.create({
      ...shared,
      taskQueue: options.taskQueue,
      workflowBundle,
      activities,
      // The consent as a Nexus operation (src/nexus), for callers in other namespaces.
      nexusServices: [createAvatarConsentNexusHandler()],
      maxCachedWorkflows: tuning.maxCachedWorkflows,
      maxConcurrentWorkflowTaskExecutions: tuning.maxConcurrentWorkflowTasks,
      maxConcurrentActivityTaskExecutions: tuning.maxConcurrentActivities,
    });
    const heygen = await Worker.create({
      ...shared,
      taskQueue: heygenTaskQueueFor(options.taskQueue),
      activities: createHeyGenActivities(options.dependencies),
      maxConcurrentActivityTaskExecutions: tuning.maxConcurrentActivities,
      ...(options.heygenMaxRps ? { maxTaskQueueActivitiesPerSecond: options.heygenMaxRps } : {}),
    });
    return new ConsentWorker([main, heygen]);
  }

  /** Runs until shut down (SIGINT/SIGTERM through the Runtime, or shutdown()). */
  async run(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.run()));
  }

  /** Runs while `fn` runs, then shuts down; for tests and scripts. */
  async runUntil<T>(fn: Promise<T> | (() => Promise<T>)): Promise<T> {
    const [main, heygen] = this.workers;
    return main.runUntil(() => heygen.runUntil(fn));
  }

  shutdown(): void {
    for (const worker of this.workers) worker.shutdown();
  }
}

export async function createConsentWorker(options: ConsentWorkerOptions): Promise<ConsentWorker> {
  return ConsentWorker.create(options);
}

/** `onRateLimited` hears every 429 (with its Retry-After), to close the gate that all hosts share. */
export function dependenciesFromConfig(config: WorkerConfig, onRateLimited?: (retryAfterMs: number) => void) {
  const heygen = new HeyGenClient({
    baseUrl: config.HEYGEN_BASE_URL,
    apiKey: config.HEYGEN_API_KEY,
    timeoutMs: config.HEYGEN_TIMEOUT_MS,
    // One gate per worker process: after a 429, no HeyGen call from this worker goes out until
    // Retry-After; with HEYGEN_RATE_GATE_FILE it also holds across a restart.
    rateGate: new RateGate(
      config.HEYGEN_RATE_GATE_FILE
        ? {
            persistPath: config.HEYGEN_RATE_GATE_FILE,
            onPersistError: (err) => {
              Runtime.instance().logger.warn('rate gate file', { error: err.message });
            },
          }
        : {},
    ),
    ...(onRateLimited ? { onRateLimited } : {}),
  });
  const mailer = createSmtpMailer({ smtpUrl: config.SMTP_URL, from: config.EMAIL_FROM });
  return {
    heygen,
    mailer,
    messageIdDomain: emailDomain(config.EMAIL_FROM),
    returnLinks: config.returnLinks,
    rerouteRules: {
      allowLocalHttp: config.REROUTE_URL_ALLOW_LOCAL_HTTP,
      allowedHosts: config.REROUTE_URL_ALLOWED_HOSTS ?? null,
    },
  };
}

/**
 * Installs the process-wide Temporal runtime: JSON logs, and Prometheus metrics when METRICS_PORT is
 * set. Its default shutdown signals (SIGINT, SIGTERM...) stop the worker gracefully.
 */
export function installRuntime(config: WorkerConfig): void {
  const logger = createJsonLogger(config.LOG_LEVEL, secretsOf(config), undefined, {
    taskTokens: config.LOG_TASK_TOKENS,
  });
  Runtime.install({
    logger,
    ...(config.METRICS_PORT
      ? {
          telemetryOptions: {
            metrics: { prometheus: { bindAddress: `${config.METRICS_HOST}:${config.METRICS_PORT}` } },
          },
        }
      : {}),
  });
  logger.info('avatar-consent worker configured', { config: redactConfig(config) });
  if (!config.codecKeyring) {
    // Normal on a local stack (the sandbox); a warning anywhere HeyGen is real.
    const local = isLocalHostname(new URL(config.HEYGEN_BASE_URL).hostname);
    logger.log(
      local ? 'INFO' : 'WARN',
      'payload encryption is off: addresses and consent links are stored in clear in Temporal',
      {
        fix: 'set AVATAR_CONSENT_CODEC_KEYS (npm run codec-server -- --generate-key)',
      },
    );
  }
}

/**
 * Connects to Temporal, retrying for a while: a worker started together with its server (compose,
 * a restart after an outage) must not exit just because the server is not up yet.
 */
async function connectWithRetry(config: WorkerConfig, attempts = 30): Promise<NativeConnection> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await NativeConnection.connect(config.temporal.connectionOptions);
    } catch (err) {
      if (attempt >= attempts) throw err;
      const delayMs = Math.min(10_000, 500 * 2 ** (attempt - 1));
      Runtime.instance().logger.warn('Temporal not reachable yet; retrying', {
        address: config.temporal.connectionOptions.address,
        attempt,
        retryInMs: delayMs,
        error: err instanceof Error ? err.message : String(err),
      });
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

export async function runWorker(
  config: WorkerConfig,
  options: { installRuntime?: boolean } = {},
): Promise<void> {
  if (options.installRuntime !== false) installRuntime(config);
  let queueGate: QueueGate | null = null;
  const deps = dependenciesFromConfig(config, (retryAfterMs) => void queueGate?.close(retryAfterMs));
  const connection = await connectWithRetry(config);
  if (config.HEYGEN_QUEUE_GATE) {
    queueGate = new QueueGate({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: heygenTaskQueueFor(config.TEMPORAL_TASK_QUEUE),
      log: Runtime.instance().logger,
    });
    queueGate.start();
  }
  try {
    const worker = await createConsentWorker({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      dependencies: deps,
      dataConverter: dataConverterFor(config.codecKeyring, {
        refuse: config.AVATAR_CONSENT_REQUIRE_ENCRYPTION,
        acceptUntilMs: config.AVATAR_CONSENT_ACCEPT_PLAINTEXT_UNTIL,
        onAccepted: () => {
          Runtime.instance().logger.warn('a plaintext payload was accepted in the migration window', {
            until: new Date(config.AVATAR_CONSENT_ACCEPT_PLAINTEXT_UNTIL ?? 0).toISOString(),
          });
        },
      }),
      heygenMaxRps: config.HEYGEN_MAX_RPS,
      tuning: {
        maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS,
        maxConcurrentWorkflowTasks: config.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
        maxConcurrentActivities: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
      },
    });
    await worker.run();
  } finally {
    queueGate?.stop();
    deps.mailer.close();
    await connection.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let config: WorkerConfig;
  try {
    config = loadWorkerConfig();
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(2);
  }
  runWorker(config).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error('worker failed:', err instanceof Error ? err.message : String(err));
      process.exit(1);
    },
  );
}
