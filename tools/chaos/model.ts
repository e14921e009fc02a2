/** The chaos run's shapes: its options and report, and what its phases share. */
import type { ChildProcess } from 'node:child_process';

import type { Client, Connection } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';

import type { ConsentRecord, FaultSpec, LedgerEntry, Sandbox } from '../heygen-sandbox/index.js';
import type { ReceivedMail, SmtpCatcher, SmtpEvent } from '../kit/smtp-catcher.js';
import type { TemporalServer } from '../kit/temporal-server.js';
import type { Check, GroupFinal } from './checks.js';
import type { Excuse } from './emails.js';
import type { RecordingProxy } from './heygen-proxy.js';
import type { HistoryEvent } from './history.js';
import type { PlaintextHit } from './plaintext.js';
import type { ChaosPlan, PlannedGroup, SmtpFaultKind } from './plan.js';
import type { RateCapAnalysis } from './rate-cap.js';
import type { ProxyRecord, RetryAfterAnalysis } from './retry-after.js';
import type { WorkerPool } from './worker-control.js';

/**
 * The product's worker, with HEYGEN_RATE_GATE_FILE (one file shared by every worker process, so a
 * restart, and the other workers, still know a Retry-After) and HEYGEN_MAX_RPS set.
 */
export const WORKER_ENTRY = 'src/worker.ts';

export interface ChaosOptions {
  workflows: number;
  /** Length of the chaos phase (approvals and faults), ms. */
  durationMs: number;
  seed: number;
  profile: 'full' | 'short';
  /** Longest wait for the workflows after the chaos phase, ms. */
  settleTimeoutMs: number;
  /** Worker processes on the task queues at once (full: 3, short: 2). */
  workers: number;
  /** Temporal SIGKILLs during the chaos phase (full: 2, short: 1). */
  serverKills: number;
  /** HEYGEN_MAX_RPS for every worker: the cap on HeyGen requests per second across all of them. */
  maxRps: number;
  /**
   * Keep the scratch folder (the Temporal database and the run's codec key) for a post-mortem:
   * replay or inspect a stuck workflow. Default: removed.
   */
  keepScratch?: boolean;
  /** HeyGen sandbox rate limit per second and key; default 3 × maxRps (only the bucket's bursts and injected storms answer 429). */
  rateLimitPerSecond?: number;
  log?: (line: string) => void;
}

export interface ChaosStats {
  workerKills: number;
  workerKillsSkipped: number;
  /** When each worker SIGKILL happened, epoch ms. */
  workerKillTimes: number[];
  /** 'yes (...)' once a worker was killed right after a long Retry-After. */
  targeted429: string;
  /** Polite stops (SIGTERM) and SIGKILLs of the Temporal server, each followed by a start on the same database. */
  temporalRestarts: number;
  temporalKills: number;
  temporalDowntimeMs: number;
  temporalStopsGraceful: number;
  /** Each time Temporal went down and came back, epoch ms. */
  temporalDownFrom: number[];
  temporalDownUntil: number[];
  heygenOutageMs: number;
  smtpDowntimeMs: number;
  smtpDownSpans: Array<[number, number]>;
  /** HeyGen answers given by injected faults, by fault kind. */
  faultsInjected: Record<string, number>;
  faultAnswers: number;
  faultsUnused: number;
  /** SMTP sends met by an injected fault, by kind (the permanent refusals aimed at groups apart). */
  smtpFaults: Record<SmtpFaultKind, number>;
  pageApprovals: number;
  pageApprovalFallbacks: number;
  workerDrained: string;
}

export interface FigureRow {
  section: string;
  figure: string;
  value: number | string;
}

