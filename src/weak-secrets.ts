/**
 * Rules that catch secrets typed or pasted by hand instead of generated: "aaaa…", "0000…",
 * "hex:5a5a…", or the same secret listed twice. They apply where secrets are read from the
 * environment or a key file; messages name the variable and the rule, never the value.
 */

/** A repeating unit of up to this many bytes makes a secret weak ("abab…", "abcdabcd…"). */
const MAX_REPEATED_UNIT = 4;

/**
 * True when `bytes` is one short unit (1 to 4 bytes) repeated, e.g. one character over and over.
 * A random secret of 16 bytes or more is never such a pattern (the chance is below 2^-90).
 */
export function isRepeatedPattern(bytes: Uint8Array): boolean {
  for (let unit = 1; unit <= MAX_REPEATED_UNIT && unit < bytes.length; unit++) {
    let repeats = true;
    for (let i = unit; i < bytes.length && repeats; i++) repeats = bytes[i] === bytes[i - unit];
    if (repeats) return true;
  }
  return false;
}

export const REPEATED_PATTERN_RULE =
  'must not be one character (or a short pattern) repeated; use random bytes, e.g. from openssl rand';

/** Pairs of 1-based positions whose values are equal, e.g. [[1, 3]]. */
export function duplicatePositions(values: readonly Uint8Array[]): Array<[number, number]> {
  const pairs: Array<[number, number]> = [];
  values.forEach((value, i) => {
    const first = values.findIndex((other) => Buffer.compare(other, value) === 0);
    if (first < i) pairs.push([first + 1, i + 1]);
  });
  return pairs;
}
