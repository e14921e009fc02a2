/** The chaos run's shapes: its options and report, and what its phases share. */
import type { ChildProcess } from 'node:child_process';

import type { Client, Connection } from '@temporalio/client';

import type { ConsentRecord, FaultSpec, LedgerEntry, Sandbox } from '../heygen-sandbox/index.js';
import type { ReceivedMail, SmtpCatcher } from '../kit/smtp-catcher.js';
import type { TemporalServer } from '../kit/temporal-server.js';
import type { Check, GroupFinal, HistoryEventLike } from './checks.js';
import type { RecordingProxy } from './heygen-proxy.js';
import type { ChaosPlan, PlannedGroup } from './plan.js';
import type { ProxyRecord, RetryAfterAnalysis } from './retry-after.js';
import type { WorkerControl } from './worker-control.js';

/** The product's worker, with HEYGEN_RATE_GATE_FILE set so a restart still knows a Retry-After. */
export const WORKER_ENTRY = 'src/worker.ts';

export interface ChaosOptions {
  workflows: number;
  /** Length of the chaos phase (approvals and faults), ms. */
  durationMs: number;
  seed: number;
  profile: 'full' | 'short';
  /** Longest wait for the workflows after the chaos phase, ms. */
  settleTimeoutMs: number;
  /** HeyGen sandbox rate limit per second and key; default workflows / 2 (full) or workflows (short), at least 10. */
  rateLimitPerSecond?: number;
  log?: (line: string) => void;
}

export interface ChaosStats {
  workerKills: number;
  workerKillsSkipped: number;
  /** 'yes (...)' once the worker was killed right after a long Retry-After. */
  targeted429: string;
  temporalRestarts: number;
  temporalDowntimeMs: number;
  temporalStopsGraceful: number;
  heygenOutageMs: number;
  smtpDowntimeMs: number;
  /** HeyGen answers given by injected faults, by fault kind. */
  faultsInjected: Record<string, number>;
  faultAnswers: number;
  faultsUnused: number;
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
  figures: FigureRow[];
  /** What the run did to the stack, as numbers. */
  stats: ChaosStats;
  retryAfter: RetryAfterAnalysis;
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
  /** Last stderr lines of the worker and the Temporal server, when a check failed. */
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
  retriggerSameRun: boolean | null;
}

/** What the run does to the stack, counted as it goes (the fault answers are summed at the end). */
export type RunStats = Omit<ChaosStats, 'faultAnswers'>;

/** One run's plan, clock and notes, shared by its phases. */
export interface ChaosRun {
  readonly options: ChaosOptions;
  readonly plan: ChaosPlan;
  readonly taskQueue: string;
  /** Scratch folder: the Temporal database, the rate gate file. */
  readonly dir: string;
  readonly startedAt: number;
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
  worker: WorkerControl;
  connection: Connection;
  client: Client;
}

/** What the run learned from Temporal about the workflows, once they were done. */
export interface Collected {
  finals: GroupFinal[];
  histories: Map<string, HistoryEventLike[]>;
  stuck: StuckWorkflow[];
  openAtEnd: number | string;
  executionsOnQueue: number | string;
}

/** What the stack recorded, taken as it was torn down. */
export interface Recorded {
  ledger: LedgerEntry[];
  consents: ConsentRecord[];
  messages: ReceivedMail[];
  records: ProxyRecord[];
  faultsLeft: FaultSpec[];
  /** Every child process the run started, and those still running after the teardown. */
  children: ChildProcess[];
  stillRunning: ChildProcess[];
}