export interface ChaosReport {
  ok: boolean;
  startedAt: string;
  finishedAt: string;
  wallMs: number;
  options: Omit<ChaosOptions, 'log'>;
  workerEntry: string;
  taskQueue: string;
  checks: Check[];
  /** The figures the issue asks for, first. */
  headline: FigureRow[];
  figures: FigureRow[];
  /** What the run did to the stack, as numbers. */
  stats: ChaosStats;
  retryAfter: RetryAfterAnalysis;
  rateCap: RateCapAnalysis;
  /**
   * HeyGen requests, poll requests, emails, and worker processes that sent HeyGen requests, per 10 s
   * from the chaos clock's start: how the run breathed.
   */
  pace: Array<{ fromS: number; requests: number; polls: number; emails: number; workers: number }>;
  /** Each link generation without a counted email, and the evidence that excuses it. */
  excuses: Excuse[];
  /** Personal data found in clear (the first few of each place). */
  plaintext: {
    historyHits: PlaintextHit[];
    logHits: PlaintextHit[];
    payloadsInClear: Record<string, number>;
  };
  /** `uptime` at the start and the end: other load on the machine. */
  load: { start: string; end: string };
  timeline: Array<{ atMs: number; event: string }>;
  /** The approved groups whose workflow took longest to finish after the approval, with a hint why. */
  slowestApprovals: Array<{
    groupId: string;
    seconds: number;
    activityTimeouts: number;
    linkGeneration: number;
    /** Its history from one second before the approval: `+s EventType detail`. */
    history: string[];
  }>;
  /** What each workflow still running at the end was doing. */
  stuck: StuckWorkflow[];
  wrongGroups: Array<{
    groupId: string;
    fate: string;
    expected: string;
    status: string;
    outcome: string | null;
  }>;
  harnessErrors: string[];
  /** Last stderr lines of the workers and the Temporal server, when a check failed. */
  logs?: { worker: string[]; temporal: string[] };
}

export interface StuckWorkflow {
  groupId: string;
  status: unknown;
  pendingWorkflowTask: unknown;
  pendingActivities: unknown[];
}

export interface GroupState {
  plan: PlannedGroup;
  firstExecutionRunId: string | null;
  approvedAt: number | null;
  decidedAt: number | null;
  approvedViaPage: boolean;
  /** Followed HeyGen's redirect after "I agree": whether it pointed at the gateway, and its answer. */
  redirect: { viaGateway: boolean; status: number } | null;
  retriggerSameRun: boolean | null;
}

/** What the run does to the stack, counted as it goes (the fault answers are summed at the end). */
export type RunStats = Omit<ChaosStats, 'faultAnswers'>;

/** One run's plan, clock and notes, shared by its phases. */
export interface ChaosRun {
  readonly options: ChaosOptions;
  readonly plan: ChaosPlan;
  readonly taskQueue: string;
  /** Scratch folder: the Temporal database, the shared rate gate file. */
  readonly dir: string;
  readonly startedAt: number;
  /** The machine's load averages (1, 5, 15 min) when the run began: other work on the machine. */
  readonly loadAtStart: string;
  /** When the chaos clock started (the first HeyGen request); 0 before. */
  t0: number;
  readonly timeline: ChaosReport['timeline'];
  readonly harnessErrors: string[];
  readonly stats: RunStats;
  readonly states: Map<string, GroupState>;
  readonly note: (event: string) => void;
  /** Something the harness itself could not do: fails the run's first check. */
  readonly harnessError: (what: string | null, err: unknown) => void;
}

/** The pieces the run starts; every phase after start-up gets all of them. */
export interface Stack {
  sandbox: Sandbox;
  proxy: RecordingProxy;
  smtp: SmtpCatcher;
  temporal: TemporalServer;
  workers: WorkerPool;
  /** The consent-return gateway's base URL (the workers' PUBLIC_BASE_URL). */
  gatewayUrl: string;
  /** Every line the gateway wrote (for the personal-data scan). */
  gatewayLog: string[];
  /** The codecs of the run's data converter (to read encrypted failures). */
  payloadCodecs: PayloadCodec[];
  connection: Connection;
  client: Client;
}

/** What the run learned from Temporal about the workflows, once they were done. */
export interface Collected {
  finals: GroupFinal[];
  /** By workflow ID, as Temporal stores them. */
  histories: Map<string, HistoryEvent[]>;
  /** Decoded failure texts of activity events, by workflow ID, then event ID. */
  failureTexts: Map<string, Map<string, string>>;
  stuck: StuckWorkflow[];
  openAtEnd: number | string;
  executionsOnQueue: number | string;
}

/** What the stack recorded, taken as it was torn down. */
export interface Recorded {
  ledger: LedgerEntry[];
  consents: ConsentRecord[];
  messages: ReceivedMail[];
  smtpEvents: SmtpEvent[];
  records: ProxyRecord[];
  faultsLeft: FaultSpec[];
  /** Every child process the run started, and those still running after the teardown. */
  children: ChildProcess[];
  stillRunning: ChildProcess[];
}
