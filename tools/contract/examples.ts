/**
 * The published schemas' `examples`: realistic values a caller sends or receives. Typed with the
 * contract's own types, so the compiler checks their shape; test/unit/contract-schema.test.ts checks
 * each against its schema (ajv) and, for inputs, against the worker's parser.
 */
import { DEFAULT_POLICY, recipientFingerprint } from '../../src/contract/index.js';
import type {
  AvatarConsentInput,
  AvatarConsentResult,
  ChangeRecipientInput,
  ChangeRecipientResult,
  ConsentStatusView,
  ResendEmailInput,
  ResendEmailResult,
} from '../../src/contract/index.js';
import type { z } from 'zod';
import type { cancelInputSchema } from '../../src/contract/schemas.js';

const GROUP = 'ag_7Hk2mQ9xVb';
const RUN = '0b9e7c52-6f0e-4f2b-9a43-1c5d2e8f7a10';
const EMAIL = 'ada.lovelace@example.com';
const NEW_EMAIL = 'charles.babbage@example.com';
const CONSENT_URL = `https://app.heygen.com/avatar/consent/${GROUP}?token=c2lnbmVkLWxpbmstZXhhbXBsZQ`;

/** Every field given (tests build variants of it). */
export const completeInputExample = {
  groupId: GROUP,
  recipient: { email: EMAIL, name: 'Ada Lovelace' },
  rerouteUrl: 'https://studio.example.com/avatars/done',
  consentText: 'I, Ada Lovelace, agree that Example Studio may create and use my digital twin.',
  notify: { workflowId: 'onboarding-order-4711', runId: RUN, signalName: 'avatarConsentCompleted' },
  policy: { ...DEFAULT_POLICY },
} satisfies AvatarConsentInput;

export const workflowInputExamples: AvatarConsentInput[] = [
  { groupId: GROUP, recipient: { email: EMAIL } },
  completeInputExample,
  {
    groupId: GROUP,
    recipient: { email: EMAIL, name: 'Ada Lovelace' },
    rerouteUrl: 'https://studio.example.com/avatars/ag_7Hk2mQ9xVb/consent-done',
    consentText: null,
    notify: { workflowId: 'onboarding-order-4711', runId: null, signalName: null },
    policy: {
      pollInitialInterval: 'PT30S',
      pollMaxInterval: '30m',
      pollBackoffCoefficient: null,
      pollWindow: 'PT4H',
      deadline: 'P7D',
      linkTtl: 'PT23H',
      maxLinkRefreshes: 6,
    },
  },
];

export const workflowResultExamples: AvatarConsentResult[] = [
  {
    outcome: 'approved',
    groupId: GROUP,
    consentStatus: 'approved',
    avatarStatus: 'in_progress',
    consentUrl: CONSENT_URL,
    approvedAt: '2026-03-21T14:07:31.412Z',
    polls: 9,
    emailsSent: 1,
    linkGeneration: 1,
    notification: {
      workflowId: 'onboarding-order-4711',
      signalName: 'avatarConsentCompleted',
      delivered: true,
    },
  },
  {
    outcome: 'invalid_input',
    groupId: GROUP,
    consentStatus: null,
    avatarStatus: null,
    consentUrl: null,
    error: {
      code: 'invalid_input',
      message:
        'Invalid avatarConsentWorkflow input: recipient.email: must be a plain email address (name@domain, at most 64 characters before "@", 254 in all)',
      fields: [
        {
          path: 'recipient.email',
          message:
            'must be a plain email address (name@domain, at most 64 characters before "@", 254 in all)',
        },
      ],
    },
    polls: 0,
    emailsSent: 0,
    linkGeneration: 0,
    notification: {
      workflowId: 'onboarding-order-4711',
      signalName: 'avatarConsentCompleted',
      delivered: true,
    },
  },
  {
    outcome: 'expired',
    groupId: GROUP,
    consentStatus: 'pending',
    avatarStatus: 'pending_consent',
    consentUrl: CONSENT_URL,
    polls: 212,
    emailsSent: 7,
    linkGeneration: 7,
  },
];

export const statusExamples: ConsentStatusView[] = [
  {
    groupId: GROUP,
    phase: 'awaiting',
    outcome: null,
    consentStatus: 'pending',
    avatarStatus: 'pending_consent',
    polls: 4,
    nextPollAt: '2026-03-21T12:08:00.000Z',
    pollWindow: {
      openedAt: '2026-03-21T12:00:00.000Z',
      closesAt: '2026-03-21T16:00:00.000Z',
      pollsBefore: 0,
      pollTimes: [
        '2026-03-21T12:00:15.000Z',
        '2026-03-21T12:00:45.000Z',
        '2026-03-21T12:01:45.000Z',
        '2026-03-21T12:03:45.000Z',
        '2026-03-21T12:07:45.000Z',
      ],
      thenEveryMs: 1_800_000,
    },
    asOf: '2026-03-21T12:05:02.117Z',
    lastError: null,
    blocked: null,
    linkGeneration: 1,
    linkExpiresAt: '2026-03-22T11:00:00.000Z',
    emailsSent: 1,
    deadline: '2026-03-28T12:00:00.000Z',
    recipientFingerprint: recipientFingerprint(EMAIL),
  },
];

export const resendEmailInputExamples: ResendEmailInput[] = [
  { reason: 'The person asked for the link again' },
  null,
];

export const resendEmailResultExamples: ResendEmailResult[] = [
  { messageId: `<avatar-consent.${RUN}.g1.r1@avatar-consent.example.com>`, emailsSent: 2, linkGeneration: 1 },
];

export const changeRecipientInputExamples: ChangeRecipientInput[] = [
  { email: NEW_EMAIL, name: 'Charles Babbage', reason: 'Ticket 5521: wrong address' },
  { email: NEW_EMAIL, name: null, reason: null },
];

export const changeRecipientResultExamples: ChangeRecipientResult[] = [
  {
    messageId: `<avatar-consent.${RUN}.g1.r2@avatar-consent.example.com>`,
    emailsSent: 3,
    linkGeneration: 1,
    recipientFingerprint: recipientFingerprint(NEW_EMAIL),
  },
];

export const cancelInputExamples: z.input<typeof cancelInputSchema>[] = [
  { reason: 'The avatar order was withdrawn' },
  null,
];
