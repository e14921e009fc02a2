/**
 * An in-memory HeyGen for workflow tests on the time-skipping server: the real activities run
 * against it, and it records each call at the server's (skipped) time, so tests can assert timing.
 */
import type { HeyGenApi } from '../../src/activities/index.js';
import type { AvatarGroupItem } from '../../src/heygen/index.js';
import { HeyGenError } from '../../src/heygen/index.js';

export interface FakeCall {
  method: 'GET' | 'POST';
  groupId: string;
  idempotencyKey: string | null;
  /** Temporal server time of the call (the time-skipping server's clock). */
  at: number;
  /** 'ok', or the HTTP status of the injected failure. */
  outcome: string;
}

type Failure = {
  kind: HeyGenError['kind'];
  status: number;
  code: string;
  retryAfterMs?: number;
  param?: string;
  /** HeyGen's own words (default: "HeyGen <status> <code>"). */
  message?: string;
};

export class FakeHeyGen implements HeyGenApi {
  readonly groups = new Map<string, AvatarGroupItem>();
  readonly calls: FakeCall[] = [];
  private readonly failures: {
    groupId: string;
    method: 'GET' | 'POST';
    failure: Failure;
    remaining: number;
  }[] = [];
  /** Approve the group when the Nth GET arrives (counted per group), for "approval at a random time". */
  approveOnGet = new Map<string, number>();
  /** Apply a patch to the group when the Nth GET arrives (e.g. HeyGen marking it failed). */
  readonly patchOnGet = new Map<string, { at: number; patch: Partial<AvatarGroupItem> }>();

  /** `clock` reads the Temporal server's time (TestWorkflowEnvironment.currentTimeMs), which time skipping moves. */
  constructor(private readonly clock: () => Promise<number>) {}

  addGroup(id: string, patch: Partial<AvatarGroupItem> = {}): AvatarGroupItem {
    const group: AvatarGroupItem = {
      id,
      name: `Avatar ${id}`,
      created_at: 1_700_000_000,
      looks_count: 1,
      preview_image_url: null,
      preview_video_url: null,
      gender: null,
      default_voice_id: null,
      consent_status: 'pending',
      status: 'pending_consent',
      error: null,
      ...patch,
    };
    this.groups.set(id, group);
    return group;
  }

  approve(id: string): void {
    const group = this.groups.get(id);
    if (!group) throw new Error(`no group ${id}`);
    group.consent_status = 'approved';
    group.status = 'processing';
  }

  /** The next `count` calls of `method` for this group fail with this classified error. */
  failNext(groupId: string, method: 'GET' | 'POST', failure: Failure, count = 1): void {
    this.failures.push({ groupId, method, failure, remaining: count });
  }

  callsFor(groupId: string, method?: 'GET' | 'POST'): FakeCall[] {
    return this.calls.filter((c) => c.groupId === groupId && (!method || c.method === method));
  }

  private async record(
    method: 'GET' | 'POST',
    groupId: string,
    idempotencyKey: string | null,
  ): Promise<FakeCall> {
    const call: FakeCall = { method, groupId, idempotencyKey, at: await this.clock(), outcome: 'ok' };
    this.calls.push(call);
    const index = this.failures.findIndex(
      (f) => f.groupId === groupId && f.method === method && f.remaining > 0,
    );
    if (index >= 0) {
      const entry = this.failures[index]!;
      entry.remaining -= 1;
      if (entry.remaining === 0) this.failures.splice(index, 1);
      call.outcome = `${entry.failure.status}`;
      throw new HeyGenError({
        kind: entry.failure.kind,
        message: entry.failure.message ?? `HeyGen ${entry.failure.status} ${entry.failure.code}`,
        method,
        path: `/v3/avatars/${groupId}`,
        status: entry.failure.status,
        code: entry.failure.code,
        param: entry.failure.param ?? null,
        retryAfterMs: entry.failure.retryAfterMs ?? null,
      });
    }
    return call;
  }

  private lookup(method: 'GET' | 'POST', groupId: string): AvatarGroupItem {
    const group = this.groups.get(groupId);
    if (!group) {
      throw new HeyGenError({
        kind: 'not_found',
        message: 'HeyGen 404 avatar_group_not_found',
        method,
        path: `/v3/avatars/${groupId}`,
        status: 404,
        code: 'avatar_group_not_found',
      });
    }
    return group;
  }

  async getAvatarGroup(groupId: string): Promise<AvatarGroupItem> {
    await this.record('GET', groupId, null);
    const group = this.lookup('GET', groupId);
    const approveAt = this.approveOnGet.get(groupId);
    const gets = this.callsFor(groupId, 'GET').length;
    if (approveAt !== undefined && gets >= approveAt) this.approve(groupId);
    const patch = this.patchOnGet.get(groupId);
    if (patch && gets >= patch.at) Object.assign(group, patch.patch);
    return { ...group };
  }

  async createConsent(
    groupId: string,
    _body: { reroute_url?: string | null; consent_text?: string | null },
    opts: { idempotencyKey: string },
  ): Promise<{ avatarGroup: AvatarGroupItem; url: string }> {
    await this.record('POST', groupId, opts.idempotencyKey);
    const group = this.lookup('POST', groupId);
    return { avatarGroup: { ...group }, url: `https://consent.example/${groupId}/${opts.idempotencyKey}` };
  }
}
