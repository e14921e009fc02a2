/**
 * What a chaos run does, decided up front from the seed: which group meets which fate, when each
 * person approves, and when each fault strikes. Times are ms after the first HeyGen request.
 */
import type { ConsentOutcome } from '../../src/contract/index.js';
import type { Random } from './random.js';

export type Fate =
  'approved' | 'never_approved' | 'deleted_before_start' | 'deleted_mid_run' | 'failed' | 'not_required';

export const EXPECTED_OUTCOME: Record<Fate, ConsentOutcome> = {
  approved: 'approved',
  never_approved: 'expired',
  deleted_before_start: 'group_not_found',
  deleted_mid_run: 'group_not_found',
  failed: 'failed',
  not_required: 'not_required',
};

export interface PlannedGroup {
  index: number;
  groupId: string;
  email: string;
  name: string;
  fate: Fate;
  /** approved: when the person agrees; deleted_mid_run / failed: when HeyGen changes the group. */
  actAtMs: number | null;
  /** approved only: through the consent page from the email (else the sandbox admin call). */
  viaConsentPage: boolean;
  /** Start the workflow a second time mid-run (must attach to the same execution). */
  retriggerAtMs: number | null;
}

export type ChaosAction =
  | { kind: 'kill_worker' }
  | { kind: 'kill_worker_after_429'; retryAfterSeconds: number }
  | { kind: 'restart_temporal'; downMs: number }
  | { kind: 'heygen_outage'; downMs: number }
  // Fault bursts last up to windowMs (or until count requests have met them), like a real incident.
  | { kind: 'heygen_5xx'; status: 500 | 502 | 503 | 504; count: number; windowMs: number }
  | { kind: 'heygen_hang'; count: number; windowMs: number }
  | { kind: 'heygen_slow_consent'; count: number; ms: number; windowMs: number }
  | { kind: 'heygen_429_storm'; count: number; retryAfter: string; windowMs: number }
  | { kind: 'smtp_outage'; downMs: number };

export interface TimedAction {
  atMs: number;
  action: ChaosAction;
}

export interface ChaosPlan {
  groups: PlannedGroup[];
  actions: TimedAction[];
  /** Deadline given to never-approved groups (ms from their start). */
  expiringDeadlineMs: number;
}

export interface PlanInput {
  workflows: number;
  /** Length of the chaos phase: approvals and faults happen inside it. */
  durationMs: number;
  /** 'full': a one-minute HeyGen outage and more of everything; 'short': the CI version. */
  profile: 'full' | 'short';
  /** The worker's HeyGen timeout; slow consent requests take longer than this. */
  heygenTimeoutMs: number;
  runTag: string;
  random: Random;
}

function specialCounts(workflows: number): Record<Exclude<Fate, 'approved'>, number> {
  const counts = {
    never_approved: Math.max(2, Math.round(workflows * 0.02)),
    deleted_before_start: 1,
    deleted_mid_run: 1,
    failed: 1,
    not_required: 1,
  };
  const special = Object.values(counts).reduce((a, b) => a + b, 0);
  if (workflows < special + 4) throw new RangeError(`--workflows must be at least ${special + 4}`);
  return counts;
}

