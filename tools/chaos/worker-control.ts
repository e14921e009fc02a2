/**
 * The two child processes a chaos run breaks: the Temporal dev server (stopped and restarted on the
 * same database file and port) and the worker (SIGKILLed and started again).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

import { Connection } from '@temporalio/client';

import { CONSENT_SEARCH_ATTRIBUTES } from '../../src/contract.js';
import { howToInstall, resolveTemporalExecutable } from '../kit/temporal-binaries.js';
import type { ProcessLife } from './retry-after.js';

/** Lines kept from a child's stderr, for the report when something goes wrong. */
const KEPT_LINES = 200;

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves when the process has exited (at once if it already has). */
export function exited(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => proc.once('exit', () => resolve()));
}

async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function keepTail(proc: ChildProcess, lines: string[]): void {
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (chunk: string) => {
    lines.push(...chunk.split('\n').filter((line) => line.trim() !== ''));
    if (lines.length > KEPT_LINES) lines.splice(0, lines.length - KEPT_LINES);
  });
}

// ---------------------------------------------------------------------------------------------
// Temporal dev server

export interface TemporalServerControl {
  readonly address: string;
  readonly dbFile: string;
  readonly running: boolean;
  /** Starts the server and waits until it answers. */
  start(): Promise<void>;
  /** SIGTERM, then waits for the exit (SIGKILL after `graceMs`). Returns whether it exited by itself. */
  stop(graceMs?: number): Promise<{ graceful: boolean; exitCode: number | null; signal: string | null }>;
  readonly stderrTail: string[];
  readonly processes: ChildProcess[];
}

