/**
 * The error shape the project speaks everywhere: HeyGen's StandardAPIError (`code`, `message`,
 * `param`), what a consent's result and status report, and what the sandbox answers.
 */
export interface ApiError {
  /** A stable, machine-readable code, e.g. `invalid_parameter` or `smtp_550`. */
  code: string;
  /** For people; never carries personal data or secrets. */
  message: string;
  /** The request field the error is about, when there is one. */
  param?: string | null;
}