export function makePlan(input: PlanInput): ChaosPlan {
  const { random, durationMs: c } = input;
  const full = input.profile === 'full';
  const at = (from: number, to: number): number => Math.round(random.between(from, to) * c);

  const fates: Fate[] = [];
  for (const [fate, count] of Object.entries(specialCounts(input.workflows)) as Array<[Fate, number]>) {
    for (let i = 0; i < count; i++) fates.push(fate);
  }
  while (fates.length < input.workflows) fates.push('approved');
  const shuffled = random.shuffle(fates);

  const groups: PlannedGroup[] = shuffled.map((fate, index) => ({
    index,
    groupId: `ag_chaos_${input.runTag}_${index}`,
    email: `person${index}.${input.runTag}@chaos.example.com`,
    name: `Chaos Person ${index}`,
    fate,
    actAtMs:
      fate === 'approved'
        ? at(0.1, 0.65)
        : fate === 'deleted_mid_run'
          ? at(0.3, 0.4)
          : fate === 'failed'
            ? at(0.35, 0.45)
            : null,
    // A third approve on the consent page from the email, the rest through the sandbox.
    viaConsentPage: fate === 'approved' && random.next() < 1 / 3,
    retriggerAtMs: null,
  }));
  // A few duplicate triggers, while the workflow is surely still running (approval comes later).
  const lateApprovals = groups.filter((g) => g.fate === 'approved' && (g.actAtMs ?? 0) > 0.4 * c);
  for (const group of random
    .shuffle(lateApprovals)
    .slice(0, Math.max(2, Math.round(input.workflows * 0.03)))) {
    group.retriggerAtMs = at(0.12, 0.3);
  }

  const actions: TimedAction[] = [];
  const add = (atMs: number, action: ChaosAction): void => void actions.push({ atMs, action });

  // The worker: random SIGKILLs, and one right after a long Retry-After (the restart must honour it).
  const kills = full ? 4 : 1;
  for (let i = 0; i < kills; i++) {
    const slot = (0.7 - 0.08) / kills;
    add(at(0.08 + i * slot, 0.08 + (i + 0.8) * slot), { kind: 'kill_worker' });
  }
  add(at(0.34, 0.4), { kind: 'kill_worker_after_429', retryAfterSeconds: full ? 20 : 12 });

  // Temporal: stopped (SIGTERM, wait) and started again on the same database file and port.
  add(at(0.22, 0.3), { kind: 'restart_temporal', downMs: Math.round(random.between(3_000, 8_000)) });
  if (full)
    add(at(0.6, 0.66), { kind: 'restart_temporal', downMs: Math.round(random.between(3_000, 8_000)) });

  // HeyGen: a full outage (connections refused), 5xx bursts, hangs, slow consents, 429 storms.
  add(at(0.5, 0.52), { kind: 'heygen_outage', downMs: full ? 60_000 : 10_000 });
  const statuses = [500, 502, 503, 504] as const;
  const windowMs = (): number => Math.round(random.between(3_000, 6_000));
  for (let i = 0; i < (full ? 4 : 1); i++) {
    add(at(0.1, 0.7), {
      kind: 'heygen_5xx',
      status: random.pick(statuses),
      count: random.int(20, full ? 80 : 40),
      windowMs: windowMs(),
    });
  }
  for (let i = 0; i < (full ? 2 : 1); i++)
    add(at(0.1, 0.6), { kind: 'heygen_hang', count: random.int(5, 15), windowMs: windowMs() });
  // Slow consent requests: HeyGen does the work, the client has given up; the retry must replay it.
  for (let i = 0; i < (full ? 2 : 1); i++) {
    add(i === 0 ? at(0.0, 0.04) : at(0.55, 0.62), {
      kind: 'heygen_slow_consent',
      count: random.int(5, 10),
      ms: input.heygenTimeoutMs + 700,
      windowMs: 10_000,
    });
  }
  for (let i = 0; i < (full ? 3 : 1); i++) {
    add(at(0.1, 0.7), {
      kind: 'heygen_429_storm',
      count: random.int(20, full ? 80 : 40),
      retryAfter: String(random.int(2, 5)),
      windowMs: windowMs(),
    });
  }
  // One storm's Retry-After as an HTTP-date (filled in when it is injected).
  if (full) {
    add(at(0.3, 0.4), {
      kind: 'heygen_429_storm',
      count: random.int(20, 40),
      retryAfter: 'http-date+4',
      windowMs: windowMs(),
    });
  }

  // Mail: the SMTP server goes away while first emails and refreshed links are being sent.
  add(at(0.12, 0.2), { kind: 'smtp_outage', downMs: full ? 30_000 : 8_000 });

  actions.sort((a, b) => a.atMs - b.atMs);
  return { groups, actions, expiringDeadlineMs: c + (full ? 30_000 : 10_000) };
}
