/**
 * The one launcher of the Temporal dev server (`temporal server start-dev`) for the dev stack, the
 * benchmark, the chaos run and the tests.
 *
 * The server registers the workflow's search attributes, listens on 127.0.0.1, and can be stopped
 * (SIGTERM, then SIGKILL after a grace period), killed (SIGKILL at once: a crash), and started again
 * on the same database file and ports. It runs in its own process group, so a Ctrl-C in the terminal
 * reaches only the tool, which then stops the server in its own order; a process exit kills any
 * server still running, so none is ever left behind.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { Connection } from '@temporalio/client';
import { CONSENT_SEARCH_ATTRIBUTES } from '../../src/contract/index.js';
import { endProcess, exited, isRunning, keepLines } from './child-process.js';
import type { Exit } from './child-process.js';
import { eventually } from './eventually.js';
import { freePort, LOOPBACK } from './ports.js';
import { howToInstall, resolveTemporalExecutable } from './temporal-binaries.js';

/** start-dev always creates this namespace; the harness uses no other. */
export const DEV_SERVER_NAMESPACE = 'default';

// ---------------------------------------------------------------------------------------------
// Search attributes: the SDK's types as the CLI and the operator API name them, written once

const ATTRIBUTE_TYPES: Record<string, { cli: string; indexedValueType: number }> = {
  TEXT: { cli: 'Text', indexedValueType: 1 },
  KEYWORD: { cli: 'Keyword', indexedValueType: 2 },
  INT: { cli: 'Int', indexedValueType: 3 },
  DOUBLE: { cli: 'Double', indexedValueType: 4 },
  BOOL: { cli: 'Bool', indexedValueType: 5 },
  DATETIME: { cli: 'Datetime', indexedValueType: 6 },
  KEYWORD_LIST: { cli: 'KeywordList', indexedValueType: 7 },
};

type ConsentAttribute = (typeof CONSENT_SEARCH_ATTRIBUTES)[number];

function attributeType(key: ConsentAttribute) {
  const type = ATTRIBUTE_TYPES[key.type];
  if (!type) throw new Error(`search attribute ${key.name}: unknown type ${key.type}`);
  return type;
}

/** The workflow's search attributes as `--search-attribute` values (start-dev applies them to a new database). */
export function searchAttributeFlags(): string[] {
  return CONSENT_SEARCH_ATTRIBUTES.map((key) => `${key.name}=${attributeType(key).cli}`);
}

/**
 * Registers the workflow's search attributes that the namespace lacks and waits until they are
 * listed. start-dev's flags apply only to a new database, so an attribute added to the contract
 * later needs this on an existing one. Returns the names it added.
 */
export async function ensureSearchAttributes(
  connection: Connection,
  { namespace = DEV_SERVER_NAMESPACE, signal }: { namespace?: string; signal?: AbortSignal } = {},
): Promise<string[]> {
  const listed = async () =>
    (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
  const present = await listed();
  const missing = CONSENT_SEARCH_ATTRIBUTES.filter((key) => !(key.name in present));
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(
      missing.map((key) => [key.name, attributeType(key).indexedValueType]),
    ),
  });
  const names = missing.map((key) => key.name);
  await eventually(
    `search attributes ${names.join(', ')}`,
    async () => {
      const now = await listed();
      return names.every((name) => name in now);
    },
    { timeoutMs: 15_000, intervalMs: 250, signal },
  );
  return names;
}

// ---------------------------------------------------------------------------------------------
// The server process

export interface TemporalServerOptions {
  /** gRPC port; default: a free one. Kept across restarts. */
  port?: number;
  /** The Web UI: off by default (headless); `true` serves it on a free port. */
  ui?: boolean | { port: number };
  /** SQLite file, so workflows survive a restart. Default: in memory (a restart loses them). */
  dbFile?: string;
  /** e.g. `journal_mode=WAL`. */
  sqlitePragmas?: readonly string[];
  /** e.g. `history.timerProcessorMaxTimeShift="10ms"`. */
  dynamicConfig?: readonly string[];
  /** Default 'error'. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Appends the server's output to this file; without it, the last lines of its stderr are kept in memory. */
  logFile?: string;
  /** How long start() waits for the server (and its UI) to answer. Default 90 s. */
  startTimeoutMs?: number;
  /** Called when a server that had started exits without stop() or kill(): a crash. */
  onUnexpectedExit?: (exit: Exit) => void;
}

