/**
 * The email invariants of a chaos run, from what the SMTP server received and recorded (its
 * accepts, refusals and dropped replies), the HeyGen links, and each workflow's result and history.
 *
 * - Every email a workflow counts as sent arrived, with one of its group's links.
 * - A link generation whose email did not arrive (or arrived but was not counted) is excused only by
 *   evidence from the record, listed in the report: the decision came with the link, the mail server
 *   refused the address for good, the deadline cut the email step while faults kept it failing, or
 *   the link itself came back at the deadline. Nothing else: a lost email cannot hide behind an outcome.
 * - The email guarantee: one message (one Message-ID) per link generation; the server may receive
 *   that message again only when a send was delivered but its acknowledgement lost, and each extra
 *   copy is explained (reply dropped after DATA, a worker killed, Temporal down) or the check fails.
 */
import type { ConsentRecord } from '../heygen-sandbox/index.js';
import { consentLinkIn } from '../heygen-sandbox/index.js';
import type { ReceivedMail, SmtpEvent } from '../kit/smtp-catcher.js';
import type { Check, GroupFinal } from './checks.js';
import { list } from './checks.js';
import { activitySteps } from './history.js';
import type { ActivityStep, HistoryEvent } from './history.js';

/** What broke while emails were on their way, epoch ms. */
export interface Disruptions {
  workerKills: readonly number[];
  temporalDown: ReadonlyArray<readonly [number, number]>;
  smtpDown: ReadonlyArray<readonly [number, number]>;
}

export type ExcuseKind =
  | 'decided_before_email'
  | 'refused_by_mail_server'
  | 'deadline_while_email_retried'
  | 'link_at_deadline'
  | 'delivered_unacknowledged';

/** A link generation without the email the workflow counts, and the evidence that explains it. */
export interface Excuse {
  groupId: string;
  generation: number;
  kind: ExcuseKind;
  evidence: string;
}

export type CopyCause =
  'reply_dropped' | 'worker_killed' | 'temporal_down' | 'smtp_down' | 'cut_by_deadline' | 'unexplained';

export interface EmailFigures {
  messages: number;
  distinctMessageIds: number;
  /** Copies beyond the first of a Message-ID. */
  duplicates: number;
  duplicatesByCause: Record<CopyCause, number>;
  duplicatesWithDifferentContent: number;
  /** The most distinct messages one person received for one link generation (the guarantee: 1). */
  maxMessagesPerGeneration: number;
  /** The most copies of one message. */
  maxCopiesPerMessage: number;
  linkGenerations: number;
  recipientsWithLink: number;
  recipientsEmailed: number;
  excusesByKind: Record<ExcuseKind, number>;
  strayMessages: number;
}

export interface EmailInput {
  messages: readonly ReceivedMail[];
  smtpEvents: readonly SmtpEvent[];
  consents: readonly ConsentRecord[];
  finals: readonly GroupFinal[];
  /** Histories by group ID. */
  histories: ReadonlyMap<string, readonly HistoryEvent[]>;
  /** Decoded failure texts by group ID, then event ID (see history.ts failureTexts). */
  failureTexts?: ReadonlyMap<string, ReadonlyMap<string, string>>;
  disruptions: Disruptions;
  /** Times in the evidence are shown from here (the chaos clock), epoch ms. */
  t0: number;
}

/**
 * Local part `avatar-consent.<run>.g<N>[.r<K>]`: the link generation a message belongs to, and
 * whether it is an operator's resend (a message of its own by design, outside the guarantee).
 */
function generationOf(message: ReceivedMail): { generation: number; resend: boolean } | null {
  const match = /\.g(\d+)(\.r\d+)?@/.exec(message.messageId ?? '');
  return match ? { generation: Number(match[1]), resend: match[2] !== undefined } : null;
}

const overlaps = (from: number, to: number, spans: Disruptions['temporalDown']): boolean =>
  spans.some(([a, b]) => a <= to && b >= from);

/** What was broken between `from` and `to`, in words (empty when nothing was). */
function disruptionsBetween(from: number, to: number, d: Disruptions, rel: (t: number) => string): string[] {
  const found: string[] = [];
  const kills = d.workerKills.filter((t) => t >= from && t <= to);
  if (kills.length > 0) found.push(`worker SIGKILL at ${kills.map(rel).join(', ')}`);
  for (const [a, b] of d.temporalDown)
    if (a <= to && b >= from) found.push(`Temporal down ${rel(a)}–${rel(b)}`);
  for (const [a, b] of d.smtpDown) if (a <= to && b >= from) found.push(`SMTP down ${rel(a)}–${rel(b)}`);
  return found;
}

