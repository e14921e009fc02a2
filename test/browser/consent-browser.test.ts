/**
 * The consent flow as people see it, in a real browser: the person reads the email in the dev
 * inbox, opens the consent link and presses "I agree"; the operator then finds the workflow
 * completed in the Temporal Web UI. Real servers throughout: the Temporal dev server with its UI,
 * the HeyGen sandbox, the dev mail catcher (SMTP + web inbox) and the real worker.
 *
 * Screenshots go to artifacts/browser/ (the workflow page is the one to keep).
 */
import { bundleWorkflowCode } from '@temporalio/worker';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { workflowIdForGroup } from '../../src/contract/index.js';
import { startWebInbox } from '../../tools/dev/web-inbox.js';
import type { WebInbox } from '../../tools/dev/web-inbox.js';
import { createSmtpMailer } from '../../src/email/index.js';
import { HeyGenClient, RateGate } from '../../src/heygen/index.js';
import { startSandbox } from '../../tools/heygen-sandbox/index.js';
import type { Sandbox } from '../../tools/heygen-sandbox/index.js';
import { startAvatarConsent } from '../../src/starter.js';
import { createConsentWorker, workflowsPath } from '../../src/worker.js';
import { createDevServerEnv, uniqueName } from '../../tools/kit/temporal-test-env.js';
import type { DevServerEnv } from '../../tools/kit/temporal-test-env.js';
import { eventually } from '../../tools/kit/eventually.js';
import { startSmtpCatcher } from '../../tools/kit/smtp-catcher.js';
import type { SmtpCatcher } from '../../tools/kit/smtp-catcher.js';
import { clearBrowserArtifacts, launchChromium, screenshotPath } from './chromium.js';

const API_KEY = 'browser-test-key';
const FROM = 'Avatar consent <consent@avatar-consent.test>';
/** How long the browser waits for a page or a text to appear. */
const UI_TIMEOUT_MS = 30_000;

let env: DevServerEnv;
let uiUrl: string;
let bundle: WorkflowBundleWithSourceMap;
let sandbox: Sandbox;
let mail: SmtpCatcher;
let inbox: WebInbox;
let inboxUrl: string;
let browser: Browser;
let context: BrowserContext;

beforeAll(async () => {
  // Screenshots of this run only, not a mix with an earlier one.
  clearBrowserArtifacts();
  // Each piece is kept as soon as it is up, and all are waited for (not just until the first
  // failure), so afterAll closes everything that started even when one piece fails.
  const started = await Promise.allSettled([
    // The launcher waits for the Web UI too, and picks other ports if one was taken meanwhile.
    createDevServerEnv({ ui: true }).then((created) => (env = created)),
    bundleWorkflowCode({
      workflowsPath,
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
    }).then((built) => (bundle = built)),
    startSandbox({ apiKeys: [API_KEY] }).then((started) => (sandbox = started)),
    // The dev stack's mail catcher and web inbox, on ports of their own.
    startSmtpCatcher({ auth: 'any' }).then(async (catcher) => {
      mail = catcher;
      inbox = await startWebInbox(catcher, { host: '127.0.0.1', port: 0 });
    }),
    launchChromium().then((launched) => (browser = launched)),
  ]);
  for (const piece of started) if (piece.status === 'rejected') throw piece.reason;
  uiUrl = env.devServer.uiUrl!;
  // The inbox names itself "localhost"; the browser uses the address it really listens on.
  inboxUrl = inbox.url.replace('//localhost:', '//127.0.0.1:');
  context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  context.setDefaultTimeout(UI_TIMEOUT_MS);
});

afterEach(async ({ task }) => {
  // A failed run leaves a picture of every open page, to see what the browser saw.
  if (task.result?.state !== 'fail' || !context) return;
  await Promise.allSettled(
    context
      .pages()
      .map((page, i) => page.screenshot({ path: screenshotPath(`failure-${i}`), fullPage: true })),
  );
});

afterAll(async () => {
  await Promise.allSettled([
    browser?.close(),
    env?.teardown(),
    sandbox?.close(),
    inbox?.close(),
    mail?.close(),
  ]);
});