export interface TemporalServer {
  /** host:port of the gRPC front end (known once started). */
  readonly address: string;
  readonly port: number;
  /** The Web UI, or null when headless. */
  readonly uiUrl: string | null;
  readonly dbFile: string | null;
  readonly logFile: string | null;
  /** The running server's process ID, or null. */
  readonly pid: number | null;
  readonly running: boolean;
  /** Every server process started so far (to check that none is left running). */
  readonly processes: readonly ChildProcess[];
  /** The server's last output lines. */
  tail(lines?: number): string[];
  /**
   * Starts the server and waits until it answers, its search attributes are registered and its
   * UI serves. Returns the search attributes it had to register on an existing database.
   */
  start(options?: { signal?: AbortSignal }): Promise<{ registered: string[] }>;
  /** SIGTERM, then SIGKILL after `graceMs` (default 15 s). `graceful`: it exited by itself. */
  stop(graceMs?: number): Promise<Exit & { graceful: boolean }>;
  /** SIGKILL at once: a hard crash. */
  kill(): Promise<Exit>;
  /** Stops (or, `hard`, kills) the server and starts it again on the same database file and ports. */
  restart(options?: { hard?: boolean; signal?: AbortSignal }): Promise<void>;
}

/** Servers still running when this process exits are killed: never leave one behind. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(proc: ChildProcess): void {
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) if (isRunning(child)) child.kill('SIGKILL');
  });
}

/** The CLI's path, or an error that says how to install it. */
function cliPath(): string {
  const executable = resolveTemporalExecutable('dev-server');
  if (executable.type !== 'existing-path') {
    throw new Error(`The Temporal CLI (temporal) was not found. ${howToInstall('dev-server')}`);
  }
  return executable.path;
}

