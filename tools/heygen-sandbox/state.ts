import { randomBytes } from 'node:crypto';

import type {
  AvatarGroupItem,
  AvatarStatus,
  ConsentDecision,
  ConsentRecord,
  CreateGroupInput,
} from './types.js';

/** The sandbox's notion of time: a base clock plus whatever advanceClock() added. */
export class SandboxClock {
  #offsetMs = 0;

  constructor(private readonly base: () => number) {}

  now(): number {
    return this.base() + this.#offsetMs;
  }

  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError('advanceClock: ms must be a finite number >= 0');
    this.#offsetMs += ms;
  }
}

export interface StoredGroup {
  item: AvatarGroupItem;
  /** Creation order, used for listing and as the pagination cursor (stable under deletions). */
  seq: number;
  /** Sandbox-clock ms when a 'processing' group turns 'completed'; null when no training is running. */
  trainingCompletesAt: number | null;
}

const DEFAULT_FAILURE = { code: 'training_failed', message: 'Avatar training failed (sandbox).' };

function defaultStatus(consentStatus: string | null): AvatarStatus {
  return consentStatus === null || consentStatus === 'approved' ? 'completed' : 'pending_consent';
}

export class GroupStore {
  readonly #groups = new Map<string, StoredGroup>();
  #nextSeq = 1;

  constructor(
    private readonly clock: SandboxClock,
    private readonly trainingTimeMs: number,
  ) {}

  create(input: CreateGroupInput = {}): AvatarGroupItem {
    const id = input.id ?? `ag_${randomBytes(8).toString('hex')}`;
    if (this.#groups.has(id)) throw new Error(`avatar group ${id} already exists`);
    const consentStatus =
      input.consentStatus !== undefined
        ? input.consentStatus
        : input.consentRequired === false
          ? null
          : 'pending';
    const status = input.status !== undefined ? input.status : defaultStatus(consentStatus);
    const error =
      input.error !== undefined ? input.error : status === 'failed' ? { ...DEFAULT_FAILURE } : null;
    const item: AvatarGroupItem = {
      id,
      name: input.name ?? 'Sandbox Avatar',
      created_at: Math.floor(this.clock.now() / 1000),
      looks_count: 1,
      preview_image_url: null,
      preview_video_url: null,
      gender: null,
      default_voice_id: null,
      consent_status: consentStatus,
      status,
      error,
    };
    this.#groups.set(id, { item, seq: this.#nextSeq++, trainingCompletesAt: null });
    return structuredClone(item);
  }

  has(id: string): boolean {
    return this.#groups.has(id);
  }

  get(id: string): AvatarGroupItem | undefined {
    const stored = this.#groups.get(id);
    return stored ? structuredClone(this.#settle(stored)) : undefined;
  }

  update(id: string, patch: Partial<AvatarGroupItem>): AvatarGroupItem {
    const stored = this.#require(id);
    if (patch.id !== undefined && patch.id !== id) throw new Error('updateGroup: the id cannot be changed');
    Object.assign(stored.item, structuredClone(patch));
    // An explicit status is the caller taking over the lifecycle: stop the training timer.
    if (patch.status !== undefined) stored.trainingCompletesAt = null;
    return structuredClone(stored.item);
  }

  delete(id: string): boolean {
    return this.#groups.delete(id);
  }

  /**
   * Consent given: consent_status 'approved' and, from 'pending_consent', training starts
   * ('processing', then 'completed' trainingTimeMs later on the sandbox clock). Approving an
   * already approved group changes nothing, so a second link clicked later does not restart training.
   */
  approve(id: string): AvatarGroupItem {
    const stored = this.#require(id);
    const item = stored.item;
    if (item.consent_status !== 'approved') {
      item.consent_status = 'approved';
      if (item.status === 'pending_consent') {
        item.status = 'processing';
        stored.trainingCompletesAt = this.clock.now() + this.trainingTimeMs;
      }
    }
    return structuredClone(this.#settle(stored));
  }

  /** Newest first. `beforeSeq` is the cursor of the previous page. */
  page(limit: number, beforeSeq: number | null): { items: AvatarGroupItem[]; nextCursor: number | null } {
    const ordered = [...this.#groups.values()]
      .filter((g) => beforeSeq === null || g.seq < beforeSeq)
      .sort((a, b) => b.seq - a.seq);
    const pageGroups = ordered.slice(0, limit);
    const last = pageGroups.at(-1);
    return {
      items: pageGroups.map((g) => structuredClone(this.#settle(g))),
      nextCursor: ordered.length > limit && last ? last.seq : null,
    };
  }

  // Training is evaluated lazily against the sandbox clock, so advanceClock() moves it too.
  #settle(stored: StoredGroup): AvatarGroupItem {
    if (
      stored.trainingCompletesAt !== null &&
      stored.item.status === 'processing' &&
      this.clock.now() >= stored.trainingCompletesAt
    ) {
      stored.item.status = 'completed';
      stored.trainingCompletesAt = null;
    }
    return stored.item;
  }

  #require(id: string): StoredGroup {
    const stored = this.#groups.get(id);
    if (!stored) throw new Error(`avatar group ${id} not found`);
    return stored;
  }

  /** Every group with its order and training timer, in creation order (for a snapshot). */
  export(): StoredGroup[] {
    return [...this.#groups.values()].sort((a, b) => a.seq - b.seq).map((g) => structuredClone(g));
  }

  /** Takes groups from a snapshot into an empty store, keeping their order (the list cursor). */
  import(groups: readonly StoredGroup[]): void {
    if (this.#groups.size > 0) throw new Error('groups can only be restored into an empty sandbox');
    for (const group of groups) {
      this.#groups.set(group.item.id, structuredClone(group));
      this.#nextSeq = Math.max(this.#nextSeq, group.seq + 1);
    }
  }
}

export class ConsentStore {
  readonly #byToken = new Map<string, ConsentRecord>();

  constructor(private readonly clock: SandboxClock) {}

  create(input: {
    groupId: string;
    idempotencyKey: string | null;
    rerouteUrl: string | null;
    consentText: string | null;
    publicUrl: string;
  }): ConsentRecord {
    const token = `cst_${randomBytes(16).toString('hex')}`;
    const record: ConsentRecord = {
      groupId: input.groupId,
      idempotencyKey: input.idempotencyKey,
      url: `${input.publicUrl}/consent/${token}`,
      token,
      rerouteUrl: input.rerouteUrl,
      consentText: input.consentText,
      createdAt: this.clock.now(),
      decision: 'pending',
      decidedAt: null,
    };
    this.#byToken.set(token, record);
    return { ...record };
  }

  get(token: string): ConsentRecord | undefined {
    const record = this.#byToken.get(token);
    return record ? { ...record } : undefined;
  }

  list(groupId?: string): ConsentRecord[] {
    return [...this.#byToken.values()]
      .filter((r) => groupId === undefined || r.groupId === groupId)
      .map((r) => ({ ...r }));
  }

  latestPending(groupId: string): ConsentRecord | undefined {
    return this.list(groupId)
      .filter((r) => r.decision === 'pending')
      .at(-1);
  }

  decide(token: string, decision: Exclude<ConsentDecision, 'pending'>): void {
    const record = this.#byToken.get(token);
    if (!record) throw new Error('consent not found');
    record.decision = decision;
    record.decidedAt = this.clock.now();
  }

  /** Takes consent records from a snapshot into an empty store: their links open again. */
  import(records: readonly ConsentRecord[]): void {
    if (this.#byToken.size > 0) throw new Error('consents can only be restored into an empty sandbox');
    for (const record of records) this.#byToken.set(record.token, { ...record });
  }
}
