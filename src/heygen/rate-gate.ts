/**
 * A per-process gate that every HeyGen call passes through.
 *
 * HeyGen rate-limits per API key, so all workflows served by one worker share one budget. After a 429,
 * the client closes the gate for the Retry-After duration; until it reopens, calls fail fast with
 * `rate_limited` instead of sending (and earning more 429s). Create one per worker process and pass it
 * to every HeyGenClient of that process.
 *
 * In memory by default. With `persistPath`, the gate also lives in a small JSON file, so a worker that
 * was killed right after a 429 does not have its successor send before Retry-After has passed (the
 * successor reads the file before its first call). Worker processes on one host that share the file
 * share the gate too (best effort: both sides only ever extend it). It does not coordinate workers on
 * other hosts; cap those with the activity task queue's `maxTaskQueueActivitiesPerSecond`.
 */
import { mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

import { z } from 'zod';

export interface RateGateOptions {
  /** Clock in epoch milliseconds (tests inject a fake one). */
  now?: () => number;
  /**
   * Keep the gate's deadline in this file as well: written atomically (temporary file, then rename)
   * whenever a 429 extends the gate, read lazily when a call checks the gate and the file changed.
   */
  persistPath?: string;
  /**
   * Called when the file cannot be read, parsed or written. The gate then keeps working in memory: a
   * broken file must never stop HeyGen calls. Default: ignored.
   */
  onPersistError?: (error: Error) => void;
  /**
   * A deadline read from the file is never honoured further ahead than this (default 1 h, the largest
   * Retry-After the client accepts), so a corrupt file or a clock jump cannot block calls for long.
   */
  maxPersistedMs?: number;
}

/** The file's content. Extra fields are ignored, so a later version can add some. */
const persistedGateSchema = z.object({ closedUntil: z.number().finite().nonnegative() });

const DEFAULT_MAX_PERSISTED_MS = 3_600_000;

/** What identifies one version of the file, so an unchanged file is not read again. */
interface FileSignature {
  mtimeMs: number;
  size: number;
  ino: number;
}

function sameSignature(a: FileSignature | null, b: FileSignature | null): boolean {
  return a !== null && b !== null && a.mtimeMs === b.mtimeMs && a.size === b.size && a.ino === b.ino;
}

function isMissingFile(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

let tempCounter = 0;

export class RateGate {
  readonly #now: () => number;
  readonly #persistPath: string | null;
  readonly #onPersistError: (error: Error) => void;
  readonly #maxPersistedMs: number;
  #closedUntil = 0;
  /** Signature of the file version last read or written; null when none was seen yet. */
  #seen: FileSignature | null = null;
  #lastReported: string | null = null;

  constructor(opts: RateGateOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#persistPath = opts.persistPath && opts.persistPath.trim() !== '' ? opts.persistPath : null;
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
   * Closes the gate for `ms` from now. Only ever extends: a shorter closure never reopens the gate
   * earlier than an existing one (two 429s in a row keep the later deadline). Non-finite or
   * non-positive values are ignored. With `persistPath`, an extension is written to the file before
   * this returns.
   */
  closeFor(ms: number): void {
    if (!Number.isFinite(ms) || ms <= 0) return;
    const until = this.#now() + ms;
    // Merge what another process may have written, so the file is never shortened by us.
    this.#readPersisted();
    if (until <= this.#closedUntil) return;
    this.#closedUntil = until;
    this.#writePersisted();
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
      if (!isMissingFile(err))
        this.#report(`rate gate file ${path} could not be read: ${asError(err).message}`);
      return;
    }
    if (sameSignature(this.#seen, signature)) return;
    this.#seen = signature;
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      if (isMissingFile(err)) return;
      this.#report(`rate gate file ${path} is not JSON: ${asError(err).message}`);
      return;
    }
    const parsed = persistedGateSchema.safeParse(json);
    if (!parsed.success) {
      this.#report(`rate gate file ${path} has no valid closedUntil`);
      return;
    }
    const ceiling = this.#now() + this.#maxPersistedMs;
    this.#closedUntil = Math.max(this.#closedUntil, Math.min(parsed.data.closedUntil, ceiling));
  }

  /** Writes the deadline atomically: a reader sees the old file or the new one, never half of one. */
  #writePersisted(): void {
    const path = this.#persistPath;
    if (path === null) return;
    tempCounter += 1;
    const temp = `${path}.${process.pid}.${tempCounter}.tmp`;
    try {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(temp, `${JSON.stringify({ closedUntil: this.#closedUntil })}\n`, { mode: 0o600 });
      // The next check reads the file back once: cheap, and it cannot miss another process's write
      // that lands between our rename and a stat.
      renameSync(temp, path);
    } catch (err) {
      this.#report(`rate gate file ${path} could not be written: ${asError(err).message}`);
      try {
        unlinkSync(temp);
      } catch {
        // Nothing was left behind.
      }
    }
  }
}
