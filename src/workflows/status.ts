/**
 * What the workflow shows about itself: the `status` query, the current details in the Temporal UI
 * (markdown), and the ConsentPhase/ConsentOutcome/ConsentBlocked search attributes.
 */
import { setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import {
  AvatarGroupIdAttribute,
  ConsentBlockedAttribute,
  ConsentOutcomeAttribute,
  ConsentPhaseAttribute,
  MAX_LISTED_POLL_TIMES,
  formatDuration,
  recipientFingerprint,
} from '../contract/definitions.js';
import type { ConsentStatusView, PollWindowView, ResolvedPolicy } from '../contract/index.js';
import { escapeMarkdown } from '../rules/markdown.js';
import type { ConsentState } from './consent-state.js';
import { pollOffsetsWithin } from './polling.js';
import type { BackoffSchedule } from './polling.js';

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Since consent-flow-v2, the phases a consent passes through in seconds (looking, requesting,
 * emailing, refreshing) are not upserted: each upsert is a billable action and a history event, and
 * an operator looks for consents that wait, are blocked, or are done. A block is upserted in any phase.
 */
const PASSING_PHASES: ReadonlySet<string> = new Set(['looking', 'requesting', 'emailing', 'refreshing']);

export class StatusBoard {
  /** Search attributes are kept up to date only when the starter set AvatarGroupId (they are registered then). */
  private readonly searchAttributesEnabled =
    workflowInfo().typedSearchAttributes.get(AvatarGroupIdAttribute) !== undefined;
  private readonly fewerUpserts: boolean;
  private published: { phase: string; outcome: string; blocked: string };

  constructor(
    private readonly groupId: string,
    private readonly inputRecipient: { email: string },
    private readonly policy: ResolvedPolicy,
    private readonly schedule: BackoffSchedule,
    private readonly state: ConsentState,
    v2: boolean,
  ) {
    this.fewerUpserts = this.searchAttributesEnabled && v2;
    // With fewer upserts, a new consent starts as the starter set it: not blocked.
    this.published = { phase: '', outcome: '', blocked: this.fewerUpserts ? 'none' : '' };
  }

  /** The `status` query's answer. */
  view(): ConsentStatusView {
    const s = this.state;
    return {
      groupId: this.groupId,
      phase: s.phase,
      outcome: s.outcome,
      consentStatus: s.consentStatus,
      avatarStatus: s.avatarStatus,
      polls: s.polls,
      nextPollAt: s.nextPollAtMs === null ? null : iso(s.nextPollAtMs),
      pollWindow: this.pollWindowView(),
      asOf: iso(Date.now()),
      lastError: s.lastError,
      blocked: s.blocked,
      linkGeneration: s.generation,
      linkExpiresAt: s.linkIssuedAtMs === null ? null : iso(s.linkIssuedAtMs + this.policy.linkTtlMs),
      emailsSent: s.emailsSent,
      deadline: iso(s.deadlineAtMs),
      recipientFingerprint: recipientFingerprint((s.recipient ?? this.inputRecipient).email),
    };
  }

  /** The open window's poll times, from the same schedule Temporal's retry policy follows. */
  private pollWindowView(): PollWindowView | null {
    const window = this.state.pollWindow;
    if (!window) return null;
    const offsets = pollOffsetsWithin(
      window.closesAtMs - window.openedAtMs,
      window.firstIntervalMs,
      this.schedule,
    );
    const listed = offsets.slice(0, MAX_LISTED_POLL_TIMES);
    const lastGap = (listed.at(-1) ?? 0) - (listed.at(-2) ?? 0);
    return {
      openedAt: iso(window.openedAtMs),
      closesAt: iso(window.closesAtMs),
      pollsBefore: this.state.polls,
      pollTimes: listed.map((offset) => iso(window.openedAtMs + offset)),
      thenEveryMs:
        offsets.length > listed.length
          ? Math.min(this.schedule.maxIntervalMs, lastGap * this.schedule.backoffCoefficient)
          : 0,
    };
  }

  /** Refreshes the UI's current details (markdown; every value from outside is escaped). */
  showDetails(): void {
    const s = this.state;
    const text = (value: string | null) => escapeMarkdown(value ?? 'null');
    const lines = [
      `**Phase:** ${s.phase}${s.outcome ? ` → **${s.outcome}**` : ''}${s.blocked ? ` (blocked: ${s.blocked})` : ''}`,
      `**consent_status:** ${text(s.consentStatus)} · **status:** ${text(s.avatarStatus)}`,
      `**Polls:** ${s.polls}${s.nextPollAtMs !== null ? ` · next poll about ${iso(s.nextPollAtMs)}` : ''}`,
    ];
    const window = this.pollWindowView();
    if (window) {
      const times = window.pollTimes.map((t) => t.slice(11, 19)).join(', ');
      const then = window.thenEveryMs > 0 ? `, then every ${formatDuration(window.thenEveryMs)}` : '';
      lines.push(`**This window** (until ${window.closesAt}) polls at ${times}${then} (UTC)`);
    }
    lines.push(
      `**Link:** generation ${s.generation}${s.linkIssuedAtMs !== null ? `, refreshed/expires ${iso(s.linkIssuedAtMs + this.policy.linkTtlMs)}` : ''} · **emails sent:** ${s.emailsSent}`,
      `**Deadline:** ${iso(s.deadlineAtMs)}`,
    );
    if (s.lastError) lines.push(`**Last error:** ${text(s.lastError.code)}: ${text(s.lastError.message)}`);
    setCurrentDetails(lines.join('\n\n'));
  }

  /**
   * The current details, and the search attributes when they changed (upserted only then, so
   * history does not grow with every window).
   */
  publish(): void {
    this.showDetails();
    if (!this.searchAttributesEnabled) return;
    const s = this.state;
    const next = { phase: s.phase, outcome: s.outcome ?? '', blocked: s.blocked ?? 'none' };
    const p = this.published;
    if (next.phase === p.phase && next.outcome === p.outcome && next.blocked === p.blocked) return;
    if (this.fewerUpserts && PASSING_PHASES.has(next.phase) && next.blocked === p.blocked) return;
    this.published = next;
    upsertSearchAttributes([
      { key: ConsentPhaseAttribute, value: next.phase },
      { key: ConsentBlockedAttribute, value: next.blocked },
      ...(next.outcome ? [{ key: ConsentOutcomeAttribute, value: next.outcome }] : []),
    ]);
  }
}