export function temporalServer(opts: {
  dbFile: string;
  port: number;
  uiPort: number;
}): TemporalServerControl {
  const executable = resolveTemporalExecutable('dev-server');
  if (executable.type !== 'existing-path') {
    throw new Error(
      `The chaos run starts the temporal CLI itself and none was found. ${howToInstall('dev-server')}`,
    );
  }
  const address = `127.0.0.1:${opts.port}`;
  const stderrTail: string[] = [];
  const processes: ChildProcess[] = [];
  let current: ChildProcess | null = null;

  const args = [
    'server',
    'start-dev',
    '--headless',
    '--ip',
    '127.0.0.1',
    '--port',
    String(opts.port),
    '--ui-port',
    String(opts.uiPort),
    '--db-filename',
    opts.dbFile,
    '--log-level',
    'error',
    ...CONSENT_SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=Keyword`]),
  ];

  const answers = async (): Promise<boolean> => {
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ address, connectTimeout: 1_000 });
      await connection.workflowService.describeNamespace({ namespace: 'default' });
      return true;
    } catch {
      return false;
    } finally {
      await connection?.close().catch(() => undefined);
    }
  };

  return {
    address,
    dbFile: opts.dbFile,
    get running() {
      return current !== null && current.exitCode === null && current.signalCode === null;
    },
    stderrTail,
    processes,
    async start() {
      if (current && current.exitCode === null && current.signalCode === null) return;
      const proc = spawn(executable.path, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      processes.push(proc);
      keepTail(proc, stderrTail);
      current = proc;
      const until = Date.now() + 90_000;
      while (!(await answers())) {
        if (proc.exitCode !== null || proc.signalCode !== null) {
          throw new Error(`temporal dev server exited at start: ${stderrTail.slice(-5).join(' | ')}`);
        }
        if (Date.now() > until) throw new Error('temporal dev server did not answer within 90 s');
        await delay(200);
      }
    },
    async stop(graceMs = 30_000) {
      const proc = current;
      if (!proc) return { graceful: true, exitCode: 0, signal: null };
      current = null;
      proc.kill('SIGTERM');
      let graceful = true;
      try {
        await within(graceMs, 'temporal dev server to stop', exited(proc));
      } catch {
        graceful = false;
        proc.kill('SIGKILL');
        await exited(proc);
      }
      return { graceful, exitCode: proc.exitCode, signal: proc.signalCode };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Worker

/** The caller's environment without settings that would change the worker (Temporal profile, encryption, gateway, metrics, HeyGen). */
function inheritedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) =>
        !/^(AVATAR_CONSENT_|GATEWAY_|PUBLIC_BASE_URL$|METRICS_|HEYGEN_|SMTP_|EMAIL_FROM$|LOG_LEVEL$)/.test(
          key,
        ),
    ),
  );
}

export interface WorkerControl {
  readonly current: ChildProcess | null;
  readonly lives: ProcessLife[];
  /** Exits we did not cause (crash, or a graceful stop nobody asked for). */
  readonly unexpectedExits: Array<{
    pid: number;
    at: number;
    code: number | null;
    signal: string | null;
    /** How long it had run, ms. */
    livedMs: number;
    /** Its last stderr line (the reason it gave). */
    lastLine: string;
  }>;
  readonly stderrTail: string[];
  start(): ChildProcess;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM (graceful drain) and wait; SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  readonly processes: ChildProcess[];
}

export function workerProcess(opts: {
  cwd: string;
  entry: string;
  /** Runs `entry` with the probe installed (tools/chaos/probed-worker.ts). */
  probedEntry: string;
  env: Record<string, string>;
  /** Starts a replacement when the worker exits on its own (after recording it). */
  restartOnUnexpectedExit: boolean;
  onEvent: (text: string) => void;
}): WorkerControl {
  const lives: ProcessLife[] = [];
  const unexpectedExits: WorkerControl['unexpectedExits'] = [];
  const stderrTail: string[] = [];
  const processes: ChildProcess[] = [];
  const expected = new Set<ChildProcess>();
  let current: ChildProcess | null = null;
  let shuttingDown = false;

  const start = (): ChildProcess => {
    const proc = spawn(process.execPath, ['--import', 'tsx', opts.probedEntry, opts.entry], {
      cwd: opts.cwd,
      env: { ...inheritedEnv(), ...opts.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    processes.push(proc);
    keepTail(proc, stderrTail);
    const ownLines: string[] = [];
    keepTail(proc, ownLines);
    const life: ProcessLife = { pid: proc.pid ?? -1, startedAt: Date.now(), endedAt: null };
    lives.push(life);
    current = proc;
    proc.once('exit', (code, signal) => {
      life.endedAt = Date.now();
      if (current === proc) current = null;
      if (expected.has(proc) || shuttingDown) return;
      unexpectedExits.push({
        pid: life.pid,
        at: life.endedAt,
        code,
        signal,
        livedMs: life.endedAt - life.startedAt,
        lastLine: ownLines.at(-1) ?? '',
      });
      opts.onEvent(`worker pid ${life.pid} exited on its own (code ${code}, signal ${signal})`);
      // A worker that cannot start at all would be restarted forever: give up after a few.
      if (opts.restartOnUnexpectedExit && unexpectedExits.length <= 5) {
        setTimeout(() => {
          if (!shuttingDown && current === null) {
            const next = start();
            opts.onEvent(`worker restarted after unexpected exit: pid ${next.pid}`);
          }
        }, 1_000);
      }
    });
    return proc;
  };

  const endWith = async (signal: NodeJS.Signals, graceMs: number): Promise<void> => {
    const proc = current;
    if (!proc) return;
    expected.add(proc);
    current = null;
    proc.kill(signal);
    try {
      await within(graceMs, 'worker to exit', exited(proc));
    } catch {
      proc.kill('SIGKILL');
      await exited(proc);
    }
  };

  return {
    get current() {
      return current;
    },
    lives,
    unexpectedExits,
    stderrTail,
    processes,
    start,
    kill: () => endWith('SIGKILL', 10_000),
    stop: async (graceMs = 30_000) => {
      shuttingDown = true;
      await endWith('SIGTERM', graceMs);
    },
  };
}
