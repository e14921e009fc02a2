/**
 * What a benchmark phase runs on: a Temporal dev server (the kit's launcher, with the SQLite pragmas
 * of the SDK's own throughput-stress run), a worker for the callers' workflows in this process, and
 * the worker under test in a child process.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { GatewaySecrets, startGateway } from '../../src/gateway/index.js';
import type { Gateway, GatewayLogger } from '../../src/gateway/index.js';
import { checkNowSender } from '../../src/gateway/main.js';
import { exited, within } from '../kit/child-process.js';
import { DEV_SERVER_NAMESPACE } from '../kit/temporal-server.js';
import { createDevServerEnv } from '../kit/temporal-test-env.js';
import type { DevServerEnv } from '../kit/temporal-test-env.js';
import { childMessageSchema } from './ipc.js';
import { procMemory } from './production-worker.js';
import type { AttemptRecord, RequestRecord, WorkerStart } from './ipc.js';

export const CALLER_TASK_QUEUE = 'bench-callers';
export const NAMESPACE = DEV_SERVER_NAMESPACE;

/** As sdk-typescript's nightly throughput-stress job starts its dev server. */
export const DEV_SERVER_SQLITE_PRAGMAS = ['journal_mode=WAL', 'synchronous=OFF'];
/**
 * The server fires no timer (nor activity retry) sooner than now + this; its default, 1 s, turns
 * every scaled interval below a second (a 60 ms sleep, a 15 ms retry) into about a second.
 */
export const DEV_SERVER_DYNAMIC_CONFIG = ['history.timerProcessorMaxTimeShift="10ms"'];

export interface Stack {
  env: DevServerEnv;
  /** The dev server's process ID (for its CPU time). */
  serverPid: number | null;
  close(): Promise<void>;
}

/** A fresh dev server on its own database file (its output in `logFile`: stdout stays the table's). */
export async function startStack(opts: {
  dbFile: string;
  logFile: string;
  callerBundlePath: string;
}): Promise<Stack> {
  const env = await createDevServerEnv({
    dbFile: opts.dbFile,
    logFile: opts.logFile,
    sqlitePragmas: DEV_SERVER_SQLITE_PRAGMAS,
    dynamicConfig: DEV_SERVER_DYNAMIC_CONFIG,
  });
  const callerWorker = await Worker.create({
    connection: env.nativeConnection,
    namespace: NAMESPACE,
    taskQueue: CALLER_TASK_QUEUE,
    workflowBundle: { codePath: opts.callerBundlePath },
  });
  const callerRun = callerWorker.run();
  return {
    env,
    serverPid: env.devServer.pid,
    async close() {
      callerWorker.shutdown();
      await callerRun.catch(() => undefined);
      await env.teardown();
    },
  };
}

export interface WorkerReport {
  pid: number;
  attempts: AttemptRecord[];
  requests: RequestRecord[];
  /** When this process closed the shared HeyGen queue (monotonic clock, as the requests). */
  queueClosedAt: number[];
  /** Highest RSS seen: the child's own samples and the kernel's high-water mark (VmHWM). */
  peakRss: number;
}

export interface WorkerChild {
  pid: number;
  /** [epoch ms, rss bytes, V8 heap used bytes] every 200 ms. */
  readonly samples: Array<[number, number, number]>;
  stop(): Promise<WorkerReport>;
}

/** CPU time (user + system) a process has used so far, in seconds (Linux); NaN where /proc is not available. */
export function cpuSecondsOf(pid: number | null): number {
  if (pid === null) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return ticks / 100;
  } catch {
    return Number.NaN;
  }
}

/** CPU time all processes of the machine have used so far (busy, not idle or iowait), in seconds (Linux). */
export function machineBusyCpuSeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    // cpu user nice system idle iowait irq softirq steal ...
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / 100;
  } catch {
    return Number.NaN;
  }
}

/**
 * The consent-return gateway, in this process, with a fresh secret (the workers get it as
 * GATEWAY_SECRET). Every person of the benchmark comes from 127.0.0.1, so the per-client limit is
 * off (it would refuse most redirects); `counts` tallies its log lines by message.
 */
export async function startBenchGateway(
  client: Client,
  counts: Record<string, number>,
): Promise<{ gateway: Gateway; secretText: string }> {
  const secretText = `hex:${randomBytes(32).toString('hex')}`;
  const note = (message: string) => {
    counts[message] = (counts[message] ?? 0) + 1;
  };
  const logger: GatewayLogger = { info: note, warn: note, error: note };
  const gateway = await startGateway({
    host: '127.0.0.1',
    port: 0,
    secrets: GatewaySecrets.fromTexts([secretText]),
    signal: checkNowSender(client),
    logger,
    rateLimit: { perMinute: 0, burst: 0 },
  });
  return { gateway, secretText };
}

export async function startWorkerChild(
  start: WorkerStart,
  logFile: string,
  /** The product's configuration (productionEnv); the loops get theirs in `start`. */
  env?: Record<string, string>,
): Promise<WorkerChild> {
  const script = fileURLToPath(new URL('./worker-process.ts', import.meta.url));
  const log = openSync(logFile, 'a');
  const child = fork(script, [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', log, log, 'ipc'],
    ...(env ? { env } : {}),
  });
  closeSync(log);
  const samples: Array<[number, number, number]> = [];
  let report: WorkerReport | undefined;
  let failure: string | undefined;
  let onReady: (() => void) | undefined;
  let onReport: (() => void) | undefined;

  child.on('message', (raw) => {
    const parsed = childMessageSchema.safeParse(raw);
    if (!parsed.success) return;
    const message = parsed.data;
    switch (message.type) {
      case 'ready':
        onReady?.();
        break;
      case 'memory':
        samples.push([message.at, message.rss, message.heapUsed]);
        break;
      case 'report':
        report = {
          pid: child.pid ?? 0,
          attempts: message.attempts,
          requests: message.requests,
          queueClosedAt: message.queueClosedAt,
          peakRss: message.peakRss,
        };
        onReport?.();
        break;
      case 'failed':
        failure = message.message;
        break;
    }
  });
  const gone = exited(child).then(() => {
    throw new Error('it exited');
  });
  // Awaited in a race below; an exit meanwhile must not count as unhandled.
  void gone.catch(() => undefined);

  /** Waits for the child's message; a child that exits or stays silent is killed, with its reason. */
  const expect = async (what: string, message: Promise<void>): Promise<void> => {
    try {
      await within(120_000, `the worker child to ${what}`, Promise.race([message, gone]));
    } catch (err) {
      child.kill('SIGKILL');
      throw new Error(`worker child did not ${what} (${errorText(err)}): ${failure ?? `see ${logFile}`}`, {
        cause: err,
      });
    }
  };

  child.send(start);
  await expect('start', new Promise<void>((resolve) => (onReady = resolve)));
  const pid = child.pid ?? 0;

  return {
    pid,
    samples,
    async stop() {
      const hwm = procMemory(pid)?.hwm ?? 0;
      const reported = new Promise<void>((resolve) => (onReport = resolve));
      child.send({ type: 'stop' });
      await expect('report', reported);
      // It exits by itself once it has reported.
      await within(10_000, 'the worker child to exit', exited(child)).catch(() => child.kill('SIGKILL'));
      return { ...report!, peakRss: Math.max(report!.peakRss, hwm) };
    },
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
