/**
 * The consent worker with payload encryption on a real dev server: failure messages (HeyGen's words,
 * which may quote what we sent) are encrypted like payloads, and a worker that requires encryption
 * refuses a caller's plaintext input, except during the migration window.
 */
import { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleWorkflows } from '../../tools/kit/workflow-bundle.js';
import {
  dataConverterFor,
  generateKey,
  isEncryptedPayload,
  loadCodecKeysFromEnv,
} from '../../src/codec/index.js';
import type { CodecKeyring, PlaintextPolicy } from '../../src/codec/index.js';
import { workflowIdForGroup } from '../../src/contract/index.js';
import type { AvatarConsentResult } from '../../src/contract/index.js';
import { createConsentWorker } from '../../src/worker.js';
import { eventually } from '../../tools/kit/eventually.js';
import { FakeHeyGen } from '../../tools/kit/fake-heygen.js';
import { FakeMailer } from '../../tools/kit/fake-mailer.js';
import { createDevServerEnv, uniqueName } from '../../tools/kit/temporal-test-env.js';
import type { DevServerEnv } from '../../tools/kit/temporal-test-env.js';

let env: DevServerEnv;
let bundle: WorkflowBundleWithSourceMap;
let keyring: CodecKeyring;
const heygen = new FakeHeyGen(() => Promise.resolve(Date.now()));
const mailer = new FakeMailer();

beforeAll(async () => {
  keyring = loadCodecKeysFromEnv({ AVATAR_CONSENT_CODEC_KEYS: generateKey('it').line })!;
  [env, bundle] = await Promise.all([createDevServerEnv(), bundleWorkflows()]);
});
afterAll(async () => {
  await env?.teardown();
});

async function withWorker<T>(
  plaintext: PlaintextPolicy,
  fn: (taskQueue: string) => Promise<T>,
  taskQueue = uniqueName('enc'),
): Promise<T> {
  const worker = await createConsentWorker({
    connection: env.nativeConnection,
    namespace: 'default',
    taskQueue,
    workflowBundle: bundle,
    dependencies: { heygen, mailer, messageIdDomain: 'test.example' },
    dataConverter: dataConverterFor(keyring, plaintext),
  });
  return worker.runUntil(() => fn(taskQueue));
}

function clientWith(dataConverter: DataConverter): Client {
  return new Client({ connection: env.connection, namespace: 'default', dataConverter });
}

function newGroup(): string {
  const id = uniqueName('ag').replace(/[^A-Za-z0-9_-]/g, '_');
  heygen.addGroup(id);
  return id;
}

const consentText = 'I, Ada Person, agree that my likeness may be used for the avatar called Twin.';

