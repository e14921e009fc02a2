/** `npm run worker`'s entry point as a real child process, for crash, shutdown, log and secret tests. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface WorkerProcess {
  proc: ChildProcess;
  /** Lines the worker wrote to stderr (its JSON logs), as they arrive. */
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
  for (const stream of [proc.stdout, proc.stderr]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => logs.push(...chunk.split('\n').filter(Boolean)));
  }
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, logs, exited };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