/** Why the copy after `prev` exists: its predecessor's acknowledgement was lost, somehow. */
function copyCause(prev: ReceivedMail, nextAt: number, d: Disruptions): CopyCause {
  if (prev.replyDropped) return 'reply_dropped';
  if (d.workerKills.some((t) => t >= prev.receivedAt && t <= nextAt)) return 'worker_killed';
  if (overlaps(prev.receivedAt, nextAt, d.temporalDown)) return 'temporal_down';
  // Stopping the server cuts open sessions: one may have been taken just before its 250.
  if (overlaps(prev.receivedAt, nextAt, d.smtpDown)) return 'smtp_down';
  return 'unexplained';
}

export function checkEmails(input: EmailInput): {
  checks: Check[];
  figures: EmailFigures;
  excuses: Excuse[];
} {
  const { messages, smtpEvents, consents, finals, histories, disruptions: d, t0 } = input;
  const rel = (t: number): string => `+${((t - t0) / 1000).toFixed(1)} s`;
  const byRecipient = new Map<string, ReceivedMail[]>();
  for (const message of messages)
    for (const to of message.to)
      byRecipient.set(to.toLowerCase(), [...(byRecipient.get(to.toLowerCase()) ?? []), message]);

  const figures: EmailFigures = {
    messages: messages.length,
    distinctMessageIds: new Set(messages.map((m) => m.messageId ?? `(none:${m.id})`)).size,
    duplicates: 0,
    duplicatesByCause: {
      reply_dropped: 0,
      worker_killed: 0,
      temporal_down: 0,
      smtp_down: 0,
      cut_by_deadline: 0,
      unexplained: 0,
    },
    duplicatesWithDifferentContent: 0,
    maxMessagesPerGeneration: 0,
    maxCopiesPerMessage: 0,
    linkGenerations: 0,
    recipientsWithLink: 0,
    recipientsEmailed: 0,
    excusesByKind: {
      decided_before_email: 0,
      refused_by_mail_server: 0,
      deadline_while_email_retried: 0,
      link_at_deadline: 0,
      delivered_unacknowledged: 0,
    },
    strayMessages: 0,
  };
  const known = new Set(finals.map((f) => f.email.toLowerCase()));
  figures.strayMessages = [...byRecipient.keys()].filter((to) => !known.has(to)).length;

  const problems: string[] = [];
  const guaranteeProblems: string[] = [];
  const excuses: Excuse[] = [];
  const excuse = (e: Excuse): void => {
    excuses.push(e);
    figures.excusesByKind[e.kind] += 1;
  };

  for (const final of finals) {
    if (final.result === null) continue;
    const { result } = final;
    const received = (byRecipient.get(final.email.toLowerCase()) ?? []).sort((a, b) => a.id - b.id);
    const sent = result.emailsSent;
    const generations = result.linkGeneration;
    figures.linkGenerations += generations;
    if (generations > 0) figures.recipientsWithLink += 1;
    if (received.length > 0) figures.recipientsEmailed += 1;
    const steps = activitySteps(histories.get(final.groupId) ?? [], input.failureTexts?.get(final.groupId));
    const closeAt = final.closedAt ?? Number.MAX_SAFE_INTEGER;

    // Each message: one of the group's links; copies of a Message-ID identical, and each one explained.
    const groupLinks = new Set(consents.filter((c) => c.groupId === final.groupId).map((c) => c.url));
    const byId = new Map<string, ReceivedMail[]>();
    for (const message of received) {
      const id = message.messageId ?? '(missing Message-ID)';
      byId.set(id, [...(byId.get(id) ?? []), message]);
      const link = consentLinkIn(message.text);
      if (link === null || !groupLinks.has(link))
        problems.push(
          `${final.groupId}: an email carries ${link ?? 'no link'}, not one of the group's HeyGen links`,
        );
    }
    const idsByGeneration = new Map<number, Set<string>>();
    for (const [id, copies] of byId) {
      const parsed = generationOf(copies[0]!);
      if (parsed === null)
        guaranteeProblems.push(`${final.groupId}: ${id} is not a Message-ID the workflow makes`);
      else if (!parsed.resend)
        idsByGeneration.set(parsed.generation, (idsByGeneration.get(parsed.generation) ?? new Set()).add(id));
      figures.maxCopiesPerMessage = Math.max(figures.maxCopiesPerMessage, copies.length);
      for (let k = 1; k < copies.length; k++) {
        figures.duplicates += 1;
        if (copies[k]!.text !== copies[0]!.text || copies[k]!.subject !== copies[0]!.subject)
          figures.duplicatesWithDifferentContent += 1;
        const cause = copyCause(copies[k - 1]!, copies[k]!.receivedAt, d);
        figures.duplicatesByCause[cause] += 1;
        if (cause === 'unexplained')
          guaranteeProblems.push(
            `${final.groupId}: copy ${k + 1} of ${id} at ${rel(copies[k]!.receivedAt)} — no dropped reply, worker kill or Temporal outage explains it`,
          );
      }
    }
    for (const [generation, ids] of idsByGeneration) {
      figures.maxMessagesPerGeneration = Math.max(figures.maxMessagesPerGeneration, ids.size);
      if (ids.size > 1)
        guaranteeProblems.push(
          `${final.groupId}: ${ids.size} different messages for link generation ${generation}`,
        );
    }

    // Generations 1..sent were emailed and counted: each must have arrived.
    for (let g = 1; g <= sent; g++)
      if (!idsByGeneration.has(g))
        problems.push(`${final.groupId}: the email of link g${g} was counted as sent but never arrived`);
    if (sent > generations)
      problems.push(`${final.groupId}: ${sent} emails counted for ${generations} link(s)`);

    // Later generations: only the last, and only with evidence.
    const lastLink = steps.filter((s) => s.type === 'requestConsentLink' && s.end === 'completed').at(-1);
    const emailAfterLink = steps
      .filter(
        (s) =>
          s.type === 'sendConsentEmail' && lastLink !== undefined && s.scheduledAt >= (lastLink.endedAt ?? 0),
      )
      .at(-1);
    for (let g = sent + 1; g <= generations; g++) {
      if (g < generations) {
        problems.push(`${final.groupId}: link g${g} was never emailed, and a later link was made`);
        continue;
      }
      const arrived = [...(idsByGeneration.get(g) ?? [])].flatMap((id) => byId.get(id) ?? []);
      const found =
        arrived.length > 0
          ? unacknowledged(final.groupId, g, arrived, emailAfterLink, closeAt, d, rel)
          : missing({ final, g, lastLink, emailAfterLink, smtpEvents, d, rel });
      if (typeof found === 'string') problems.push(found);
      else excuse(found);
    }
  }
  if (figures.strayMessages > 0)
    problems.push(`${figures.strayMessages} recipient(s) not in the run got mail`);
  if (figures.duplicatesWithDifferentContent > 0)
    guaranteeProblems.push(
      `${figures.duplicatesWithDifferentContent} copies share a Message-ID but differ in content`,
    );

  const explained = figures.duplicates - figures.duplicatesByCause.unexplained;
  return {
    figures,
    excuses,
    checks: [
      {
        name: 'every email a workflow counts arrived; every link without one is excused by evidence (listed)',
        ok: problems.length === 0,
        detail:
          problems.length === 0
            ? `${figures.recipientsEmailed} recipients emailed, ${figures.messages} messages; ${excuses.length} excused: ${describeCounts(figures.excusesByKind)}`
            : list(problems),
      },
      {
        name: 'one message per link generation; every extra copy is a lost acknowledgement (same Message-ID)',
        ok: guaranteeProblems.length === 0,
        detail:
          guaranteeProblems.length === 0
            ? `at most ${figures.maxMessagesPerGeneration} message per generation, at most ${figures.maxCopiesPerMessage} copies of one; ${explained} extra copies, each explained: ${describeCounts(figures.duplicatesByCause)}`
            : list(guaranteeProblems),
      },
    ],
  };
}

