/**
 * What a benchmark phase runs on: a Temporal dev server (the `temporal` CLI with the SQLite pragmas
 * of the SDK's own throughput-stress run), a worker for the callers' workflows in this process, and
 * the worker under test in a child process.
 */
import { fork, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { CONSENT_SEARCH_ATTRIBUTES } from '../../src/contract.js';
import { resolveTemporalExecutable, withServerStartHint } from '../kit/temporal-binaries.js';
import { childMessageSchema } from './ipc.js';
import { sleep } from './stats.js';
import type { AttemptRecord, RequestRecord, WorkerStart } from './ipc.js';

export const CALLER_TASK_QUEUE = 'bench-callers';
export const NAMESPACE = 'default';

/** As sdk-typescript's nightly throughput-stress job starts its dev server. */
export const DEV_SERVER_SQLITE_PRAGMAS = ['journal_mode=WAL', 'synchronous=OFF'];
/**
 * The server fires no timer (nor activity retry) sooner than now + this; its default, 1 s, turns
 * every scaled interval below a second (a 60 ms sleep, a 15 ms retry) into about a second.
 */
export const DEV_SERVER_DYNAMIC_CONFIG = ['history.timerProcessorMaxTimeShift="10ms"'];

/** The CLI's names of search attribute types. */
const cliAttributeType: Record<string, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

export function devServerArgs(port: number, dbFile: string): string[] {
  return [
    'server',
    'start-dev',
    '--headless',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--db-filename',
    dbFile,
    '--log-level',
    'error',
    ...DEV_SERVER_SQLITE_PRAGMAS.flatMap((pragma) => ['--sqlite-pragma', pragma]),
    ...DEV_SERVER_DYNAMIC_CONFIG.flatMap((value) => ['--dynamic-config-value', value]),
    ...CONSENT_SEARCH_ATTRIBUTES.flatMap((key) => [
      '--search-attribute',
      `${key.name}=${cliAttributeType[key.type]}`,
    ]),
  ];
}

export interface Stack {
  env: TestWorkflowEnvironment;
  /** The dev server's process ID when this benchmark started it itself (for its memory), else null. */
  serverPid: number | null;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts `temporal server start-dev` as a child with its output in a log file (stdout stays the
 * table's). Without a local CLI, falls back to the SDK's download through TestWorkflowEnvironment.
 */
async function startDevServer(
  dbFile: string,
  logFile: string,
): Promise<{ env: TestWorkflowEnvironment; pid: number | null; stop(): Promise<void> }> {
  const executable = resolveTemporalExecutable('dev-server');
  if (executable.type !== 'existing-path') {
    const env = await withServerStartHint('dev-server', executable, () =>
      TestWorkflowEnvironment.createLocal({
        server: {
          executable,
          ip: '127.0.0.1',
          dbFilename: dbFile,
          searchAttributes: [...CONSENT_SEARCH_ATTRIBUTES],
          log: { format: 'pretty', level: 'error' },
          extraArgs: [
            ...DEV_SERVER_SQLITE_PRAGMAS.flatMap((pragma) => ['--sqlite-pragma', pragma]),
            ...DEV_SERVER_DYNAMIC_CONFIG.flatMap((value) => ['--dynamic-config-value', value]),
          ],
        },
      }),
    );
    return { env, pid: null, stop: () => env.teardown() };
  }
  const port = await freePort();
  const log = openSync(logFile, 'a');
  const child = spawn(executable.path, devServerArgs(port, dbFile), { stdio: ['ignore', log, log] });
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = `127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const stopped = await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]);
    if (!stopped) child.kill('SIGKILL');
  };
  const until = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`temporal dev server exited at start; see ${logFile}`);
    try {
      const env = await TestWorkflowEnvironment.createFromExistingServer({ address, namespace: NAMESPACE });
      await env.connection.workflowService.getSystemInfo({});
      return {
        env,
        pid: child.pid ?? null,
        stop: async () => {
          await env.teardown();
          await stop();
        },
      };
    } catch (err) {
      if (Date.now() > until) {
        await stop();
        throw new Error(`temporal dev server did not answer within 60 s; see ${logFile}`, { cause: err });
      }
      await sleep(250);
    }
  }
}

export async function startStack(opts: {
  dbFile: string;
  logFile: string;
  callerBundlePath: string;
}): Promise<Stack> {
  const server = await startDevServer(opts.dbFile, opts.logFile);
  const { env } = server;
  const callerWorker = await Worker.create({
    connection: env.nativeConnection,
    namespace: NAMESPACE,
    taskQueue: CALLER_TASK_QUEUE,
    workflowBundle: { codePath: opts.callerBundlePath },
  });
  const callerRun = callerWorker.run();
  return {
    env,
    serverPid: server.pid,
    async close() {
      callerWorker.shutdown();
      await callerRun.catch(() => undefined);
      await server.stop();
    },
  };
}

export interface WorkerReport {
  attempts: AttemptRecord[];
  requests: RequestRecord[];
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

/** The kernel's peak RSS of a process (Linux), in bytes; 0 where /proc is not available. */
function highWaterMark(pid: number): number {
  try {
    const match = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * What-if for the worker's memory: a V8 heap limit for the worker process. The SDK sizes its
 * workflow cache from the heap limit (about 0.6 workflows per MiB above 200 MiB), so this also
 * bounds the cache. Unset (the default): the product's own defaults.
 */
let workerHeapLimitMb: number | null = null;
export function setWorkerHeapLimitMb(mb: number | null): void {
  workerHeapLimitMb = mb;
}

export async function startWorkerChild(start: WorkerStart, logFile: string): Promise<WorkerChild> {
  const script = fileURLToPath(new URL('./worker-process.ts', import.meta.url));
  const log = openSync(logFile, 'a');
  const execArgv = [
    '--import',
    'tsx',
    ...(workerHeapLimitMb ? [`--max-old-space-size=${workerHeapLimitMb}`] : []),
  ];
  const child = fork(script, [], { execArgv, stdio: ['ignore', log, log, 'ipc'] });
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
        report = { attempts: message.attempts, requests: message.requests, peakRss: message.peakRss };
        onReport?.();
        break;
      case 'failed':
        failure = message.message;
        break;
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  child.send(start);
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const outcome = await Promise.race([
    ready.then(() => 'ready' as const),
    exited.then(() => 'exited' as const),
    new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 120_000).unref()),
  ]);
  if (outcome !== 'ready') {
    child.kill('SIGKILL');
    throw new Error(`worker child did not start (${outcome}): ${failure ?? `see ${logFile}`}`);
  }
  const pid = child.pid ?? 0;

  return {
    pid,
    samples,
    async stop() {
      const hwm = highWaterMark(pid);
      const reported = new Promise<void>((resolve) => (onReport = resolve));
      child.send({ type: 'stop' });
      const done = await Promise.race([
        reported.then(() => 'reported' as const),
        exited.then(() => 'exited' as const),
        new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 120_000).unref()),
      ]);
      if (done !== 'reported' || !report) {
        child.kill('SIGKILL');
        throw new Error(`worker child did not report (${done}): ${failure ?? `see ${logFile}`}`);
      }
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
      if (child.exitCode === null) child.kill('SIGKILL');
      return { ...report, peakRss: Math.max(report.peakRss, hwm) };
    },
  };
}
