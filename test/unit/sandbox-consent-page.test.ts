// The sandbox's hosted consent page over real HTTP: HTML, escaping, agree/decline, training time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { escapeHtml } from '../../tools/heygen-sandbox/consent-page.js';
import { startSandbox } from '../../tools/heygen-sandbox/server.js';
import type { AvatarGroupItem, Sandbox } from '../../tools/heygen-sandbox/types.js';

const KEY = 'page-key';
const TRAINING_MS = 60_000;
// A frozen base clock: only advanceClock() moves sandbox time, so boundaries can be hit exactly.
const frozen = () => 1_800_000_000_000;

let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = await startSandbox({ apiKeys: [KEY], trainingTimeMs: TRAINING_MS, now: frozen });
});

afterAll(async () => {
  await sandbox.close();
});

async function requestConsent(
  group: AvatarGroupItem,
  body: { reroute_url?: string | null; consent_text?: string | null } = {},
  target: Sandbox = sandbox,
): Promise<string> {
  const res = await fetch(`${target.url}/v3/avatars/${group.id}/consent`, {
    method: 'POST',
    headers: { 'x-api-key': KEY, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: { url: string } }).data.url;
}

async function getGroupOverHttp(id: string, target: Sandbox = sandbox): Promise<AvatarGroupItem> {
  const res = await fetch(`${target.url}/v3/avatars/${id}`, { headers: { 'x-api-key': KEY } });
  return ((await res.json()) as { data: AvatarGroupItem }).data;
}

const post = (url: string) => fetch(url, { method: 'POST', redirect: 'manual' });

describe('GET /consent/{token}', () => {
  it('shows the avatar name, the default text and the two buttons with stable ids and names', async () => {
    const group = sandbox.createGroup({ name: 'Anna Example' });
    const url = await requestConsent(group);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await res.text();
    expect(html).toContain('<span id="avatar-name">Anna Example</span>');
    expect(html).toContain('I allow HeyGen to create an AI avatar of my likeness');
    expect(html).toContain(
      `<form method="post" action="${url}/agree"><button type="submit" id="agree">I agree</button></form>`,
    );
    expect(html).toContain(
      `<form method="post" action="${url}/decline"><button type="submit" id="decline">I decline</button></form>`,
    );
    expect(html).not.toMatch(/<script/i);
  });

  it('escapes the avatar name and shows the custom consent text as text', async () => {
    const group = sandbox.createGroup({ name: '<script>alert("x")</script> & Co' });
    const url = await requestConsent(group, { consent_text: 'I, "Anna" & friends,\nagree.' });
    const html = await (await fetch(url)).text();
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co');
    expect(html).toContain('I, &quot;Anna&quot; &amp; friends,\nagree.');
    expect(html).not.toContain('I allow HeyGen to create an AI avatar');
  });

  it('escapes every HTML-significant character', () => {
    expect(escapeHtml(`<a href='x'>"&"</a>`)).toBe('&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;');
  });

  it('answers unknown tokens and links of deleted groups with a 404 HTML page', async () => {
    const unknown = await fetch(`${sandbox.url}/consent/cst_unknown`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await unknown.text()).toContain('Link not found');

    const group = sandbox.createGroup();
    const url = await requestConsent(group);
    sandbox.deleteGroup(group.id);
    expect((await fetch(url)).status).toBe(404);
    expect((await post(`${url}/agree`)).status).toBe(404);
  });

  it('refuses the wrong method on each page with 405', async () => {
    const group = sandbox.createGroup();
    const url = await requestConsent(group);
    expect((await fetch(`${url}/agree`)).status).toBe(405);
    expect((await post(url)).status).toBe(405);
    expect((await post(`${url}/done`)).status).toBe(405);
    expect((await fetch(`${url}/elsewhere`)).status).toBe(404);
  });
});

describe('agreeing', () => {
  it('approves, redirects 303 to reroute_url, and trains for trainingTimeMs of sandbox time', async () => {
    const group = sandbox.createGroup();
    const url = await requestConsent(group, { reroute_url: 'https://app.test/consent-done?x=1' });
    const res = await post(`${url}/agree`);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('https://app.test/consent-done?x=1');

    expect(await getGroupOverHttp(group.id)).toMatchObject({
      consent_status: 'approved',
      status: 'processing',
    });
    sandbox.advanceClock(TRAINING_MS - 1);
    expect((await getGroupOverHttp(group.id)).status).toBe('processing');
    sandbox.advanceClock(1);
    expect(await getGroupOverHttp(group.id)).toMatchObject({
      consent_status: 'approved',
      status: 'completed',
    });
    expect(sandbox.consents(group.id)[0]).toMatchObject({
      decision: 'approved',
      decidedAt: sandbox.now() - TRAINING_MS,
    });
  });

  it('without reroute_url, redirects to a thank-you page', async () => {
    const group = sandbox.createGroup({ name: 'Thanks Tester' });
    const url = await requestConsent(group);
    const res = await post(`${url}/agree`);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`${url}/done`);
    const done = await fetch(`${url}/done`);
    expect(done.status).toBe(200);
    const html = await done.text();
    expect(html).toContain('Thank you');
    expect(html).toContain('Thanks Tester');
    // Coming back to the link shows the outcome, not the buttons.
    const again = await (await fetch(url)).text();
    expect(again).toContain('Thank you');
    expect(again).not.toContain('id="agree"');
  });

  it('ignores a reroute_url that is not an absolute http(s) URL', async () => {
    for (const reroute of ['javascript:alert(1)', '/relative', 'not a url']) {
      const group = sandbox.createGroup();
      const url = await requestConsent(group, { reroute_url: reroute });
      expect((await post(`${url}/agree`)).headers.get('location')).toBe(`${url}/done`);
    }
  });

  it('is harmless twice, and a second link does not restart training', async () => {
    const group = sandbox.createGroup();
    const first = await requestConsent(group);
    const second = await requestConsent(group);
    expect((await post(`${first}/agree`)).status).toBe(303);
    expect((await post(`${first}/agree`)).status).toBe(303);
    sandbox.advanceClock(TRAINING_MS / 2);
    expect((await post(`${second}/agree`)).status).toBe(303);
    sandbox.advanceClock(TRAINING_MS / 2);
    expect((await getGroupOverHttp(group.id)).status).toBe('completed');
  });

  it('keeps earlier links valid: the first of two links can be used', async () => {
    const group = sandbox.createGroup();
    const first = await requestConsent(group);
    await requestConsent(group);
    expect((await post(`${first}/agree`)).status).toBe(303);
    expect(sandbox.consents(group.id).map((c) => c.decision)).toEqual(['approved', 'pending']);
    expect((await getGroupOverHttp(group.id)).consent_status).toBe('approved');
  });

  it('sandbox.approve() acts like agreeing on the latest pending link', async () => {
    const group = sandbox.createGroup();
    await requestConsent(group);
    await requestConsent(group);
    sandbox.approve(group.id);
    expect(sandbox.consents(group.id).map((c) => c.decision)).toEqual(['pending', 'approved']);
    expect(sandbox.getGroup(group.id)).toMatchObject({ consent_status: 'approved', status: 'processing' });
    expect(() => sandbox.approve('ag_missing')).toThrow(/not found/);
  });

  it('from a status other than pending_consent, leaves the status alone', async () => {
    const group = sandbox.createGroup({ status: 'failed' });
    const url = await requestConsent(group);
    await post(`${url}/agree`);
    expect(await getGroupOverHttp(group.id)).toMatchObject({ consent_status: 'approved', status: 'failed' });
  });
});