function describeCounts(counts: Record<string, number>): string {
  const parts = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `${n} ${kind.replaceAll('_', ' ')}`);
  return parts.length === 0 ? 'none' : parts.join(', ');
}

/** The last generation's message arrived but the workflow does not count it: its acknowledgement was lost at the end. */
function unacknowledged(
  groupId: string,
  generation: number,
  copies: readonly ReceivedMail[],
  emailStep: ActivityStep | undefined,
  closeAt: number,
  d: Disruptions,
  rel: (t: number) => string,
): Excuse | string {
  const last = copies.at(-1)!;
  const cut = emailStep?.end === 'timed_out' && (emailStep.endedAt ?? 0) >= last.receivedAt - 1_000;
  const cause = copyCause(last, closeAt, d);
  if (cause === 'unexplained' && !cut)
    return `${groupId}: the message of link g${generation} arrived at ${rel(last.receivedAt)} but the workflow does not count it, and nothing explains why`;
  const why =
    cause === 'reply_dropped'
      ? 'the server dropped the connection before its 250'
      : cause === 'unexplained'
        ? `the deadline ended the email step at ${rel(emailStep!.endedAt!)}`
        : cause.replaceAll('_', ' ');
  return {
    groupId,
    generation,
    kind: 'delivered_unacknowledged',
    evidence: `delivered at ${rel(last.receivedAt)}, never acknowledged: ${why}`,
  };
}

