/**
 * The product's worker as a deployment runs it: the built `dist/worker.js` (with the workflow bundle
 * `npm run build` wrote beside it), configured only through its environment, and its memory as the
 * kernel counts it (/proc/<pid>/status).
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { heygenTaskQueueFor } from '../../src/contract/index.js';
import { endProcess, exited } from '../kit/child-process.js';
import { eventually } from '../kit/eventually.js';
import { DEV_SERVER_NAMESPACE as NAMESPACE } from '../kit/temporal-server.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const DIST_WORKER = join(REPO, 'dist', 'worker.js');
const BUILT = [DIST_WORKER, join(REPO, 'dist', 'workflow-bundle.js')];
const TaskQueueType = proto.temporal.api.enums.v1.TaskQueueType;

function newestUnder(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestUnder(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Why dist/ cannot be run as it is (missing, or older than a file in src/); null when it is current. */
export function staleBuild(): string | null {
  const missing = BUILT.filter((file) => !existsSync(file));
  if (missing.length > 0) return `${missing.map((f) => f.slice(REPO.length)).join(' and ')} missing`;
  const built = Math.min(...BUILT.map((file) => statSync(file).mtimeMs));
  return newestUnder(join(REPO, 'src')) > built ? 'dist/ is older than src/' : null;
}

/**
 * Makes sure dist/ is built from the current src/: the benchmark measures the worker a deployment
 * runs. Under `npm run bench` it runs `npm run build` itself when needed (npm names itself in
 * npm_execpath); started any other way it stops with what to run.
 */
