// HTML of the hosted consent flow. Everything that comes from a request or the admin API
// (avatar name, consent text, URLs) is escaped; the page loads nothing and runs no script.

import { escapeHtml } from '../../src/rules/html.js';

export { escapeHtml };

/** Security headers for every HTML page: no scripts, no framing, no sniffing. */
export const HTML_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; }
.sandbox { background: #fff4ce; border: 1px solid #e0c060; padding: .5rem .75rem; border-radius: .25rem; font-size: .9rem; }
.consent-text { white-space: pre-wrap; border-left: 3px solid #888; padding-left: 1rem; }
.actions { display: flex; gap: 1rem; margin-top: 1.5rem; }
button { font-size: 1rem; padding: .6rem 1.2rem; cursor: pointer; }
#agree { background: #1f6feb; color: #fff; border: none; border-radius: .25rem; }
</style>
</head>
<body>
<main>
<p class="sandbox">HeyGen sandbox: a local stand-in for HeyGen's hosted consent page.</p>
${body}
</main>
</body>
</html>
`;
}

export function defaultConsentText(avatarName: string): string {
  return (
    `I confirm that I am the person shown in the footage used to create the avatar "${avatarName}", ` +
    'and I allow HeyGen to create an AI avatar of my likeness and to use it to generate videos.'
  );
}

export function renderConsentPage(input: {
  avatarName: string;
  consentText: string | null;
  agreeAction: string;
  declineAction: string;
}): string {
  const text = input.consentText ?? defaultConsentText(input.avatarName);
  return layout(
    `Consent for avatar ${input.avatarName}`,
    `<h1>Consent for the avatar &ldquo;<span id="avatar-name">${escapeHtml(input.avatarName)}</span>&rdquo;</h1>
<p>Please read the statement below and choose whether you agree.</p>
<blockquote class="consent-text" id="consent-text">${escapeHtml(text)}</blockquote>
<div class="actions">
<form method="post" action="${escapeHtml(input.agreeAction)}"><button type="submit" id="agree">I agree</button></form>
<form method="post" action="${escapeHtml(input.declineAction)}"><button type="submit" id="decline">I decline</button></form>
</div>`,
  );
}

export function renderDecisionPage(input: { avatarName: string; decision: 'approved' | 'declined' }): string {
  const name = escapeHtml(input.avatarName);
  return input.decision === 'approved'
    ? layout(
        'Thank you',
        `<h1 id="result">Thank you</h1>
<p>Your consent for the avatar &ldquo;${name}&rdquo; has been recorded. You can close this page.</p>`,
      )
    : layout(
        'Consent declined',
        `<h1 id="result">Consent declined</h1>
<p>You declined consent for the avatar &ldquo;${name}&rdquo;. It will not be created from your likeness.</p>`,
      );
}

export function renderMessagePage(title: string, message: string): string {
  return layout(title, `<h1 id="result">${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>`);
}
