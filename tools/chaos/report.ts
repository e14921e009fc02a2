/** Renders a chaos report as a plain-text table and writes it as JSON under artifacts/. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { ChaosReport } from './run.js';

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

export function formatReport(report: ChaosReport): string {
  const lines: string[] = [];
  const rows = [...report.headline, ...report.figures];
  const figureWidth = Math.max(...rows.map((f) => f.figure.length), 10) + 2;
  let section = '';
  lines.push(`avatar-consent chaos run — ${report.ok ? 'PASS' : 'FAIL'} (${report.startedAt})`);
  lines.push(`machine load (1/5/15 min) at the start: ${report.load.start}; at the end: ${report.load.end}`);
  for (const row of rows) {
    if (row.section !== section) {
      section = row.section;
      lines.push('', `${section}`, `${'-'.repeat(section.length)}`);
    }
    lines.push(`  ${pad(row.figure, figureWidth)} ${String(row.value)}`);
  }
  lines.push('', 'invariants', '----------');
  for (const check of report.checks) {
    lines.push(`  ${check.ok ? 'PASS' : 'FAIL'}  ${check.name}`, `        ${check.detail}`);
  }
  if (report.retryAfter.examples.length > 0) {
    lines.push('', 'Retry-After violations (first few)');
    for (const v of report.retryAfter.examples) {
      lines.push(
        `  ${v.class}: ${v.request.method} ${v.request.path} from pid ${v.request.pid} ` +
          `${v.earlyByMs} ms before Retry-After ${v.rateLimited.retryAfter} (429 to pid ${v.rateLimited.pid}) ended`,
      );
    }
  }
  if (report.excuses.length > 0) {
    lines.push('', 'link generations without a counted email, and the evidence for each');
    for (const e of report.excuses.slice(0, 40))
      lines.push(`  ${e.groupId} g${e.generation}: ${e.kind.replaceAll('_', ' ')} — ${e.evidence}`);
    if (report.excuses.length > 40) lines.push(`  … ${report.excuses.length - 40} more in the JSON report`);
  }
  const hits = [...report.plaintext.historyHits, ...report.plaintext.logHits];
  if (hits.length > 0) {
    lines.push('', 'personal data in clear (first few)');
    for (const h of hits.slice(0, 20)) lines.push(`  ${h.kind} ${h.sample} in ${h.where}`);
  }
  if (report.slowestApprovals.length > 0) {
    lines.push('', 'slowest approvals (approval → workflow done)');
    for (const a of report.slowestApprovals) {
      lines.push(
        `  ${a.groupId}: ${a.seconds} s (link generation ${a.linkGeneration}, ${a.activityTimeouts} activity timeout(s) in its history)`,
      );
    }
    const slowest = report.slowestApprovals[0];
    if (slowest && slowest.history.length > 0) {
      lines.push(`  history of ${slowest.groupId} from the approval on:`);
      for (const line of slowest.history.slice(0, 25)) lines.push(`    ${line}`);
    }
  }
  if (report.wrongGroups.length > 0) {
    lines.push('', 'groups with the wrong outcome');
    for (const g of report.wrongGroups.slice(0, 20)) {
      lines.push(`  ${g.groupId} (${g.fate}): expected ${g.expected}, got ${g.outcome ?? g.status}`);
    }
  }
  return lines.join('\n');
}

/** Writes `<dir>/chaos-<timestamp>.json` and returns its path. */
export function writeReport(report: ChaosReport, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `chaos-${report.startedAt.replace(/[:.]/g, '-')}.json`);
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
  return path;
}
