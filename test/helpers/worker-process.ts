/** `npm run worker`'s entry point as a real child process, for crash, shutdown, log and secret tests. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { exited, keepLines } from '../../tools/kit/child-process.js';

export interface WorkerProcess {
  proc: ChildProcess;
  /** Lines the worker wrote to stdout and stderr (its JSON logs), as they arrive. */
  logs: string[];
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
}

export function startWorkerProcess(env: Record<string, string>): WorkerProcess {
  const logs: string[] = [];
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    env: { ...process.env, LOG_LEVEL: 'INFO', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Every line is kept: tests look for one log line among all of them.
  keepLines(proc.stdout, logs, Infinity);
  keepLines(proc.stderr, logs, Infinity);
  return { proc, logs, exited: exited(proc).then(({ code }) => code) };
}
