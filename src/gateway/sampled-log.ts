/**
 * Sampled logging for what a flood produces (refused requests, replayed links): the first few
 * lines per reason per interval are written, the rest only counted, and one summary line per
 * interval reports how many were left out. However many requests arrive, an interval writes at
 * most `perReason` lines for each reason plus one, so a flood cannot fill the disk.
 */
import type { GatewayLogger, LogFields } from './server.js';

export interface SampledLogOptions {
  /** Lines written per reason per interval. Default 5. */
  perReason?: number;
  /** Length of an interval in ms. Default 60 000. */
  intervalMs?: number;
  /** Clock that decides when an interval ends (tests). Default Date.now. */
  now?: () => number;
}

export interface SampledLog {
  info(reason: string, message: string, fields?: LogFields): void;
  warn(reason: string, message: string, fields?: LogFields): void;
  error(reason: string, message: string, fields?: LogFields): void;
  /** Writes the summary line (if anything was left out) and starts a new interval. */
  flush(): void;
  /** flush(), and no more timers. */
  close(): void;
}

export function createSampledLog(logger: GatewayLogger, options: SampledLogOptions = {}): SampledLog {
  const perReason = options.perReason ?? 5;
  const intervalMs = options.intervalMs ?? 60_000;
  const now = options.now ?? Date.now;

  let intervalStart: number | undefined;
  const written = new Map<string, number>();
  const skipped = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  function flush(): void {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (skipped.size > 0) {
      let total = 0;
      for (const count of skipped.values()) total += count;
      logger.warn('refused or repeated requests not logged one by one', {
        suppressed: total,
        reasons: [...skipped].map(([reason, count]) => `${reason}=${count}`).join(', '),
        perReason,
        intervalMs,
      });
    }
    written.clear();
    skipped.clear();
    intervalStart = undefined;
  }

  function note(level: 'info' | 'warn' | 'error', reason: string, message: string, fields?: LogFields): void {
    const at = now();
    if (intervalStart !== undefined && at - intervalStart >= intervalMs) flush();
    intervalStart ??= at;
    const count = (written.get(reason) ?? 0) + 1;
    if (count <= perReason) {
      written.set(reason, count);
      logger[level](message, { ...fields, reason });
      return;
    }
    skipped.set(reason, (skipped.get(reason) ?? 0) + 1);
    // The summary must not wait for the next refusal, which may never come.
    if (timer === undefined && !closed) {
      timer = setTimeout(flush, intervalMs);
      timer.unref();
    }
  }

  return {
    info: (reason, message, fields) => note('info', reason, message, fields),
    warn: (reason, message, fields) => note('warn', reason, message, fields),
    error: (reason, message, fields) => note('error', reason, message, fields),
    flush,
    close: () => {
      closed = true;
      flush();
    },
  };
}
