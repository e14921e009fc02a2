/**
 * Masks known secrets in text that leaves the process: log lines (src/logging.ts) and HeyGen failure
 * messages, which Temporal stores in its history (src/heygen/failures.ts). Plain code, no imports,
 * so the HeyGen client can use it without pulling in the Temporal worker.
 *
 * Besides the whole secret, it masks a secret's *leading* characters: services and proxies often
 * echo a key shortened, e.g. `Invalid API key hg_live_3fA9…`. An echo of the end of a secret (the
 * common "…last4") is not masked: four characters are meant to be shown, and masking every
 * four-character match would garble unrelated text.
 */

/** Secrets shorter than this are not masked at all: they would match ordinary text and protect nothing. */
export const MIN_MASKED_SECRET_LENGTH = 4;

/** The longest echo prefix we wait for before masking (see echoPrefixLength). */
export const MAX_ECHO_PREFIX_LENGTH = 8;

/**
 * How many leading characters of `secret`, seen in a row, count as an echo of it.
 *
 * - Secrets of 16 characters or more (API keys, tokens): 8. Up to 7 leading characters stay
 *   visible, which leaves at least 9 unknown characters (over 50 bits even for base62), and for a
 *   real key of 32+ characters far more; 8 specific characters in a row also almost never occur in
 *   ordinary text by chance, so nothing else gets masked. Vendor prefixes such as `hg_live_` are
 *   public anyway: masking them where they are echoed costs nothing.
 * - Shorter secrets (passwords): half the secret, rounded up, but at least 4, so an echo can never
 *   show half of a short secret.
 */
export function echoPrefixLength(secret: string): number {
  return Math.min(MAX_ECHO_PREFIX_LENGTH, Math.max(MIN_MASKED_SECRET_LENGTH, Math.ceil(secret.length / 2)));
}

/**
 * Replaces every occurrence of a secret, and every run of its first `echoPrefixLength(secret)` or
 * more characters, with `mask`. Longer secrets are handled first, so a secret that starts like a
 * shorter one is masked whole.
 */
export function maskSecrets(text: string, secrets: readonly string[], mask = '****'): string {
  const usable = [...new Set(secrets)]
    .filter((secret) => secret.length >= MIN_MASKED_SECRET_LENGTH)
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const secret of usable) out = maskOne(out, secret, mask);
  return out;
}

function maskOne(text: string, secret: string, mask: string): string {
  const prefix = secret.slice(0, Math.min(secret.length, echoPrefixLength(secret)));
  let result = '';
  let from = 0;
  for (;;) {
    const at = text.indexOf(prefix, from);
    if (at === -1) break;
    // Extend the match as far as the text keeps following the secret.
    let end = at + prefix.length;
    while (end - at < secret.length && text[end] === secret[end - at]) end++;
    result += text.slice(from, at) + mask;
    from = end;
  }
  return result + text.slice(from);
}
