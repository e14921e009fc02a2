/**
 * Personal data in clear, where it must not be: the histories as Temporal stores them (every byte of
 * every event, payloads included), and the workers' and the gateway's logs. With payload encryption
 * on, a recipient's address, name or consent link may appear only inside encrypted payloads.
 *
 * Searched by pattern rather than by list, so anything of the kind counts, not only what the run
 * knows it handed out: the run gives every recipient an address on its own domain.
 */
import proto from '@temporalio/proto';

import type { HistoryEvent } from './history.js';

const HistoryEventMessage = proto.temporal.api.history.v1.HistoryEvent;

export interface PlaintextPatterns {
  /** The recipients' mail domain, e.g. people.chaos.example. */
  recipientDomain: string;
  /** Names given to recipients, as a pattern, e.g. /Chaos Person \d+/. */
  recipientName: RegExp;
}

export type PlaintextKind = 'address' | 'name' | 'consent_link' | 'return_link';

export interface PlaintextHit {
  where: string;
  kind: PlaintextKind;
  /** The match with its middle masked, enough to find it again. */
  sample: string;
}

export interface PlaintextScan {
  histories: number;
  events: number;
  payloads: number;
  encryptedPayloads: number;
  /** Payloads in clear, by where they sit (search attributes are indexed by the server, so in clear). */
  payloadsInClear: Record<string, number>;
  historyHits: PlaintextHit[];
  logLines: number;
  logHits: PlaintextHit[];
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function patternsOf(p: PlaintextPatterns): Array<[PlaintextKind, RegExp]> {
  return [
    // A whole address: a local part before the domain (a masked `a***@…` has none).
    ['address', new RegExp(`[A-Za-z0-9._%+-]+@${escape(p.recipientDomain)}`, 'g')],
    ['name', new RegExp(p.recipientName.source, 'g')],
    // HeyGen's (the sandbox's) consent links carry a secret token.
    ['consent_link', /cst_[0-9a-f]{16,}/g],
    // The gateway's signed return links.
    ['return_link', /consent-return\?t=[A-Za-z0-9_.-]{8,}/g],
  ];
}

function mask(text: string): string {
  return text.length <= 8 ? '***' : `${text.slice(0, 4)}…${text.slice(-3)}`;
}

function search(
  text: string,
  where: string,
  patterns: Array<[PlaintextKind, RegExp]>,
  into: PlaintextHit[],
): void {
  for (const [kind, pattern] of patterns) {
    pattern.lastIndex = 0;
    for (const match of text.matchAll(pattern)) into.push({ where, kind, sample: mask(match[0]) });
  }
}

const ENCRYPTED = 'binary/encrypted';

/** Counts the payloads under `value`, by whether the codec encrypted them, naming where the clear ones sit. */
function countPayloads(value: unknown, path: string, scan: PlaintextScan, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 30 || value instanceof Uint8Array) return;
  const o = value as Record<string, unknown>;
  if (o.data instanceof Uint8Array && o.metadata !== null && typeof o.metadata === 'object') {
    scan.payloads += 1;
    const encoding = (o.metadata as Record<string, unknown>).encoding;
    const text = encoding instanceof Uint8Array ? Buffer.from(encoding).toString('utf8') : '';
    if (text === ENCRYPTED) scan.encryptedPayloads += 1;
    else {
      const where = path.includes('searchAttributes')
        ? 'search attributes'
        : // e.g. event.markerRecordedEventAttributes.details.data.payloads.0 → markerRecorded.details.data
          path
            .replace(/^event\./, '')
            .replace(/EventAttributes/, '')
            .replace(/\.payloads\.\d+$/, '');
      scan.payloadsInClear[where] = (scan.payloadsInClear[where] ?? 0) + 1;
    }
    return;
  }
  for (const [key, child] of Object.entries(o)) countPayloads(child, `${path}.${key}`, scan, depth + 1);
}

export function scanForPlaintext(
  histories: ReadonlyMap<string, readonly HistoryEvent[]>,
  logs: ReadonlyArray<{ source: string; lines: readonly string[] }>,
  patterns: PlaintextPatterns,
): PlaintextScan {
  const compiled = patternsOf(patterns);
  const scan: PlaintextScan = {
    histories: histories.size,
    events: 0,
    payloads: 0,
    encryptedPayloads: 0,
    payloadsInClear: {},
    historyHits: [],
    logLines: 0,
    logHits: [],
  };
  for (const [workflowId, events] of histories) {
    for (const event of events) {
      scan.events += 1;
      // The event as the server stores it: every string and every payload's bytes.
      const bytes = HistoryEventMessage.encode(HistoryEventMessage.fromObject(event)).finish();
      const type = Object.keys(event).find(
        (k) => k.endsWith('EventAttributes') && event[k as keyof HistoryEvent],
      );
      search(
        Buffer.from(bytes).toString('latin1'),
        `${workflowId} event ${String(event.eventId)} ${type ?? ''}`,
        compiled,
        scan.historyHits,
      );
      countPayloads(event, 'event', scan);
    }
  }
  for (const { source, lines } of logs) {
    scan.logLines += lines.length;
    lines.forEach((line, i) => search(line, `${source} line ${i + 1}`, compiled, scan.logHits));
  }
  return scan;
}
