/**
 * What a chaos run does, decided up front from the seed: which group meets which fate, when each
 * person approves (and whether they follow the redirect back), and when each fault strikes. Times
 * are ms after the first HeyGen request.
 */
import type { ConsentOutcome } from '../../src/contract/index.js';
import type { Random } from './random.js';

export type Fate =
  | 'approved'
  | 'never_approved'
  | 'deleted_before_start'
  | 'deleted_mid_run'
  | 'failed'
  | 'not_required'
  /** The mail server refuses the address for good: 550 at RCPT. */
  | 'email_refused_rcpt'
  /** The mail server refuses the message for good: 552 at DATA. */
  | 'email_refused_data';

export const EXPECTED_OUTCOME: Record<Fate, ConsentOutcome> = {
  approved: 'approved',
  never_approved: 'expired',
  deleted_before_start: 'group_not_found',
  deleted_mid_run: 'group_not_found',
  failed: 'failed',
  not_required: 'not_required',
  email_refused_rcpt: 'email_undeliverable',
  email_refused_data: 'email_undeliverable',
};

/** The permanent SMTP refusal aimed at a group's address, by fate. */
export const PERMANENT_REFUSAL: Partial<Record<Fate, { code: 550 | 552; stage: 'rcpt' | 'data' }>> = {
  email_refused_rcpt: { code: 550, stage: 'rcpt' },
  email_refused_data: { code: 552, stage: 'data' },
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
  /** approved on the page only: the browser follows HeyGen's redirect to the gateway's return link. */
  followsRedirect: boolean;
  /** Start the workflow a second time mid-run (must attach to the same execution). */
  retriggerAtMs: number | null;
}

/** SMTP faults as mail servers really answer: temporary refusals, and a reply lost after DATA. */
export type SmtpFaultKind = '421_rcpt' | '451_rcpt' | '421_data' | '451_data' | 'drop_after_data';

export type ChaosAction =
  /** SIGKILL one worker process chosen at random; its slot starts again after `restartAfterMs`. */
  | { kind: 'kill_worker'; restartAfterMs: number }
  | { kind: 'kill_worker_after_429'; retryAfterSeconds: number }
  /** SIGTERM, wait for the exit, start again on the same database. */
  | { kind: 'restart_temporal'; downMs: number }
  /** SIGKILL (a crash: no shutdown), start again on the same database. */
  | { kind: 'kill_temporal'; downMs: number }
  | { kind: 'heygen_outage'; downMs: number }
  // Fault bursts last up to windowMs (or until count requests have met them), like a real incident.
  | { kind: 'heygen_5xx'; status: 500 | 502 | 503 | 504; count: number; windowMs: number }
  | { kind: 'heygen_hang'; count: number; windowMs: number }
  | { kind: 'heygen_slow_consent'; count: number; ms: number; windowMs: number }
  | { kind: 'heygen_429_storm'; count: number; retryAfter: string; windowMs: number }
  | { kind: 'smtp_outage'; downMs: number }
  | { kind: 'smtp_fault'; fault: SmtpFaultKind; count: number; windowMs: number };

export interface TimedAction {
  atMs: number;
  action: ChaosAction;
}

/** How each workflow is started: the policy scaled down so a run shows many polls, refreshes and expiries. */
export interface RunPolicy {
  pollInitialInterval: string;
  pollMaxInterval: string;
  pollWindow: string;
  linkTtl: string;
}

export interface ChaosPlan {
  groups: PlannedGroup[];
  actions: TimedAction[];
  /** Deadline given to never-approved groups (ms from their start). */
  expiringDeadlineMs: number;
  policy: RunPolicy;
}

export interface PlanInput {
  workflows: number;
  /** Length of the chaos phase: approvals and faults happen inside it. */
  durationMs: number;
  /** 'full': a one-minute HeyGen outage and more of everything; 'short': the CI version. */
  profile: 'full' | 'short';
  /** Temporal SIGKILLs (full: 2, short: 1). */
  serverKills: number;
  /** HEYGEN_MAX_RPS: the polls are spaced so the cap is met in bursts, not all the time. */
  maxRps: number;
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
    email_refused_rcpt: Math.max(1, Math.round(workflows * 0.003)),
    email_refused_data: Math.max(1, Math.round(workflows * 0.003)),
  };
  const special = Object.values(counts).reduce((a, b) => a + b, 0);
  if (workflows < special + 4) throw new RangeError(`--workflows must be at least ${special + 4}`);
  return counts;
}

/**
 * Polls spaced so that all groups at full speed ask about 1.3 times what HEYGEN_MAX_RPS allows: the
 * cap is met when they come back together (start, outages, restarts), not throughout.
 */