export function ensureBuilt(progress: (line: string) => void): void {
  const why = staleBuild();
  if (why === null) return;
  const npm = process.env.npm_execpath;
  if (!npm) {
    throw new Error(`${why}: run \`npm run build\` first (\`npm run bench\` does it by itself)`);
  }
  progress(`${why}: running npm run build`);
  const built = spawnSync(process.execPath, [npm, 'run', 'build'], { cwd: REPO, encoding: 'utf8' });
  if (built.status !== 0) {
    const output = `${built.stdout}\n${built.stderr}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`npm run build failed (exit ${built.status}); the benchmark needs dist/:\n${output}`);
  }
}

/** What a deployment sets for one worker (docs/deploy.md); the benchmark's values. */
export interface ProductionEnvOptions {
  temporalAddress: string;
  taskQueue: string;
  heygenUrl: string;
  heygenApiKey: string;
  smtpUrl: string;
  emailFrom: string;
  /** The consent-return gateway (PUBLIC_BASE_URL, GATEWAY_SECRET); null: no return links. */
  gateway: { url: string; secretText: string } | null;
  heygenMaxRps: number;
  queueGate: boolean;
  /** HEYGEN_RATE_GATE_FILE; null: memory only. */
  gateFile: string | null;
  /** What-if: more variables (NODE_OPTIONS, MALLOC_ARENA_MAX, WORKER_*...); none as the product ships. */
  extra?: Record<string, string>;
}

export function productionEnv(o: ProductionEnvOptions): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    TEMPORAL_ADDRESS: o.temporalAddress,
    TEMPORAL_NAMESPACE: NAMESPACE,
    TEMPORAL_TASK_QUEUE: o.taskQueue,
    HEYGEN_BASE_URL: o.heygenUrl,
    HEYGEN_API_KEY: o.heygenApiKey,
    HEYGEN_MAX_RPS: String(o.heygenMaxRps),
    HEYGEN_QUEUE_GATE: String(o.queueGate),
    ...(o.gateFile ? { HEYGEN_RATE_GATE_FILE: o.gateFile } : {}),
    SMTP_URL: o.smtpUrl,
    EMAIL_FROM: o.emailFrom,
    ...(o.gateway ? { PUBLIC_BASE_URL: o.gateway.url, GATEWAY_SECRET: o.gateway.secretText } : {}),
    LOG_LEVEL: 'WARN',
    ...o.extra,
  };
}

/** A process's memory as the kernel counts it (/proc/<pid>/status), bytes, and its threads. */
export interface ProcMemory {
  /** VmRSS: resident now. */
  rss: number;
  /** VmHWM: the peak of VmRSS so far. */
  hwm: number;
  /** VmRSS in parts: RssAnon (heaps, stacks), RssFile (code, mapped files), RssShmem (shared memory). */
  anon: number;
  file: number;
  shmem: number;
  threads: number;
}

/** Null once the process is gone (or without /proc). */
export function procMemory(pid: number): ProcMemory | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return {
      rss: field('VmRSS') * 1024,
      hwm: field('VmHWM') * 1024,
      anon: field('RssAnon') * 1024,
      file: field('RssFile') * 1024,
      shmem: field('RssShmem') * 1024,
      threads: field('Threads'),
    };
  } catch {
    return null;
  }
}

/**
 * Waits until a worker polls both of the product's task queues (the workflow queue and the HeyGen
 * activity queue), as a deployment's readiness check would; fails at once when `died` aborts.
 */
export async function waitForPollers(
  client: Client,
  taskQueue: string,
  opts: { workers?: number; died?: AbortSignal } = {},
): Promise<void> {
  const polling = async (name: string, type: number) =>
    (
      await client.workflowService.describeTaskQueue({
        namespace: NAMESPACE,
        taskQueue: { name },
        taskQueueType: type,
      })
    ).pollers?.length ?? 0;
  const wanted = opts.workers ?? 1;
  await eventually(
    `${wanted} worker(s) polling ${taskQueue} and its HeyGen queue`,
    async () =>
      (await polling(taskQueue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)) >= wanted &&
      (await polling(heygenTaskQueueFor(taskQueue), TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)) >= wanted,
    { timeoutMs: 120_000, intervalMs: 250, ...(opts.died ? { signal: opts.died } : {}) },
  );
}

export interface ProductionWorker {
  pid: number;
  /** [epoch ms, VmRSS bytes], once a second. */
  readonly samples: Array<[number, number]>;
  /** The kernel's figures now. */
  memory(): ProcMemory | null;
  /** Stops it as a deployment does (SIGTERM: the worker drains), and returns its peak RSS (VmHWM). */
  stop(): Promise<{ peakRss: number; graceful: boolean }>;
}

/** `node dist/worker.js` with `env` and nothing else; resolves once it polls its task queues. */
export async function startProductionWorker(opts: {
  env: Record<string, string>;
  client: Client;
  logFile: string;
}): Promise<ProductionWorker> {
  const log = openSync(opts.logFile, 'a');
  const child = spawn(process.execPath, [DIST_WORKER], {
    cwd: REPO,
    env: opts.env,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const died = new AbortController();
  void exited(child).then(({ code, signal }) =>
    died.abort(new Error(`the worker exited (code ${code}, signal ${signal}); see ${opts.logFile}`)),
  );
  const pid = child.pid ?? 0;
  const samples: Array<[number, number]> = [];
  let peak = 0;
  const sample = () => {
    const memory = procMemory(pid);
    if (!memory) return;
    peak = Math.max(peak, memory.hwm);
    samples.push([Date.now(), memory.rss]);
  };
  const sampler = setInterval(sample, 1_000);
  try {
    await waitForPollers(opts.client, opts.env.TEMPORAL_TASK_QUEUE ?? '', { died: died.signal });
  } catch (error) {
    clearInterval(sampler);
    await endProcess(child, { signal: 'SIGKILL' });
    throw error;
  }
  sample();
  return {
    pid,
    samples,
    memory: () => procMemory(pid),
    async stop() {
      sample();
      clearInterval(sampler);
      const exit = await endProcess(child, { graceMs: 60_000 });
      return { peakRss: peak, graceful: exit.graceful };
    },
  };
}