describe('payload encryption on the consent worker', () => {
  it('encrypts failure messages too: HeyGen quoting our consent text is stored as ciphertext', async () => {
    const groupId = newGroup();
    heygen.failNext(groupId, 'POST', {
      kind: 'invalid',
      status: 400,
      code: 'invalid_parameter',
      param: 'consent_text',
      message: `consent_text "${consentText}" is not allowed for this account`,
    });
    const codecClient = clientWith(dataConverterFor(keyring));
    const result = await withWorker({ refuse: false }, async (taskQueue) => {
      const handle = await codecClient.workflow.start('avatarConsentWorkflow', {
        taskQueue,
        workflowId: workflowIdForGroup(groupId),
        args: [{ groupId, recipient: { email: 'ada@example.com' }, consentText }],
      });
      return (await handle.result()) as AvatarConsentResult;
    });
    // The codec client reads the outcome; the activity already scrubbed the echoed text.
    expect(result).toMatchObject({ outcome: 'invalid_request', error: { code: 'invalid_parameter' } });
    expect(result.error?.message).not.toContain('Ada Person');

    // As the server stores it: the activity's failure carries no message of its own, only encrypted attributes.
    const plain = clientWith({});
    const history = await plain.workflow.getHandle(workflowIdForGroup(groupId)).fetchHistory();
    const failed = (history.events ?? []).find((e) => e.activityTaskFailedEventAttributes)!
      .activityTaskFailedEventAttributes!.failure!;
    expect(failed.message).toBe('Encoded failure');
    expect(isEncryptedPayload(failed.encodedAttributes!)).toBe(true);
    const stored = JSON.stringify(history);
    expect(stored).not.toContain('Ada Person');
    expect(stored).not.toContain('is not allowed for this account');
  });

  it('with encryption required, a caller without the codec gets nothing run: the workflow task fails, naming the setting', async () => {
    const groupId = newGroup();
    const plainClient = clientWith({});
    const failure = await withWorker({ refuse: true }, async (taskQueue) => {
      const handle = await plainClient.workflow.start('avatarConsentWorkflow', {
        taskQueue,
        workflowId: workflowIdForGroup(groupId),
        args: [{ groupId, recipient: { email: 'ada@example.com' } }],
      });
      const message = await eventually('the refused workflow task', async () => {
        const events = (await handle.fetchHistory()).events ?? [];
        return events.find((e) => e.workflowTaskFailedEventAttributes)?.workflowTaskFailedEventAttributes
          ?.failure?.message;
      });
      await handle.terminate('test over');
      return message;
    });
    expect(failure).toMatch(/AVATAR_CONSENT_REQUIRE_ENCRYPTION/);
    expect(heygen.callsFor(groupId)).toHaveLength(0);
    expect(mailer.sentTo(groupId)).toHaveLength(0);
  });

  it('during the migration window plaintext is still accepted (and said so, once)', async () => {
    const groupId = newGroup();
    heygen.approveOnGet.set(groupId, 2);
    const accepted: string[] = [];
    const plainClient = clientWith({});
    const result = await withWorker(
      { refuse: true, acceptUntilMs: Date.now() + 3_600_000, onAccepted: () => accepted.push('plaintext') },
      async (taskQueue) => {
        await plainClient.workflow.start('avatarConsentWorkflow', {
          taskQueue,
          workflowId: workflowIdForGroup(groupId),
          args: [{ groupId, recipient: { email: 'ada@example.com' } }],
        });
        // The worker encrypts what it writes: the result is read with the codec.
        const codecClient = clientWith(dataConverterFor(keyring));
        return (await codecClient.workflow
          .getHandle(workflowIdForGroup(groupId))
          .result()) as AvatarConsentResult;
      },
    );
    expect(result.outcome).toBe('approved');
    expect(accepted).toEqual(['plaintext']);
  });
  it('a plaintext signal stalls a consent under required encryption, and the migration window lets it go on', async () => {
    const groupId = newGroup();
    const codecClient = clientWith(dataConverterFor(keyring));
    const workflowId = workflowIdForGroup(groupId);
    // Started through the codec; then an operator cancels without it (a plaintext argument).
    const queue = uniqueName('enc');
    const stalled = await withWorker(
      { refuse: true },
      async (taskQueue) => {
        await codecClient.workflow.start('avatarConsentWorkflow', {
          taskQueue,
          workflowId,
          args: [{ groupId, recipient: { email: 'ada@example.com' }, policy: { pollInitialInterval: '1h' } }],
        });
        await eventually('the consent to wait', () => mailer.sentTo(groupId).length === 1);
        await clientWith({}).workflow.getHandle(workflowId).signal('cancel', { reason: 'wrong person' });
        return eventually('the refused workflow task', async () => {
          const events = (await codecClient.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
          return events.find((e) => e.workflowTaskFailedEventAttributes)?.workflowTaskFailedEventAttributes
            ?.failure?.message;
        });
      },
      queue,
    );
    expect(stalled).toMatch(/AVATAR_CONSENT_REQUIRE_ENCRYPTION/);
    // Recovery without losing anything: a worker with the migration window open takes the signal.
    const result = await withWorker(
      { refuse: true, acceptUntilMs: Date.now() + 60_000 },
      () => codecClient.workflow.getHandle(workflowId).result() as Promise<AvatarConsentResult>,
      queue,
    );
    expect(result).toMatchObject({ outcome: 'canceled', error: { message: 'wrong person' } });
  });
});
