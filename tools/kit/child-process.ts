/** Child processes of the harness (Temporal servers, workers): waiting for them, ending them, their output. */
import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** True while the process has neither exited nor failed to start. */
export function isRunning(proc: ChildProcess): boolean {
  return proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null;
}

/** Resolves once the process has exited (at once if it already has, or never started). */
export function exited(proc: ChildProcess): Promise<Exit> {
  if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) {
    return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  }
  return new Promise((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** `work`, or a rejection naming `what` once `ms` have passed. */
export async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
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

/**
 * Sends `signal` (SIGTERM: let it shut down cleanly) and waits up to `graceMs` for the exit, then
 * SIGKILLs it. `graceful` says whether it went by itself.
 */
export async function endProcess(
  proc: ChildProcess,
  { signal = 'SIGTERM', graceMs = 30_000 }: { signal?: NodeJS.Signals; graceMs?: number } = {},
): Promise<Exit & { graceful: boolean }> {
  if (!isRunning(proc)) return { ...(await exited(proc)), graceful: true };
  proc.kill(signal);
  try {
    return { ...(await within(graceMs, `pid ${proc.pid} to exit`, exited(proc))), graceful: true };
  } catch {
    proc.kill('SIGKILL');
    return { ...(await exited(proc)), graceful: false };
  }
}

/** Collects a stream's non-empty lines into `lines`, keeping the last `keep` of them. */
export function keepLines(stream: Readable | null, lines: string[], keep = 200): void {
  if (!stream) return;
  stream.setEncoding('utf8');
  let partial = '';
  stream.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter((line) => line.trim() !== ''));
    if (lines.length > keep) lines.splice(0, lines.length - keep);
  });
  stream.on('end', () => {
    if (partial.trim() !== '') lines.push(partial);
    partial = '';
  });
}
