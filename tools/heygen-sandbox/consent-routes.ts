import type { SandboxCore } from './core.js';
import { renderConsentPage, renderDecisionPage, renderMessagePage } from './consent-page.js';
import type { ConsentRecord } from './types.js';

export type PageOutcome =
  | { kind: 'html'; status: number; html: string; headers?: Record<string, string> }
  | { kind: 'redirect'; location: string };

const page = (status: number, html: string, headers?: Record<string, string>): PageOutcome =>
  headers ? { kind: 'html', status, html, headers } : { kind: 'html', status, html };

const unknownLink = (): PageOutcome =>
  page(404, renderMessagePage('Link not found', 'This consent link is not valid. Ask for a new one.'));

/**
 * The hosted consent flow:
 *   GET  /consent/{token}          the page, with "I agree" (#agree) and "I decline" (#decline)
 *   POST /consent/{token}/agree    consent_status 'approved', training starts; 303 to reroute_url or /done
 *   POST /consent/{token}/decline  see below; 303 to /done
 *   GET  /consent/{token}/done     "Thank you" (or "declined") page
 *
 * Declining (a sandbox decision: HeyGen documents no declined state): the link is marked declined
 * (visible in consents()) but the group keeps consent_status 'pending', the only documented
 * not-yet-approved value, so a caller just keeps waiting as it would with the real API. To test
 * unknown values, set one with updateGroup(). The decline does not go to reroute_url, since that
 * page is meant for people who finished consent. A decided link cannot be changed (409), and
 * agreeing twice is harmless.
 */
export function handleConsentRoute(core: SandboxCore, method: string, pathname: string): PageOutcome {
  const [, prefix, token, action, ...extra] = pathname.split('/');
  if (prefix !== 'consent' || !token || extra.length > 0) return unknownLink();
  const record = core.consents.get(token);
  if (!record) return unknownLink();
  const group = core.groups.get(record.groupId);
  if (!group) {
    return page(
      404,
      renderMessagePage('Avatar not found', 'The avatar for this consent link no longer exists.'),
    );
  }

  const base = `${core.publicUrl}/consent/${token}`;
  const expected = action === undefined || action === 'done' ? 'GET' : 'POST';
  if (action !== undefined && !['agree', 'decline', 'done'].includes(action)) return unknownLink();
  if (method !== expected) {
    return page(405, renderMessagePage('Method not allowed', `Use ${expected} for this page.`), {
      allow: expected,
    });
  }

  if (action === 'done') {
    return record.decision === 'pending'
      ? { kind: 'redirect', location: base }
      : page(200, renderDecisionPage({ avatarName: group.name, decision: record.decision }));
  }
  if (isExpired(core, record)) {
    return page(410, renderMessagePage('Link expired', 'This consent link has expired. Ask for a new one.'));
  }
  if (action === undefined) {
    return record.decision === 'pending'
      ? page(
          200,
          renderConsentPage({
            avatarName: group.name,
            consentText: record.consentText,
            agreeAction: `${base}/agree`,
            declineAction: `${base}/decline`,
          }),
        )
      : page(200, renderDecisionPage({ avatarName: group.name, decision: record.decision }));
  }

  const wanted = action === 'agree' ? 'approved' : 'declined';
  if (record.decision !== 'pending' && record.decision !== wanted) {
    return page(
      409,
      renderMessagePage('Already answered', `This consent link was already ${record.decision}.`),
    );
  }
  if (record.decision === 'pending') {
    if (wanted === 'approved') core.approve(record.groupId, token);
    else core.consents.decide(token, 'declined');
  }
  const reroute = wanted === 'approved' ? safeRedirectTarget(record.rerouteUrl) : null;
  return { kind: 'redirect', location: reroute ?? `${base}/done` };
}

function isExpired(core: SandboxCore, record: ConsentRecord): boolean {
  return core.consentLinkTtlMs !== null && core.clock.now() - record.createdAt >= core.consentLinkTtlMs;
}

/** An absolute http(s) reroute_url, normalised for a Location header; anything else is ignored. */
function safeRedirectTarget(rerouteUrl: string | null): string | null {
  if (rerouteUrl === null || !URL.canParse(rerouteUrl)) return null;
  const url = new URL(rerouteUrl);
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
}
