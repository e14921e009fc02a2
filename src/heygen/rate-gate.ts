/**
 * A gate that every HeyGen call of a worker process passes through.
 *
 * HeyGen rate-limits per API key, so all workflows served by one worker share one budget. After a 429,
 * the client closes the gate for the Retry-After duration; until it reopens, calls fail fast with
 * `rate_limited` instead of sending (and earning more 429s). Create one per worker process and pass it
 * to every HeyGenClient of that process.
 *
 * In memory by default. With `persistPath`, the gate also lives in a small JSON file that every worker
 * process on the host (and the next one after a restart) shares:
 * - updates are read-modify-write under a lock file, so two processes that get 429s at once never
 *   lose or shorten each other's deadline;
 * - deadlines are kept on the host's monotonic clock (with the boot they belong to), so a wall-clock
 *   jump neither opens nor jams the gate; after a reboot the wall-clock copy is used;
 * - a deadline further ahead than `maxPersistedMs` (a corrupt file, a clock jump) is clamped, and the
 *   file is repaired.
 * Workers on other hosts share the gate through Temporal instead (src/activities/queue-gate.ts).
 */
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname } from 'node:path';

import { z } from 'zod';

export interface RateGateOptions {
  /** Monotonic clock in milliseconds, shared by the processes of a host (tests inject a fake one). */
  now?: () => number;
  /** Wall clock in epoch milliseconds: only for the file's human-readable copy and after a reboot. */
  wallNow?: () => number;
  /** Identifies the boot the monotonic clock counts from (default: the kernel's boot_id). */
  bootId?: string;
  /** Keep the gate's deadline in this file as well (shared by the processes of a host). */
  persistPath?: string;
  /**
   * Called when the file cannot be read, parsed or written. The gate then keeps working in memory: a
   * broken file must never stop HeyGen calls. Default: ignored.
   */
  onPersistError?: (error: Error) => void;
  /**
   * A deadline is never honoured further ahead than this (default 1 h, the largest Retry-After the
   * client accepts), so a corrupt file or a clock jump cannot block calls for long.
   */
  maxPersistedMs?: number;
}

/** The file's content. Extra fields are ignored, so a later version can add some. */
const persistedGateSchema = z.object({
  /** On the host's monotonic clock, valid for `bootId`. */
  monotonicUntil: z.number().finite().nonnegative().optional(),
  bootId: z.string().optional(),
  /** Wall clock (epoch ms): for people, and for the next boot. Files of older versions have only this. */
  closedUntil: z.number().finite().nonnegative(),
});

const DEFAULT_MAX_PERSISTED_MS = 3_600_000;
/** A lock older than this belongs to a process that died holding it. */
const STALE_LOCK_MS = 2_000;
const LOCK_ATTEMPTS = 200;

/** What identifies one version of the file, so an unchanged file is not read again. */
interface FileSignature {
  mtimeMs: number;
  size: number;
  ino: number;
}

function sameSignature(a: FileSignature | null, b: FileSignature | null): boolean {
  return a !== null && b !== null && a.mtimeMs === b.mtimeMs && a.size === b.size && a.ino === b.ino;
}

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** The host's monotonic clock (CLOCK_MONOTONIC on Linux): the same for every process since boot. */
export function monotonicNowMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

function currentBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    // No /proc (macOS): the boot time, to the second, from the wall clock and the uptime.
    return `boot-${Math.round(Date.now() / 1000 - process.uptime() - monotonicNowMs() / 1000)}`;
  }
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

export class RateGate {
  readonly #now: () => number;
  readonly #wallNow: () => number;
  readonly #bootId: string;
  readonly #persistPath: string | null;
  readonly #onPersistError: (error: Error) => void;
  readonly #maxPersistedMs: number;
  /** On the monotonic clock. */
  #closedUntil = 0;
  /** Signature of the file version last read or written; null when none was seen yet. */
  #seen: FileSignature | null = null;
  #lastReported: string | null = null;
  #holdingLock = false;

  constructor(opts: RateGateOptions = {}) {
    this.#now = opts.now ?? monotonicNowMs;
    this.#wallNow = opts.wallNow ?? Date.now;
    this.#persistPath = opts.persistPath && opts.persistPath.trim() !== '' ? opts.persistPath : null;
    this.#bootId = opts.bootId ?? (this.#persistPath ? currentBootId() : 'memory');
    this.#onPersistError = opts.onPersistError ?? (() => undefined);
    const max = opts.maxPersistedMs ?? DEFAULT_MAX_PERSISTED_MS;
    this.#maxPersistedMs = Number.isFinite(max) && max > 0 ? max : DEFAULT_MAX_PERSISTED_MS;
  }

