/**
 * docs/configuration.md is the one place that documents environment variables: one table for every
 * process, and a short list for tools and tests. This test keeps it honest against the code: every
 * variable a config schema reads has a row naming the process that reads it, every row is a variable
 * something reads, "required" means required, and no other document grows a variable table of its own.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';

import { codecServerEnvSchema } from '../../src/codec/codec-server.js';
import { codecEnvSchema } from '../../src/codec/keys.js';
import { workerEnvSchema } from '../../src/config/worker-config.js';
import { gatewayEnvSchema } from '../../src/gateway/main.js';
import { gatewaySecretsEnvSchema, returnLinkEnvSchema } from '../../src/gateway/tokens.js';
import { parseDemoArgs } from '../../tools/dev/demo.js';
import { devEnvSchema } from '../../tools/dev/settings.js';
import { sandboxEnvSchema } from '../../tools/heygen-sandbox/env.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

type Shape = Record<string, z.ZodType>;

/** Each schema's variables and the processes that read them (the table's "Read by" must name them). */
const schemas: { what: string; shape: Shape; readBy: string[] }[] = [
  { what: 'workerEnvSchema', shape: workerEnvSchema.shape, readBy: ['worker'] },
  { what: 'codecEnvSchema', shape: codecEnvSchema.shape, readBy: ['worker', 'starter', 'codec server'] },
  { what: 'returnLinkEnvSchema', shape: returnLinkEnvSchema.shape, readBy: ['worker'] },
  { what: 'gatewaySecretsEnvSchema', shape: gatewaySecretsEnvSchema.in.shape, readBy: ['worker', 'gateway'] },
  { what: 'gatewayEnvSchema', shape: gatewayEnvSchema.shape, readBy: ['gateway'] },
  { what: 'codecServerEnvSchema', shape: codecServerEnvSchema.shape, readBy: ['codec server'] },
  { what: 'sandboxEnvSchema', shape: sandboxEnvSchema.shape, readBy: ['sandbox'] },
  { what: 'devEnvSchema', shape: devEnvSchema.shape, readBy: ['dev stack'] },
];

/**
 * Temporal's envconfig (src/temporal-connection.ts): the worker, the starter and the gateway connect
 * with it. Checked below against what the installed @temporalio/envconfig reads.
 */
const ENVCONFIG = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_CLIENT_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_CERT_DATA',
  'TEMPORAL_TLS_CLIENT_KEY_PATH',
  'TEMPORAL_TLS_CLIENT_KEY_DATA',
  'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  'TEMPORAL_TLS_SERVER_CA_CERT_DATA',
  'TEMPORAL_TLS_SERVER_NAME',
  'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION',
  'TEMPORAL_PROFILE',
  'TEMPORAL_CONFIG_FILE',
  'TEMPORAL_GRPC_META_<NAME>',
];
/** envconfig reads these for the `temporal` CLI's remote codec; the TypeScript client ignores them. */
const ENVCONFIG_NOT_OURS = ['TEMPORAL_CODEC_ENDPOINT', 'TEMPORAL_CODEC_AUTH'];

/** `npm run demo`: its schema is private to tools/dev/demo.ts, so each is shown to be read below. */
const DEMO_URLS = ['TEMPORAL_UI_URL', 'INBOX_URL', 'SANDBOX_URL'];

/** The set-up (tools/setup/setup.ts, pip) and the kit's binary lookup (tools/kit/temporal-binaries.ts). */
const SET_UP = ['PYTHON', 'PIP_INDEX_URL', 'TEMPORAL_CLI_PATH', 'TEMPORAL_TEST_SERVER_PATH'];

/** The short list under "Tools and tests": read by a test or a measuring tool, never by the product. */
const TOOLS_AND_TESTS = [
  'TEST_LOG_LEVEL',
  'CHROMIUM_PATH',
  'HEYGEN_SPEC_PATH',
  'AUDIT_REQUIRED',
  'CHAOS_SEED',
  'CHAOS_VERBOSE',
  'CHAOS_PROBE_SETTLE_MS',
  'BENCH_HOLD_SETTLE_MS',
  'BENCH_HOLD_IN_FLIGHT',
];

interface Row {
  name: string;
  readBy: string;
  defaultValue: string;
}

const TABLE_HEADER = /^\|\s*Variable\s*\|\s*Read by\s*\|\s*Default\s*\|\s*Meaning\s*\|\s*$/;
const VARIABLE_CELL = /^`([A-Z][A-Z0-9_]*(?:<NAME>)?)`$/;

function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\||\|$/g, '')
    .split('|')
    .map((cell) => cell.trim());
}

/** The rows of the one variable table. */
function tableRows(markdown: string): Row[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((line) => TABLE_HEADER.test(line));
  if (start < 0)
    throw new Error('docs/configuration.md has no "| Variable | Read by | Default | Meaning |" table');
  const rows: Row[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const [variable = '', readBy = '', defaultValue = ''] = cells(line);
    const name = VARIABLE_CELL.exec(variable)?.[1];
    if (!name) throw new Error(`not a variable cell: ${variable} (in: ${line.slice(0, 80)})`);
    rows.push({ name, readBy, defaultValue });
  }
  return rows;
}

