/**
 * The text rules, as plain patterns and limits: zod schemas (./input.ts, for the starter, the worker
 * and the published JSON Schema) and workflow code (which must not load zod) build on the same ones.
 */

/** C0 controls (CR, LF, TAB, NUL, ESC...), DEL, C1 controls and the Unicode line/paragraph separators. */
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
/** Bidi embeddings, overrides and isolates: they make text display differently from what it is. */
export const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069]/;

/** One line of plain text: no control characters, no bidi controls. */
// eslint-disable-next-line no-control-regex
export const ONE_LINE_TEXT = /^[^\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]*$/;
/** Text that may run over several lines (LF only): no other control character, no bidi controls. */
export const MULTI_LINE_TEXT =
  // eslint-disable-next-line no-control-regex
  /^[^\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]*$/;

/** RFC 5321 limits: 254 for the whole path, 64 for the local part. */
export const MAX_EMAIL_ADDRESS_LENGTH = 254;
export const MAX_EMAIL_LOCAL_PART_LENGTH = 64;
/**
 * What browsers accept for `<input type="email">` (no spaces, quotes, angle brackets, commas or
 * controls, so an address can never carry a second address or a header; domain labels of 1-63
 * characters that neither start nor end with "-"), with a local part of at most 64 characters.
 * Quoted local parts and non-ASCII (SMTPUTF8) addresses are refused on purpose.
 */
export const EMAIL_ADDRESS =
  /^(?=[^@]{1,64}@)[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

export const EMAIL_ADDRESS_RULE = `must be a plain email address (name@domain, at most ${MAX_EMAIL_LOCAL_PART_LENGTH} characters before "@", ${MAX_EMAIL_ADDRESS_LENGTH} in all)`;

export function isValidEmailAddress(address: string): boolean {
  return address.length <= MAX_EMAIL_ADDRESS_LENGTH && EMAIL_ADDRESS.test(address);
}

export const MAX_PERSON_NAME_LENGTH = 200;
export const MAX_AUDIT_REASON_LENGTH = 500;

/** Problems with a one-line text field (a name, a reason), each naming the rule; [] when it is fine. */
export function oneLineTextProblems(text: unknown, maxLength: number): string[] {
  if (typeof text !== 'string') return ['must be a string'];
  const problems: string[] = [];
  if (text.length > maxLength) problems.push(`must be at most ${maxLength} characters`);
  if (!ONE_LINE_TEXT.test(text))
    problems.push('must not contain control characters, line breaks or bidi controls');
  return problems;
}
