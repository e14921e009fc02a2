/**
 * One logger for the worker and its activities: one JSON object per line, level from LOG_LEVEL.
 * Known secrets are masked in every line as a last line of defence (nothing should log them anyway).
 */
import type { LogLevel } from '@temporalio/common';
import { DefaultLogger } from '@temporalio/worker';
import type { LogEntry } from '@temporalio/worker';

function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join('****');
  }
  return out;
}

function safeValue(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** Formats one entry as a JSON line; exported for tests. */
export function formatLogEntry(entry: LogEntry, secrets: readonly string[] = []): string {
  const meta = Object.fromEntries(Object.entries(entry.meta ?? {}).map(([k, v]) => [k, safeValue(v)]));
  const line = JSON.stringify({
    time: new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString(),
    level: entry.level.toLowerCase(),
    msg: entry.message,
    ...meta,
  });
  return maskSecrets(line, secrets);
}

export function createJsonLogger(
  level: LogLevel,
  secrets: readonly string[] = [],
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): DefaultLogger {
  return new DefaultLogger(level, (entry) => write(formatLogEntry(entry, secrets)));
}
