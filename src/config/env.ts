/**
 * The config kit: every process of the project (worker, gateway, codec server, starter, sandbox,
 * dev stack) reads its environment through these helpers, so the same rules hold everywhere:
 * a blank variable is unset, every problem is reported at once by variable name, and no value
 * (it may be a secret) is ever printed.
 */
import { z } from 'zod';
import { formatIssues } from '../rules/issues.js';

export { formatIssues };

/** Docker env files and CI often define variables empty: a blank value means "unset". */
export function unsetIfBlank(value: unknown): unknown {
  return typeof value === 'string' && value.trim() === '' ? undefined : value;
}

/** A variable's schema, with blank meaning unset (so `.optional()` and `.default()` apply). */
export function envVar<T extends z.ZodType>(schema: T) {
  return z.preprocess(unsetIfBlank, schema);
}

/** The environment without its blank variables. */
export function withoutBlanks(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1].trim() !== '',
    ),
  );
}

/** A TCP port, given as digits. */
export function portVar(fallback: number) {
  return envVar(
    z
      .string()
      .regex(/^\d+$/, 'must be a port number')
      .transform(Number)
      .pipe(z.number().int().min(1, 'must be 1-65535').max(65535, 'must be 1-65535'))
      .default(fallback),
  );
}

/** true/false (also 1/0). */
export function flagVar(fallback: boolean) {
  return envVar(
    z
      .enum(['true', 'false', '1', '0'], { error: 'must be true or false' })
      .transform((v) => v === 'true' || v === '1')
      .default(fallback),
  );
}

/** A configuration problem, safe to print: it names variables and rules, never values. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Parses `env` with `schema`; throws one ConfigError, "Invalid <what> environment: VAR: reason; ...",
 * that lists every problem.
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv, what: string): z.output<S> {
  const result = schema.safeParse(env);
  if (!result.success) throw new ConfigError(`Invalid ${what} environment: ${formatIssues(result.error)}`);
  return result.data;
}