/** The last generation's email never arrived: evidence from the record, or the problem. */
function missing(args: {
  final: GroupFinal;
  g: number;
  lastLink: ActivityStep | undefined;
  emailAfterLink: ActivityStep | undefined;
  smtpEvents: readonly SmtpEvent[];
  d: Disruptions;
  rel: (t: number) => string;
}): Excuse | string {
  const { final, g, lastLink, emailAfterLink, smtpEvents, d, rel } = args;
  const outcome = final.result!.outcome;
  const base = { groupId: final.groupId, generation: g };
  const address = final.email.toLowerCase();
  if (outcome === 'email_undeliverable') {
    const refusal = smtpEvents.find(
      (e) =>
        e.kind === 'rejected' &&
        (e.code ?? 0) >= 500 &&
        e.recipients.some((r) => r.toLowerCase() === address),
    );
    return refusal
      ? {
          ...base,
          kind: 'refused_by_mail_server',
          evidence: `${refusal.code} at ${refusal.stage.toUpperCase()} at ${rel(refusal.at)}`,
        }
      : `${final.groupId}: ended email_undeliverable, but the mail server never refused the address`;
  }
  if (
    emailAfterLink &&
    ['timed_out', 'canceled'].includes(emailAfterLink.end) &&
    ['expired', 'canceled'].includes(outcome)
  ) {
    const from = emailAfterLink.scheduledAt;
    const to = emailAfterLink.endedAt ?? from;
    const refusals = smtpEvents.filter(
      (e) =>
        e.at >= from &&
        e.at <= to &&
        e.kind !== 'accepted' &&
        e.recipients.some((r) => r.toLowerCase() === address),
    );
    const faults = [
      ...(emailAfterLink.lastFailure ? [`last failure: ${emailAfterLink.lastFailure.slice(0, 120)}`] : []),
      ...(refusals.length > 0 ? [`${refusals.length} refusal(s)/drop(s) of this address`] : []),
      ...disruptionsBetween(from, to, d, rel),
    ];
    // A step the deadline cut within seconds needs no fault: there was no time.
    if (faults.length === 0 && to - from > 5_000)
      return `${final.groupId}: its email step ran ${((to - from) / 1000).toFixed(1)} s until ${outcome} with no failure and nothing broken: a lost email?`;
    return {
      ...base,
      kind: 'deadline_while_email_retried',
      evidence: `email step ${rel(from)}–${rel(to)} ended ${emailAfterLink.end} by the ${outcome === 'expired' ? 'deadline' : 'cancel'}; ${faults.join('; ') || 'cut within seconds'}`,
    };
  }
  const linkAt = lastLink?.endedAt ?? null;
  if (!emailAfterLink && linkAt !== null) {
    if (
      ['approved', 'failed', 'not_required'].includes(outcome) &&
      final.decidedAt !== null &&
      final.decidedAt <= linkAt
    )
      return {
        ...base,
        kind: 'decided_before_email',
        evidence: `decided at ${rel(final.decidedAt)}; link g${g} came back at ${rel(linkAt)} with the decision, so no email`,
      };
    if (outcome === 'expired' && final.deadlineAt !== null && linkAt >= final.deadlineAt - 1_000)
      return {
        ...base,
        kind: 'link_at_deadline',
        evidence: `link g${g} came back at ${rel(linkAt)}, the deadline was ${rel(final.deadlineAt)}: no time left to email it`,
      };
  }
  return `${final.groupId}: link g${g} was never emailed (outcome ${outcome}, ${final.result!.polls} polls) and the record holds no reason`;
}
