/**
 * The dev stack's HeyGen sandbox lives in memory; this carries its state over a restart of
 * `npm run dev`. The state file is rewritten shortly after every change (so even a crash or a kill
 * loses at most the last moment) and once more on stop, then read back on start. Groups, consent
 * links and idempotent responses survive: a workflow that outlives the restart still finds its
 * group, and the link in an email sent before the restart (or sent again by resendEmail) opens.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Sandbox, SandboxSnapshot } from '../heygen-sandbox/index.js';

export const SANDBOX_STATE_FILE = 'sandbox-state.json';
/** What earlier versions saved on stop: the groups alone, as the admin API lists them. */
const LEGACY_GROUPS_FILE = 'sandbox-groups.json';

const legacyGroupsSchema = z.array(
  z.object({
    id: z.string().min(1),
    name: z.string(),
    consent_status: z.string().nullable(),
    status: z.enum(['processing', 'pending_consent', 'failed', 'completed']).nullable(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
  }),
);

export interface Restored {
  groups: number;
  consents: number;
  /** Consent links made for another sandbox address (DEV_SANDBOX_PORT changed): they do not open here. */
  elsewhere: number;
}

/** Groups from the old file, newest first there, as a snapshot (no consent links were kept then). */
function fromLegacyGroups(raw: unknown, now: number): SandboxSnapshot {
  const groups = legacyGroupsSchema.parse(raw).toReversed();
  return {
    version: 1,
    groups: groups.map((group, index) => ({
      item: {
        ...group,
        created_at: Math.floor(now / 1000),
        looks_count: 1,
        preview_image_url: null,
        preview_video_url: null,
        gender: null,
        default_voice_id: null,
      },
      seq: index + 1,
      trainingCompletesAt: null,
    })),
    consents: [],
    idempotency: [],
  };
}

/**
 * Loads the saved state (or the older groups-only file) into a sandbox that holds nothing yet. A file
 * it cannot read is set aside as `<file>.unreadable` with a warning: the stack starts anyway.
 */
export function restoreSandboxState(
  sandbox: Sandbox,
  stateDir: string,
  warn: (line: string) => void = console.warn,
): Restored {
  const file = join(stateDir, SANDBOX_STATE_FILE);
  const legacy = join(stateDir, LEGACY_GROUPS_FILE);
  const source = existsSync(file) ? file : existsSync(legacy) ? legacy : null;
  if (!source) return { groups: 0, consents: 0, elsewhere: 0 };
  try {
    const raw: unknown = JSON.parse(readFileSync(source, 'utf8'));
    const snapshot = source === legacy ? fromLegacyGroups(raw, sandbox.now()) : raw;
    const { groups, consents } = sandbox.restore(snapshot);
    const here = `${new URL(sandbox.url).origin}/`;
    const elsewhere = sandbox.consents().filter((record) => !record.url.startsWith(here)).length;
    return { groups, consents, elsewhere };
  } catch (error) {
    const reason = error instanceof z.ZodError ? 'not a saved sandbox state' : String(error);
    renameSync(source, `${source}.unreadable`);
    warn(`  (could not restore the sandbox from ${source}: ${reason}; moved it to ${source}.unreadable)`);
    return { groups: 0, consents: 0, elsewhere: 0 };
  }
}

/** Writes the sandbox's state to the state folder: soon after changes, and at once on flush(). */
export class SandboxStateWriter {
  readonly file: string;
  #timer: NodeJS.Timeout | undefined;
  #failed = false;

  constructor(
    private readonly sandbox: Sandbox,
    stateDir: string,
    private readonly delayMs = 200,
    private readonly warn: (line: string) => void = console.warn,
  ) {
    this.file = join(stateDir, SANDBOX_STATE_FILE);
  }

  /** A change happened: write within delayMs (one write for a burst of changes). */
  schedule(): void {
    this.#timer ??= setTimeout(() => this.flush(), this.delayMs);
    // A pending write never keeps the process alive; stop() flushes.
    this.#timer.unref();
  }

  /** Writes now (and cancels a pending write); returns the number of groups written. */
  flush(): number {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const snapshot = this.sandbox.snapshot();
    const temporary = `${this.file}.tmp`;
    try {
      // Consent links are bearer tokens: the file is for this user only. Renamed into place, so a
      // crash mid-write leaves the previous state, never half of one.
      writeFileSync(temporary, `${JSON.stringify(snapshot, null, 2)}\n`, { mode: 0o600 });
      renameSync(temporary, this.file);
      this.#failed = false;
    } catch (error) {
      // Warn once per failure streak, not on every change; the sandbox itself keeps working.
      if (!this.#failed) this.warn(`  (could not save the sandbox state to ${this.file}: ${String(error)})`);
      this.#failed = true;
    }
    return snapshot.groups.length;
  }
}
