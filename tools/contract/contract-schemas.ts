/**
 * The published contract: JSON Schema (draft 2020-12) for everything a caller in any language sends
 * or receives, generated from the zod schemas in src/contract/schemas.ts. `npm run contract:schema`
 * writes them to contract/; test/unit/contract-schema.test.ts regenerates them in memory and fails
 * when a committed file differs from the code.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { z } from 'zod';
import {
  DEFAULT_COMPLETION_SIGNAL,
  WORKFLOW_TYPE,
  avatarConsentInputSchema,
  avatarConsentResultSchema,
  cancelInputSchema,
  changeRecipientInputSchema,
  changeRecipientResultSchema,
  consentStatusViewSchema,
  resendEmailInputSchema,
  resendEmailResultSchema,
} from '../../src/contract/index.js';
import {
  cancelInputExamples,
  changeRecipientInputExamples,
  changeRecipientResultExamples,
  resendEmailInputExamples,
  resendEmailResultExamples,
  statusExamples,
  workflowInputExamples,
  workflowResultExamples,
} from './examples.js';

export const CONTRACT_DIR = fileURLToPath(new URL('../../contract/', import.meta.url));

export interface ContractDocument {
  /** File name in contract/. */
  file: string;
  title: string;
  description: string;
  schema: z.ZodType;
  /** What the schema describes: what a caller sends (input) or what it receives (output). */
  io: 'input' | 'output';
  examples: readonly unknown[];
}

const NULL_RULE =
  'Optional fields may be absent or null (both mean "not given"); fields not listed here are refused.';
const OPEN_RULE = 'Later versions may add fields: ignore the ones you do not know.';

export const CONTRACT_DOCUMENTS: readonly ContractDocument[] = [
  {
    file: 'workflow-input.schema.json',
    title: `${WORKFLOW_TYPE} input`,
    description: `The one argument of the workflow type "${WORKFLOW_TYPE}". Start it with workflow ID "avatar-consent-<groupId>" and conflict policy USE_EXISTING. ${NULL_RULE} Durations are strings: "30s", "15m", "7d" or ISO-8601 "PT30S", "P7D".`,
    schema: avatarConsentInputSchema,
    io: 'input',
    examples: workflowInputExamples,
  },
  {
    file: 'workflow-result.schema.json',
    title: `${WORKFLOW_TYPE} result and ${DEFAULT_COMPLETION_SIGNAL} signal`,
    description: `The workflow's result, and the payload of the completion signal ("${DEFAULT_COMPLETION_SIGNAL}" unless notify.signalName says otherwise) sent to the notify target or the parent workflow, whatever the outcome. ${OPEN_RULE}`,
    schema: avatarConsentResultSchema,
    io: 'output',
    examples: workflowResultExamples,
  },
  {
    file: 'status.schema.json',
    title: 'status query answer',
    description: `The answer to the query "status": where the consent stands. ${OPEN_RULE}`,
    schema: consentStatusViewSchema,
    io: 'output',
    examples: statusExamples,
  },
  {
    file: 'resend-email-input.schema.json',
    title: 'resendEmail update input',
    description: `The argument of the update "resendEmail" (emails the current link again); may be omitted or null. ${NULL_RULE}`,
    schema: resendEmailInputSchema,
    io: 'input',
    examples: resendEmailInputExamples,
  },
  {
    file: 'resend-email-result.schema.json',
    title: 'resendEmail update result',
    description: `What the update "resendEmail" returns once the email is sent. ${OPEN_RULE}`,
    schema: resendEmailResultSchema,
    io: 'output',
    examples: resendEmailResultExamples,
  },
  {
    file: 'change-recipient-input.schema.json',
    title: 'changeRecipient update input',
    description: `The argument of the update "changeRecipient" (records a new address and emails the current link to it). ${NULL_RULE}`,
    schema: changeRecipientInputSchema,
    io: 'input',
    examples: changeRecipientInputExamples,
  },
  {
    file: 'change-recipient-result.schema.json',
    title: 'changeRecipient update result',
    description: `What the update "changeRecipient" returns once the email is sent. ${OPEN_RULE}`,
    schema: changeRecipientResultSchema,
    io: 'output',
    examples: changeRecipientResultExamples,
  },
  {
    file: 'cancel-input.schema.json',
    title: 'cancel signal input',
    description: `The argument of the signal "cancel" (the consent ends with outcome canceled); may be omitted or null. ${NULL_RULE}`,
    schema: cancelInputSchema,
    io: 'input',
    examples: cancelInputExamples,
  },
];

type JsonSchema = Record<string, unknown>;

/** One document's JSON Schema, as an object. */
export function jsonSchemaOf(document: ContractDocument): JsonSchema {
  const generated = z.toJSONSchema(document.schema, {
    target: 'draft-2020-12',
    io: document.io,
    // An input is closed (zod's strict objects say additionalProperties: false themselves); an
    // output stays open, so a consumer built on this version keeps working when fields are added.
    override: ({ jsonSchema }) => {
      if (document.io === 'output') delete jsonSchema.additionalProperties;
    },
  }) as JsonSchema;
  const { $schema, ...rest } = generated;
  return {
    $schema,
    $id: `urn:avatar-consent:contract:${document.file.replace(/\.schema\.json$/, '')}`,
    title: document.title,
    description: document.description,
    ...rest,
    examples: document.examples,
  };
}

/** Every document as the text of its file (formatted as the repository's Prettier config says). */
export async function renderContract(): Promise<Map<string, string>> {
  const options = (await resolveConfig(`${CONTRACT_DIR}x.json`)) ?? {};
  const files = new Map<string, string>();
  for (const document of CONTRACT_DOCUMENTS) {
    const text = await format(JSON.stringify(jsonSchemaOf(document)), { ...options, parser: 'json' });
    files.set(document.file, text);
  }
  return files;
}

/** The schema files now in contract/ (to spot one that the code no longer generates). */
export function committedSchemaFiles(): string[] {
  try {
    return readdirSync(CONTRACT_DIR).filter((name) => name.endsWith('.schema.json'));
  } catch {
    return [];
  }
}