/** The variables listed under the "Tools and tests" heading, one per bullet. */
function toolsAndTestsList(markdown: string): string[] {
  const section = /^## Tools and tests\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(markdown)?.[1];
  if (section === undefined) throw new Error('docs/configuration.md has no "## Tools and tests" section');
  return [...section.matchAll(/^- `([A-Z][A-Z0-9_]*)`/gm)].map((match) => match[1]!);
}

/** The TEMPORAL_* variables the installed @temporalio/envconfig reads (a prefix ends in "_"). */
function envconfigVariables(): string[] {
  const lib = dirname(createRequire(import.meta.url).resolve('@temporalio/envconfig'));
  const names = new Set<string>();
  for (const file of readdirSync(lib).filter((name) => name.endsWith('.js'))) {
    for (const match of readFileSync(join(lib, file), 'utf8').matchAll(/['"](TEMPORAL_[A-Z0-9_]+)['"]/g)) {
      names.add(match[1]!.endsWith('_') ? `${match[1]!}<NAME>` : match[1]!);
    }
  }
  return [...names].sort();
}

const doc = read('docs/configuration.md');
const rows = tableRows(doc);
const byName = new Map(rows.map((row) => [row.name, row]));

describe('docs/configuration.md', () => {
  it('has one row per variable, in one table', () => {
    expect(doc.split('\n').filter((line) => TABLE_HEADER.test(line))).toHaveLength(1);
    const names = rows.map((row) => row.name);
    const twice = names.filter((name, index) => names.indexOf(name) !== index);
    expect(twice).toEqual([]);
  });

  it('has a row for every variable of every config schema, naming the processes that read it', () => {
    const missing: string[] = [];
    const wrongProcess: string[] = [];
    for (const { what, shape, readBy } of schemas) {
      for (const name of Object.keys(shape)) {
        const row = byName.get(name);
        if (!row) missing.push(`${name} (${what})`);
        else
          for (const reader of readBy)
            if (!row.readBy.includes(reader)) wrongProcess.push(`${name}: "${row.readBy}" lacks ${reader}`);
      }
    }
    for (const name of ENVCONFIG) {
      const row = byName.get(name);
      if (!row) missing.push(`${name} (envconfig)`);
      else
        for (const reader of ['worker', 'starter', 'gateway'])
          if (!row.readBy.includes(reader)) wrongProcess.push(`${name}: "${row.readBy}" lacks ${reader}`);
    }
    for (const name of [...DEMO_URLS, ...SET_UP]) if (!byName.has(name)) missing.push(name);
    expect(missing).toEqual([]);
    expect(wrongProcess).toEqual([]);
  });

  it('has no row for a variable that nothing reads', () => {
    const known = new Set([
      ...schemas.flatMap(({ shape }) => Object.keys(shape)),
      ...ENVCONFIG,
      ...DEMO_URLS,
      ...SET_UP,
    ]);
    expect(rows.map((row) => row.name).filter((name) => !known.has(name))).toEqual([]);
  });

  it('says "required" exactly where a schema has neither a default nor an optional value', () => {
    const wrong: string[] = [];
    for (const { shape } of schemas) {
      for (const [name, schema] of Object.entries(shape)) {
        const required = !schema.safeParse(undefined).success;
        const saysRequired = /^required\b/.test(byName.get(name)?.defaultValue ?? '');
        if (required !== saysRequired)
          wrong.push(`${name}: required ${required}, table says "${byName.get(name)?.defaultValue}"`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("lists Temporal's envconfig variables as the installed SDK reads them", () => {
    expect(envconfigVariables()).toEqual([...ENVCONFIG, ...ENVCONFIG_NOT_OURS].sort());
  });

  it.each(DEMO_URLS)('%s is read by npm run demo', (name) => {
    expect(() => parseDemoArgs([], { [name]: 'not a url' })).toThrow(name);
    expect(byName.get(name)?.readBy).toContain('demo');
  });

  it('lists the tools-and-tests variables apart, and only those', () => {
    const listed = toolsAndTestsList(doc);
    expect([...listed].sort()).toEqual([...TOOLS_AND_TESTS].sort());
    expect(listed.filter((name) => byName.has(name))).toEqual([]);
  });

  it('is the only document with a table of variables', () => {
    const others = ['README.md', ...readdirSync(join(root, 'docs')).map((name) => `docs/${name}`)].filter(
      (path) => path.endsWith('.md') && path !== 'docs/configuration.md',
    );
    const withTable = others.filter((path) =>
      read(path)
        .split('\n')
        .some((line) => /^\|\s*variable\s*\|/i.test(line)),
    );
    expect(withTable).toEqual([]);
  });
});
