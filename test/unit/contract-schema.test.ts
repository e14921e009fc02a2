/**
 * The published JSON Schema (contract/*.schema.json): it is what the code generates (no drift), every
 * example in it is valid by the schema and by the worker's own parser, and on the rules other
 * languages meet (null, durations, unknown fields) the schema and the worker give the same answer.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CONTRACT_DIR,
  CONTRACT_DOCUMENTS,
  committedSchemaFiles,
  renderContract,
} from '../../tools/contract/contract-schemas.js';

const addFormats = addFormatsModule.default;

let rendered: Map<string, string>;
beforeAll(async () => {
  rendered = await renderContract();
});

function committed(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(CONTRACT_DIR, file), 'utf8')) as Record<string, unknown>;
}

function validatorFor(file: string) {
  // Strict: an unknown keyword or a malformed schema is an error, not silently ignored.
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  return ajv.compile(committed(file));
}

describe('the published contract', () => {
  it('the committed files are what the code generates (run `npm run contract:schema` after a change)', () => {
    expect(committedSchemaFiles().sort()).toEqual([...rendered.keys()].sort());
    for (const [file, text] of rendered) {
      expect(readFileSync(join(CONTRACT_DIR, file), 'utf8'), `contract/${file} is stale`).toBe(text);
    }
  });

  it.each(CONTRACT_DOCUMENTS.map((document) => [document.file, document] as const))(
    '%s: draft 2020-12, examples that the schema and the worker both accept',
    (file, document) => {
      const schema = committed(file);
      expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
      const examples = schema.examples as unknown[];
      expect(examples.length).toBeGreaterThan(0);
      const validate = validatorFor(file);
      for (const example of examples) {
        expect(validate(example), JSON.stringify(validate.errors)).toBe(true);
        expect(document.schema.safeParse(example).success).toBe(true);
      }
    },
  );

  it('inputs are closed (additionalProperties: false) and outputs open, at every level', () => {
    const objects = (node: unknown): Record<string, unknown>[] => {
      if (Array.isArray(node)) return node.flatMap(objects);
      if (node === null || typeof node !== 'object') return [];
      const record = node as Record<string, unknown>;
      const children = Object.entries(record)
        .filter(([key]) => key !== 'examples')
        .flatMap(([, value]) => objects(value));
      return record.type === 'object' ? [record, ...children] : children;
    };
    for (const document of CONTRACT_DOCUMENTS) {
      const found = objects(committed(document.file));
      expect(found.length).toBeGreaterThan(0);
      for (const object of found) {
        if (document.io === 'input') expect(object.additionalProperties, document.file).toBe(false);
        else expect(object, document.file).not.toHaveProperty('additionalProperties');
      }
    }
  });
});

describe('the schema and the worker agree on what other languages send', () => {
  const input = CONTRACT_DOCUMENTS.find((document) => document.file === 'workflow-input.schema.json')!;
  const base = { groupId: 'ag_1', recipient: { email: 'ada@example.com' } };

  it.each([
    [
      'nulls for every optional field',
      {
        ...base,
        recipient: { email: 'a@example.com', name: null },
        rerouteUrl: null,
        consentText: null,
        notify: null,
        policy: null,
      },
      true,
    ],
    [
      'null policy fields',
      { ...base, policy: { deadline: null, pollInitialInterval: null, maxLinkRefreshes: null } },
      true,
    ],
    [
      'ISO-8601 durations',
      { ...base, policy: { deadline: 'P7D', pollInitialInterval: 'PT30S', pollWindow: 'PT1H30M' } },
      true,
    ],
    ['short durations', { ...base, policy: { deadline: '7d', pollInitialInterval: '30s' } }, true],
    ['a duration in months', { ...base, policy: { deadline: 'P1M' } }, false],
    ['a duration as a number', { ...base, policy: { deadline: 30 } }, false],
    ['an unknown top-level field', { ...base, priority: 'high' }, false],
    ['an unknown nested field', { ...base, recipient: { email: 'a@example.com', phone: '+1' } }, false],
    ['a notify.workflowId with a line break', { ...base, notify: { workflowId: 'a\nb' } }, false],
    ['a null required field', { ...base, groupId: null }, false],
    ['a rerouteUrl with a leading tab', { ...base, rerouteUrl: '\thttps://example.com/' }, false],
  ])('%s', (_what, raw, accepted) => {
    const validate = validatorFor(input.file);
    expect(validate(raw), JSON.stringify(validate.errors)).toBe(accepted);
    expect(input.schema.safeParse(raw).success).toBe(accepted);
  });
});
