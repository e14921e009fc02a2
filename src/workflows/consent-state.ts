/**
 * Everything a consent workflow knows, in one object. The flow changes it, the status module
 * shows it, and continue-as-new carries it to the next run as it is.
 */
import { log } from '@temporalio/workflow';
import type { AttemptDetails } from '../activities/types.js';
import type {
  BlockedReason,
  ConsentError,
  ConsentOutcome,
  ConsentPhase,
  ResolvedPolicy,
} from '../contract/index.js';
import type { GroupSnapshot } from '../rules/consent-decision.js';

export interface ConsentState {
  phase: ConsentPhase;
  outcome: ConsentOutcome | null;
  deadlineAtMs: number;
  /** Link generation: 0 before the first link, then 1, 2... (one per refresh). */
  generation: number;
  consentUrl: string | null;
  linkIssuedAtMs: number | null;
  avatarName: string;
  consentStatus: string | null;
  avatarStatus: string | null;
  /** HeyGen GETs made while waiting for the decision (the look-up is not counted). */
  polls: number;
  emailsSent: number;
  /** Operator resends so far (each is a distinct message). */
  resends: number;
  /** When the polling schedule (fast, then backing off) last started: a new link or a nudge restarts it. */
  scheduleStartedAtMs: number;
  /** The open polling window, while there is one (see `status.ts`: the status shows its schedule). */
  pollWindow: PollWindow | null;
  /** When the next poll is due, as far as the workflow knows. */
  nextPollAtMs: number | null;
  lastError: ConsentError | null;
  blocked: BlockedReason | null;
  approvedAtMs: number | null;
  /** Set by changeRecipient: the person the emails now go to (else the input's recipient). */
  recipient: { email: string; name?: string | undefined } | null;
}

/** One polling activity's schedule: its retries are the polls, at these times. */
export interface PollWindow {
  openedAtMs: number;
  firstIntervalMs: number;
  closesAtMs: number;
}

/** What a run knows of its moment (none of it carried by older versions' continue-as-new). */
const FRESH = {
  outcome: null,
  pollWindow: null,
  nextPollAtMs: null,
  lastError: null,
  blocked: null,
  approvedAtMs: null,
  recipient: null,
} as const;

export function startState(groupId: string, policy: ResolvedPolicy, nowMs: number): ConsentState {
  return {
    ...FRESH,
    phase: 'looking',
    deadlineAtMs: nowMs + policy.deadlineMs,
    generation: 0,
    consentUrl: null,
    linkIssuedAtMs: null,
    avatarName: groupId,
    consentStatus: null,
    avatarStatus: null,
    polls: 0,
    emailsSent: 0,
    resends: 0,
    scheduleStartedAtMs: nowMs,
  };
}

/**
 * The state a continued run starts from. Runs continued by earlier versions carried fewer fields
 * (no phase, window or error): they were waiting for the decision, so they resume waiting.
 */
export function resumeState(carried: CarriedState): ConsentState {
  return { ...FRESH, phase: 'awaiting', ...carried };
}

/** What continue-as-new passes on: the whole state (older runs passed only the required fields). */
export type CarriedState = Pick<
  ConsentState,
  | 'deadlineAtMs'
  | 'generation'
  | 'consentUrl'
  | 'linkIssuedAtMs'
  | 'avatarName'
  | 'consentStatus'
  | 'avatarStatus'
  | 'polls'
  | 'emailsSent'
  | 'resends'
  | 'scheduleStartedAtMs'
> &
  Partial<ConsentState>;

/** Takes what HeyGen said about the group. */
export function absorbGroup(state: ConsentState, group: GroupSnapshot): void {
  state.avatarName = group.name;
  state.consentStatus = group.consentStatus;
  state.avatarStatus = group.avatarStatus;
}

/** Takes what a closed window's last failure says: the last status, the last error, a block. */
export function takeStock(state: ConsentState, details: AttemptDetails | undefined, groupId: string): void {
  if (!details) return;
  if (details.consentStatus !== undefined) state.consentStatus = details.consentStatus;
  if (details.avatarStatus !== undefined) state.avatarStatus = details.avatarStatus;
  state.lastError = details.error ?? null;
  state.blocked = details.blocked ?? null;
  if (state.blocked) {
    log.warn('consent blocked until an operator acts', {
      groupId,
      blocked: state.blocked,
      error: state.lastError?.message,
    });
  }
}

/** A step succeeded: whatever blocked it is over. */
export function clearTrouble(state: ConsentState): void {
  state.lastError = null;
  state.blocked = null;
}

/** How a consent ends: its outcome, and the error behind it when there is one. */
export interface ConsentEnd {
  outcome: ConsentOutcome;
  error?: ConsentError;
}
