/**
 * One logger for the worker and its activities: one JSON object per line, level from LOG_LEVEL.
 * Known secrets are masked in every line as a last line of defence (nothing should log them anyway).
 */
import type { LogLevel, LogMetadata } from '@temporalio/common';
import { DefaultLogger } from '@temporalio/worker';
import type { LogEntry } from '@temporalio/worker';
import { maskSecrets } from './mask-secrets.js';

function safeValue(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/**
 * Masks every string (values and keys, at any depth) *before* JSON escaping: once escaped, a secret
 * containing `"`, `\` or a control character no longer appears verbatim in the line.
 */
function maskingReplacer(secrets: readonly string[]): (key: string, value: unknown) => unknown {
  return (_key, value) => {
    if (typeof value === 'string') return maskSecrets(value, secrets);
    if (typeof value === 'bigint') return value.toString();
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      // Rebuilt only to mask the keys; JSON.stringify then visits the values through this replacer.
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [maskSecrets(k, secrets), v]));
    }
    return value;
  };
}

export interface JsonLogOptions {
  /** Keep activities' task tokens in their lines (LOG_TASK_TOKENS): long, and useful only for debugging. */
  taskTokens?: boolean;
}

/** Formats one entry as a JSON line; exported for tests. */
export function formatLogEntry(
  entry: LogEntry,
  secrets: readonly string[] = [],
  options: JsonLogOptions = {},
): string {
  const meta = Object.fromEntries(
    Object.entries(entry.meta ?? {})
      .filter(([k]) => options.taskTokens || k !== 'taskToken')
      .map(([k, v]) => [k, safeValue(v)]),
  );
  const line = JSON.stringify(
    {
      time: new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString(),
      level: entry.level.toLowerCase(),
      msg: entry.message,
      ...meta,
    },
    maskingReplacer(secrets),
  );
  // Second pass over the finished line: catches what is not a string, e.g. a numeric secret logged as a number.
  return maskSecrets(line, secrets);
}

/**
 * What the SDK reports about states that are normal for this worker: shown at debug level, not as
 * warnings. The HeyGen task queue's worker runs activities only, so it never polls for workflows.
 */
const NORMAL_STATES: readonly RegExp[] = [/^No workflows registered, not polling for workflow tasks/];

class JsonLogger extends DefaultLogger {
  override log(level: LogLevel, message: string, meta?: LogMetadata): void {
    const normal =
      (level === 'WARN' || level === 'INFO') && NORMAL_STATES.some((state) => state.test(message));
    super.log(normal ? 'DEBUG' : level, message, meta);
  }
}

export function createJsonLogger(
  level: LogLevel,
  secrets: readonly string[] = [],
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  options: JsonLogOptions = {},
): DefaultLogger {
  return new JsonLogger(level, (entry) => write(formatLogEntry(entry, secrets, options)));
}