describe('consent flow in a browser', () => {
  it('a person approves from the email; the Web UI shows the workflow completed with its summary', async () => {
    const group = sandbox.createGroup({ name: 'Ada Browser' });
    const email = `${uniqueName('ada')}@example.com`;
    const workflowId = workflowIdForGroup(group.id);
    const taskQueue = uniqueName('browser');
    const worker = await createConsentWorker({
      connection: env.nativeConnection,
      namespace: 'default',
      taskQueue,
      dependencies: {
        heygen: new HeyGenClient({
          baseUrl: sandbox.url,
          apiKey: API_KEY,
          timeoutMs: 2_000,
          rateGate: new RateGate(),
        }),
        mailer: createSmtpMailer({ smtpUrl: mail.url, from: FROM, connectionTimeoutMs: 2_000 }),
        messageIdDomain: 'avatar-consent.test',
      },
      workflowBundle: bundle,
    });

    const result = await worker.runUntil(async () => {
      const handle = await startAvatarConsent(
        env.client,
        {
          groupId: group.id,
          recipient: { email, name: 'Ada Person' },
          // Fast polling, so the approval is seen within seconds.
          policy: { pollInitialInterval: '1s', pollMaxInterval: '2s' },
        },
        { taskQueue },
      );
      expect(handle.workflowId).toBe(workflowId);

      // The inbox: wait for the email to the person (reloading, as the page does by itself), open it.
      const inboxPage = await context.newPage();
      await inboxPage.goto(inboxUrl);
      const row = inboxPage.getByRole('row').filter({ hasText: email });
      await eventually('the consent email in the inbox', async () => {
        // The page also refreshes itself: a check or reload that meets that navigation just tries again.
        if ((await row.count().catch(() => 0)) > 0) return true;
        await inboxPage.reload().catch(() => undefined);
        return undefined;
      });
      await row.getByRole('link', { name: /Ada Browser/ }).click();
      await inboxPage.getByRole('heading', { level: 1, name: /Ada Browser/ }).waitFor();

      // The consent link, as listed under "Links"; it opens in a new tab.
      const consentLink = inboxPage.getByRole('link', { name: /\/consent\// });
      expect(await consentLink.getAttribute('href')).toMatch(
        new RegExp(`^${sandbox.url.replaceAll('.', '\\.')}/consent/[A-Za-z0-9_-]+$`),
      );
      const [consentPage] = await Promise.all([context.waitForEvent('page'), consentLink.click()]);
      await consentPage.waitForLoadState();

      // The consent page: the right avatar, then "I agree".
      await consentPage.getByRole('heading', { level: 1, name: /Ada Browser/ }).waitFor();
      const agree = consentPage.getByRole('button', { name: 'I agree' });
      await agree.waitFor();
      expect(await consentPage.getByRole('button', { name: 'I decline' }).isVisible()).toBe(true);
      await consentPage.screenshot({ path: screenshotPath('consent-page'), fullPage: true });
      await agree.click();

      // No reroute_url: the sandbox's own thank-you page.
      await consentPage.waitForURL(/\/consent\/[A-Za-z0-9_-]+\/done$/);
      await consentPage.getByRole('heading', { level: 1, name: 'Thank you' }).waitFor();
      expect(await consentPage.locator('main').innerText()).toContain('has been recorded');
      await consentPage.screenshot({ path: screenshotPath('thank-you-page'), fullPage: true });

      return handle.result();
    });

    expect(result).toMatchObject({
      outcome: 'approved',
      groupId: group.id,
      consentStatus: 'approved',
      emailsSent: 1,
    });

    // The operator's view: the workflow page in the Temporal Web UI.
    const workflowPage = await context.newPage();
    await workflowPage.goto(`${uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
    await workflowPage.getByTestId('workflow-id-heading').filter({ hasText: workflowId }).waitFor();
    // The status badge in the page header: "Completed" (it would say "Running" before the end).
    await workflowPage
      .locator('header')
      .getByRole('status')
      .filter({ hasText: /^\s*Completed\s*$/ })
      .waitFor();
    // The static summary is on the "User Metadata" tab, rendered as Markdown in a frame.
    await workflowPage.getByRole('tab', { name: 'User Metadata' }).click();
    await workflowPage.waitForURL(/\/user-metadata$/);
    await workflowPage
      .locator('iframe#user-metadata-summary')
      .contentFrame()
      .getByText(`Avatar consent for HeyGen group ${group.id}`, { exact: true })
      .waitFor();
    await workflowPage.screenshot({ path: screenshotPath('workflow-completed'), fullPage: true });
  }, 120_000);
});