/** A server, not yet started. Throws at once when the CLI is missing. */
export function temporalServer(options: TemporalServerOptions = {}): TemporalServer {
  const executable = cliPath();
  const startTimeoutMs = options.startTimeoutMs ?? 90_000;
  const stderrLines: string[] = [];
  const processes: ChildProcess[] = [];
  /** Exits asked for by stop() or kill(), which are not crashes. */
  const expected = new Set<ChildProcess>();
  // Ports the caller did not choose are picked at the first start; if another process takes one
  // first, that start is retried with new ones. After that they stay, for restarts.
  let port = options.port ?? 0;
  let uiPort = typeof options.ui === 'object' ? options.ui.port : 0;
  const picksPorts = options.port === undefined || options.ui === true;
  let everStarted = false;
  let current: ChildProcess | null = null;

  const uiUrl = () => (options.ui ? `http://${LOOPBACK}:${uiPort}` : null);

  const args = (): string[] => [
    'server',
    'start-dev',
    '--ip',
    LOOPBACK,
    '--port',
    String(port),
    ...(options.ui ? ['--ui-port', String(uiPort)] : ['--headless']),
    ...(options.dbFile ? ['--db-filename', options.dbFile] : []),
    '--log-level',
    options.logLevel ?? 'error',
    ...searchAttributeFlags().flatMap((flag) => ['--search-attribute', flag]),
    ...(options.sqlitePragmas ?? []).flatMap((pragma) => ['--sqlite-pragma', pragma]),
    ...(options.dynamicConfig ?? []).flatMap((value) => ['--dynamic-config-value', value]),
  ];

  const tail = (lines = 15): string[] => {
    let logged: string[] = [];
    try {
      if (options.logFile) logged = readFileSync(options.logFile, 'utf8').trimEnd().split('\n');
    } catch {
      logged = ['(no log)'];
    }
    return [...logged, ...stderrLines].slice(-lines);
  };

  const spawnServer = (): ChildProcess => {
    const log = options.logFile ? openSync(options.logFile, 'a') : null;
    const proc = spawn(executable, args(), {
      detached: true,
      stdio: ['ignore', log ?? 'ignore', log ?? 'pipe'],
    });
    if (log !== null) closeSync(log);
    else keepLines(proc.stderr, stderrLines);
    // A CLI that cannot be executed: its message joins the output, for the start error to show.
    proc.once('error', (error) => stderrLines.push(error.message));
    processes.push(proc);
    track(proc);
    proc.once('exit', (code, signal) => {
      if (current === proc) current = null;
      if (!expected.has(proc) && everStarted) options.onUnexpectedExit?.({ code, signal });
    });
    return proc;
  };

  /** Waits until the server answers, registers what its database lacks, and waits for the UI. */
  const ready = async (proc: ChildProcess, signal: AbortSignal): Promise<string[]> => {
    const address = `${LOOPBACK}:${port}`;
    let connection: Connection | undefined;
    try {
      await eventually(
        `the Temporal dev server on ${address}`,
        async () => {
          connection ??= await Connection.connect({ address, connectTimeout: 1_000 });
          await connection.workflowService.describeNamespace({ namespace: DEV_SERVER_NAMESPACE });
          return true;
        },
        { timeoutMs: startTimeoutMs, intervalMs: 200, signal },
      );
      const registered = await ensureSearchAttributes(connection!, { signal });
      const ui = uiUrl();
      if (ui) {
        await eventually(
          `the Temporal Web UI on ${ui}`,
          async () => {
            const response = await fetch(ui, { signal: AbortSignal.timeout(2_000) });
            await response.body?.cancel();
            return response.ok;
          },
          { timeoutMs: startTimeoutMs, intervalMs: 250, signal },
        );
      }
      return registered;
    } catch (error) {
      if (!isRunning(proc)) throw error;
      expected.add(proc);
      await endProcess(proc, { signal: 'SIGKILL' });
      throw error;
    } finally {
      await connection?.close().catch(() => undefined);
    }
  };

  const startOnce = async (signal: AbortSignal | undefined): Promise<string[]> => {
    if (port === 0) port = await freePort();
    if (options.ui && uiPort === 0) uiPort = await freePort();
    const proc = spawnServer();
    current = proc;
    // A server that exits while starting ends the wait at once, with its last words.
    const died = new AbortController();
    void exited(proc).then((exit) =>
      died.abort(
        new Error(
          `the Temporal dev server exited while starting (code ${exit.code}, signal ${exit.signal}): ` +
            `${tail(5).join(' | ')}${options.logFile ? ` (log: ${options.logFile})` : ''}`,
        ),
      ),
    );
    return ready(proc, signal ? AbortSignal.any([signal, died.signal]) : died.signal);
  };

  const server: TemporalServer = {
    get address() {
      return `${LOOPBACK}:${port}`;
    },
    get port() {
      return port;
    },
    get uiUrl() {
      return uiUrl();
    },
    dbFile: options.dbFile ?? null,
    logFile: options.logFile ?? null,
    get pid() {
      return current?.pid ?? null;
    },
    get running() {
      return current !== null && isRunning(current);
    },
    processes,
    tail,
    async start({ signal } = {}) {
      if (server.running) return { registered: [] };
      for (let attempt = 1; ; attempt += 1) {
        try {
          const registered = await startOnce(signal);
          everStarted = true;
          return { registered };
        } catch (error) {
          // Only a first start on ports picked here may try others: a port may have been taken meanwhile.
          if (everStarted || !picksPorts || signal?.aborted || attempt >= 3) throw error;
          if (options.port === undefined) port = 0;
          if (options.ui === true) uiPort = 0;
        }
      }
    },
    async stop(graceMs = 15_000) {
      const proc = current;
      if (!proc) return { code: null, signal: null, graceful: true };
      expected.add(proc);
      current = null;
      return endProcess(proc, { graceMs });
    },
    async kill() {
      const proc = current;
      if (!proc) return { code: null, signal: null };
      expected.add(proc);
      current = null;
      const { code, signal } = await endProcess(proc, { signal: 'SIGKILL' });
      return { code, signal };
    },
    async restart({ hard = false, signal } = {}) {
      if (hard) await server.kill();
      else await server.stop();
      await server.start({ signal });
    },
  };
  return server;
}

/** A server, started (see TemporalServer.start). */
export async function startTemporalServer(options: TemporalServerOptions = {}): Promise<TemporalServer> {
  const server = temporalServer(options);
  await server.start();
  return server;
}
