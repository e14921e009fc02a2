/**
 * The one way the project reports invalid input, configuration or bodies: "field.path: reason;
 * other.field: reason". It names the field and the rule, never the value (values may be personal
 * data or secrets).
 */
import type { z } from 'zod';

export interface FormatIssuesOptions {
  /** What names an issue without a path (default "(input)"); '' for nothing. */
  root?: string;
  /** How a path segment is shown (e.g. to hide record keys that may be secrets). */
  segment?: (segment: PropertyKey) => string;
}

export function formatIssues(
  error: z.ZodError | readonly z.core.$ZodIssue[],
  options: FormatIssuesOptions = {},
): string {
  const issues: readonly z.core.$ZodIssue[] = 'issues' in error ? error.issues : error;
  const root = options.root ?? '(input)';
  const segment = options.segment ?? String;
  return issues
    .map((issue) => {
      const path = issue.path.map(segment).join('.') || root;
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}