describe('declining', () => {
  it('keeps consent_status pending, marks the link declined and shows a declined page', async () => {
    const group = sandbox.createGroup();
    const url = await requestConsent(group, { reroute_url: 'https://app.test/after' });
    const res = await post(`${url}/decline`);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`${url}/done`);
    expect(await (await fetch(`${url}/done`)).text()).toContain('Consent declined');
    expect(await getGroupOverHttp(group.id)).toMatchObject({
      consent_status: 'pending',
      status: 'pending_consent',
    });
    expect(sandbox.consents(group.id)[0]?.decision).toBe('declined');

    const agreeAfter = await post(`${url}/agree`);
    expect(agreeAfter.status).toBe(409);
    expect((await getGroupOverHttp(group.id)).consent_status).toBe('pending');
  });

  it('cannot take back an agreement', async () => {
    const group = sandbox.createGroup();
    const url = await requestConsent(group);
    await post(`${url}/agree`);
    expect((await post(`${url}/decline`)).status).toBe(409);
    expect(sandbox.consents(group.id)[0]?.decision).toBe('approved');
  });
});

describe('link lifetime and the ledger', () => {
  it('links never expire by default, and expire after consentLinkTtlMs when set', async () => {
    const expiring = await startSandbox({ apiKeys: [KEY], consentLinkTtlMs: 1000, now: frozen });
    try {
      const group = expiring.createGroup();
      const url = await requestConsent(group, {}, expiring);
      expiring.advanceClock(999);
      expect((await fetch(url)).status).toBe(200);
      expiring.advanceClock(1);
      const expired = await fetch(url);
      expect(expired.status).toBe(410);
      expect(await expired.text()).toContain('Link expired');
      expect((await post(`${url}/agree`)).status).toBe(410);
      expect((await getGroupOverHttp(group.id, expiring)).consent_status).toBe('pending');
    } finally {
      await expiring.close();
    }
    const group = sandbox.createGroup();
    const url = await requestConsent(group);
    sandbox.advanceClock(365 * 24 * 60 * 60 * 1000);
    expect((await fetch(url)).status).toBe(200);
  });

  it('records page visits and answers in the ledger, without auth', async () => {
    const group = sandbox.createGroup();
    const url = await requestConsent(group);
    sandbox.clearLedger();
    await fetch(url);
    await post(`${url}/agree`);
    const path = new URL(url).pathname;
    expect(sandbox.ledger().map((e) => [e.method, e.path, e.status, e.authScheme])).toEqual([
      ['GET', path, 200, null],
      ['POST', `${path}/agree`, 303, null],
    ]);
  });

  it('builds links and form actions on publicUrl', async () => {
    const proxied = await startSandbox({ apiKeys: [KEY], publicUrl: 'https://consent.example.test/heygen/' });
    try {
      const group = proxied.createGroup();
      const url = await requestConsent(group, {}, proxied);
      expect(url).toMatch(/^https:\/\/consent\.example\.test\/heygen\/consent\/cst_[0-9a-f]{32}$/);
      const token = url.split('/').at(-1)!;
      const html = await (await fetch(`${proxied.url}/consent/${token}`)).text();
      expect(html).toContain(`action="${url}/agree"`);
    } finally {
      await proxied.close();
    }
  });
});
