/**
 * The worker processes a chaos run breaks: a pool of slots on the same task queues, each a worker
 * process with the probe that tags its HeyGen requests (probed-worker.ts). One is SIGKILLed at a
 * time and its slot started again a little later, while the others go on.
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
        !/^(AVATAR_CONSENT_|GATEWAY_|PUBLIC_BASE_URL$|METRICS_|HEYGEN_|SMTP_|EMAIL_FROM$|LOG_LEVEL$|WORKER_)/.test(
          key,
        ),
    ),
  );
}

/** Lines kept of all workers' stderr together, for the scan for personal data in logs. */
const MAX_LOG_LINES = 200_000;

export interface UnexpectedExit {
  pid: number;
  slot: number;
  at: number;
  code: number | null;
  signal: string | null;
  /** How long it had run, ms. */
  livedMs: number;
  /** Its last stderr line (the reason it gave). */
  lastLine: string;
}

export interface WorkerPool {
  readonly size: number;
  /** Each slot's running process, or null while it is down. */
  readonly current: ReadonlyArray<ChildProcess | null>;
  /** Slots with a running process. */
  liveSlots(): number[];
  /** The slot whose running process has this pid, or null. */
  slotOf(pid: number): number | null;
  readonly lives: ProcessLife[];
  /** Exits we did not cause (crash, or a graceful stop nobody asked for). */
  readonly unexpectedExits: UnexpectedExit[];
  /** The last stderr lines of all workers (for a failed run's report). */
  readonly stderrTail: string[];
  /** Every stderr line of every worker (up to MAX_LOG_LINES), for the personal-data scan. */
  readonly stderrAll: string[];
  /** Starts a process in `slot` (every slot when omitted). */
  start(slot?: number): ChildProcess[];
  /** SIGKILL the slot's process and wait for the exit. */
  kill(slot: number): Promise<ProcessLife | null>;
  /** SIGTERM (graceful drain) every process and wait; SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  readonly processes: ChildProcess[];
}

export function workerPool(opts: {
  size: number;
  cwd: string;
  entry: string;
  /** Runs `entry` with the probe installed (tools/chaos/probed-worker.ts). */
  probedEntry: string;
  env: Record<string, string>;
  /** Starts a replacement when a worker exits on its own (after recording it). */
  restartOnUnexpectedExit: boolean;
  onEvent: (text: string) => void;
}): WorkerPool {
  const lives: ProcessLife[] = [];
  const unexpectedExits: UnexpectedExit[] = [];
  const stderrTail: string[] = [];
  const stderrAll: string[] = [];
  const processes: ChildProcess[] = [];
  const expected = new Set<ChildProcess>();
  const current: Array<ChildProcess | null> = Array.from({ length: opts.size }, () => null);
  let shuttingDown = false;

  const startSlot = (slot: number): ChildProcess => {
    const running = current[slot];
    if (running) return running;
    const proc = spawn(process.execPath, ['--import', 'tsx', opts.probedEntry, opts.entry], {
      cwd: opts.cwd,
      env: { ...inheritedEnv(), ...opts.env, CHAOS_WORKER_SLOT: String(slot) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    processes.push(proc);
    // The run's tail of every worker, all their lines for the scan, and this process's own last words.
    keepLines(proc.stderr, stderrTail);
    keepLines(proc.stderr, stderrAll, MAX_LOG_LINES);
    const ownLines: string[] = [];
    keepLines(proc.stderr, ownLines);
    const life: ProcessLife = { pid: proc.pid ?? -1, startedAt: Date.now(), endedAt: null };
    lives.push(life);
    current[slot] = proc;
    proc.once('exit', (code, signal) => {
      life.endedAt = Date.now();
      if (current[slot] === proc) current[slot] = null;
      if (expected.has(proc) || shuttingDown) return;
      unexpectedExits.push({
        pid: life.pid,
        slot,
        at: life.endedAt,
        code,
        signal,
        livedMs: life.endedAt - life.startedAt,
        lastLine: ownLines.at(-1) ?? '',
      });
      opts.onEvent(`worker ${slot} (pid ${life.pid}) exited on its own (code ${code}, signal ${signal})`);
      // A worker that cannot start at all would be restarted forever: give up after a few.
      if (opts.restartOnUnexpectedExit && unexpectedExits.length <= 5 * opts.size) {
        setTimeout(() => {
          if (!shuttingDown && current[slot] === null) {
            const next = startSlot(slot);
            opts.onEvent(`worker ${slot} restarted after an unexpected exit: pid ${next.pid}`);
          }
        }, 1_000);
      }
    });
    return proc;
  };

  const end = async (slot: number, signal: NodeJS.Signals, graceMs: number): Promise<ProcessLife | null> => {
    const proc = current[slot];
    if (!proc) return null;
    expected.add(proc);
    current[slot] = null;
    await endProcess(proc, { signal, graceMs });
    return lives.find((life) => life.pid === proc.pid) ?? null;
  };

  const slots = Array.from({ length: opts.size }, (_, i) => i);
  return {
    size: opts.size,
    current,
    liveSlots: () => slots.filter((slot) => current[slot] !== null),
    slotOf: (pid) => slots.find((slot) => current[slot]?.pid === pid) ?? null,
    lives,
    unexpectedExits,
    stderrTail,
    stderrAll,
    processes,
    start: (slot) => (slot === undefined ? slots : [slot]).map(startSlot),
    kill: (slot) => end(slot, 'SIGKILL', 10_000),
    stop: async (graceMs = 30_000) => {
      shuttingDown = true;
      await Promise.all(slots.map((slot) => end(slot, 'SIGTERM', graceMs)));
    },
  };
}
