/**
 * The worker process a chaos run breaks: SIGKILLed at random and started again, with the probe that
 * tags its HeyGen requests installed (probed-worker.ts). The Temporal dev server is the kit's.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

import { endProcess, keepLines } from '../kit/child-process.js';
import type { ProcessLife } from './retry-after.js';

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
    // The run's tail of every worker, and this process's own last words.
    keepLines(proc.stderr, stderrTail);
    const ownLines: string[] = [];
    keepLines(proc.stderr, ownLines);
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
    await endProcess(proc, { signal, graceMs });
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