  /** Milliseconds until the gate opens; 0 when open. */
  closedFor(): number {
    this.#readPersisted();
    return Math.max(0, Math.ceil(this.#closedUntil - this.#now()));
  }

  isOpen(): boolean {
    return this.closedFor() === 0;
  }

  /**
   * Closes the gate for `ms` from now (at most `maxPersistedMs`). Only ever extends: a shorter
   * closure never reopens the gate earlier than an existing one, in this process or another.
   * Non-finite or non-positive values are ignored. With `persistPath`, the file holds the later of
   * the two deadlines before this returns.
   */
  closeFor(ms: number): void {
    if (!Number.isFinite(ms) || ms <= 0) return;
    const until = this.#now() + Math.min(ms, this.#maxPersistedMs);
    if (this.#persistPath === null) {
      this.#closedUntil = Math.max(this.#closedUntil, until);
      return;
    }
    this.#withLock(() => {
      // Under the lock: take what another process wrote, then write the later deadline.
      this.#seen = null;
      this.#readPersisted();
      if (until <= this.#closedUntil) return;
      this.#closedUntil = until;
      this.#writePersisted();
    });
  }

  /** Reports a file problem once, not on every HeyGen call while it lasts. */
  #report(message: string): void {
    if (message === this.#lastReported) return;
    this.#lastReported = message;
    this.#onPersistError(new Error(message));
  }

  /** Takes the file's deadline when the file changed since we last looked; never throws. */
  #readPersisted(): void {
    const path = this.#persistPath;
    if (path === null) return;
    let signature: FileSignature;
    try {
      const stat = statSync(path);
      signature = { mtimeMs: stat.mtimeMs, size: stat.size, ino: stat.ino };
    } catch (err) {
      if (errorCode(err) !== 'ENOENT')
        this.#report(`rate gate file ${path} could not be read: ${asError(err).message}`);
      return;
    }
    if (sameSignature(this.#seen, signature)) return;
    this.#seen = signature;
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return;
      this.#report(`rate gate file ${path} is not JSON: ${asError(err).message}`);
      return;
    }
    const parsed = persistedGateSchema.safeParse(json);
    if (!parsed.success) {
      this.#report(`rate gate file ${path} has no valid closedUntil`);
      return;
    }
    const now = this.#now();
    const { monotonicUntil, bootId, closedUntil } = parsed.data;
    // The monotonic deadline holds within one boot; across a reboot (or from an older file) only
    // the wall-clock copy can say anything.
    const until =
      monotonicUntil !== undefined && bootId === this.#bootId
        ? monotonicUntil
        : now + (closedUntil - this.#wallNow());
    const ceiling = now + this.#maxPersistedMs;
    this.#closedUntil = Math.max(this.#closedUntil, Math.min(until, ceiling));
    if (until > ceiling) {
      this.#report(`rate gate file ${path} held a deadline beyond ${this.#maxPersistedMs} ms: clamped`);
      if (this.#holdingLock) this.#writePersisted();
      else this.#withLock(() => this.#writePersisted());
    }
  }

  /** Writes the deadline atomically: a reader sees the old file or the new one, never half of one. */
  #writePersisted(): void {
    const path = this.#persistPath;
    if (path === null) return;
    const temp = `${path}.${process.pid}.${randomUUID()}.tmp`;
    const content = {
      monotonicUntil: this.#closedUntil,
      bootId: this.#bootId,
      closedUntil: Math.round(this.#wallNow() + (this.#closedUntil - this.#now())),
    };
    try {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(temp, `${JSON.stringify(content)}\n`, { mode: 0o600 });
      renameSync(temp, path);
      const stat = statSync(path);
      this.#seen = { mtimeMs: stat.mtimeMs, size: stat.size, ino: stat.ino };
    } catch (err) {
      this.#report(`rate gate file ${path} could not be written: ${asError(err).message}`);
      try {
        unlinkSync(temp);
      } catch {
        // Nothing was left behind.
      }
    }
  }

  /**
   * Runs `fn` holding `<file>.lock` (created exclusively). A lock left by a process that died is
   * broken after STALE_LOCK_MS. If the lock cannot be had, `fn` runs anyway: a gate that works in
   * memory is better than HeyGen calls blocked by a file.
   */
  #withLock(fn: () => void): void {
    const lock = `${this.#persistPath}.lock`;
    let fd: number | null = null;
    try {
      mkdirSync(dirname(lock), { recursive: true });
    } catch {
      // Reported by the write, if it fails too.
    }
    for (let attempt = 0; attempt < LOCK_ATTEMPTS && fd === null; attempt++) {
      try {
        fd = openSync(lock, 'wx', 0o600);
      } catch (err) {
        if (errorCode(err) !== 'EEXIST') break;
        try {
          if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) unlinkSync(lock);
        } catch {
          // Released meanwhile.
        }
        sleepSync(1 + (attempt % 5));
      }
    }
    if (fd === null) this.#report(`rate gate file ${this.#persistPath}: could not take its lock`);
    this.#holdingLock = true;
    try {
      fn();
    } finally {
      this.#holdingLock = false;
      if (fd !== null) {
        closeSync(fd);
        try {
          unlinkSync(lock);
        } catch {
          // Broken as stale by another process: nothing to release.
        }
      }
    }
  }
}