export function runPolicy(input: Pick<PlanInput, 'workflows' | 'profile' | 'maxRps'>): RunPolicy {
  if (input.profile === 'short')
    return { pollInitialInterval: '200ms', pollMaxInterval: '2s', pollWindow: '10s', linkTtl: '30s' };
  const maxIntervalS = Math.min(20, Math.max(2, Math.round(input.workflows / (1.3 * input.maxRps))));
  return {
    pollInitialInterval: maxIntervalS > 4 ? '1s' : '200ms',
    pollMaxInterval: `${maxIntervalS}s`,
    pollWindow: `${Math.max(20, 4 * maxIntervalS)}s`,
    // People who take their time get a refreshed link (new key, new email); fewer with many groups.
    linkTtl: input.workflows > 400 ? '150s' : '75s',
  };
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

  const groups: PlannedGroup[] = shuffled.map((fate, index) => {
    // Two thirds approve on the consent page from the email; half of all approvers then follow
    // HeyGen's redirect to the gateway; the rest are approved through the sandbox.
    const page = random.next();
    return {
      index,
      groupId: `ag_chaos_${input.runTag}_${index}`,
      email: `person${index}.${input.runTag}@people.chaos.example`,
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
      viaConsentPage: fate === 'approved' && page < 2 / 3,
      followsRedirect: fate === 'approved' && page < 1 / 2,
      retriggerAtMs: null,
    };
  });
  // A few duplicate triggers, while the workflow is surely still running (approval comes later).
  const lateApprovals = groups.filter((g) => g.fate === 'approved' && (g.actAtMs ?? 0) > 0.4 * c);
  for (const group of random
    .shuffle(lateApprovals)
    .slice(0, Math.max(2, Math.round(input.workflows * 0.03)))) {
    group.retriggerAtMs = at(0.12, 0.3);
  }

  const actions: TimedAction[] = [];
  const add = (atMs: number, action: ChaosAction): void => void actions.push({ atMs, action });

  // Workers: SIGKILLs one at a time, each of a random one, which comes back a few seconds later
  // (the others go on meanwhile); and one right after a long Retry-After (its successor must honour it).
  const kills = full ? 6 : 1;
  for (let i = 0; i < kills; i++) {
    const slot = (0.7 - 0.08) / kills;
    add(at(0.08 + i * slot, 0.08 + (i + 0.8) * slot), {
      kind: 'kill_worker',
      restartAfterMs: Math.round(random.between(1_000, full ? 8_000 : 3_000)),
    });
  }
  add(at(0.34, 0.4), { kind: 'kill_worker_after_429', retryAfterSeconds: full ? 20 : 12 });

  // Temporal: SIGKILLed (a crash) and started again on the same database; in the full run also
  // stopped politely once. Spread out, so each restart meets work in every state.
  const serverSlots = [0.2, 0.45, 0.62, 0.3, 0.55];
  for (let i = 0; i < input.serverKills; i++) {
    const from = serverSlots[i % serverSlots.length]!;
    add(at(from, from + 0.04), { kind: 'kill_temporal', downMs: Math.round(random.between(2_000, 6_000)) });
  }
  if (full)
    add(at(0.27, 0.3), { kind: 'restart_temporal', downMs: Math.round(random.between(3_000, 8_000)) });

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

  // Mail: the server goes away while first emails and refreshed links are being sent; it refuses
  // for a while (421/451 at RCPT or at DATA); and it takes messages but drops the connection before
  // its 250 (the sender retries a message that was delivered). The first emails go out at the
  // start, so one fault of each kind comes early; the full run repeats them among the refreshes.
  add(at(0.12, 0.2), { kind: 'smtp_outage', downMs: full ? 30_000 : 8_000 });
  const smtpFaults: SmtpFaultKind[] = ['drop_after_data', '421_rcpt', '451_data', '451_rcpt', '421_data'];
  const early = full ? smtpFaults : (['drop_after_data', '451_data', '421_rcpt'] as const);
  early.forEach((fault, i) => {
    add(at(0.0, 0.02) + i * 2_500, {
      kind: 'smtp_fault',
      fault,
      count: random.int(2, full ? 8 : 3),
      windowMs: windowMs(),
    });
  });
  if (full) {
    for (const fault of random.shuffle(smtpFaults)) {
      add(at(0.25, 0.7), { kind: 'smtp_fault', fault, count: random.int(3, 10), windowMs: windowMs() });
    }
  }

  actions.sort((a, b) => a.atMs - b.atMs);
  return {
    groups,
    actions,
    expiringDeadlineMs: c + (full ? 30_000 : 10_000),
    policy: runPolicy(input),
  };
}
