/** Finds the sandbox's consent link (`…/consent/<token>`) in an email, as a person's eye would. */
const CONSENT_LINK = /https?:\/\/[^\s"'<>]+\/consent\/[A-Za-z0-9_-]+/;

/** The first consent link in `text`, or null. */
export function consentLinkIn(text: string): string | null {
  return CONSENT_LINK.exec(text)?.[0] ?? null;
}
