// Checks docker-compose.yml, .env.example and the Dockerfile without a Docker engine: the compose
// file against the Compose Specification JSON schema (the copy dclint ships), pinned images, every
// ${VAR} documented, the worker's dependencies and environment, and host ports that do not collide.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadWorkerConfig, workerEnvSchema } from '../../src/config/worker-config.js';
import { CONSENT_SEARCH_ATTRIBUTES } from '../../src/contract/index.js';
import { sandboxEnvSchema } from '../../tools/heygen-sandbox/env.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const composeText = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
const envExampleText = readFileSync(join(root, '.env.example'), 'utf8');
const dockerfileText = readFileSync(join(root, 'Dockerfile'), 'utf8');

type Json = Record<string, unknown>;

interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  depends_on?: string[] | Record<string, { condition: string; required?: boolean }>;
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: Array<string | number | Json>;
  healthcheck?: Json;
  command?: string | string[];
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
/** The file as `docker compose config` sees it with an empty environment (all defaults). */
const resolvedCompose = interpolateDocument(compose, {}) as Json;
const resolvedServices = resolvedCompose.services as Record<string, Service>;
const envEntries = parseEnvExample(envExampleText);

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
    expect(pulled.length).toBeGreaterThanOrEqual(5);
    for (const [service, { image }] of pulled) {
      expect(image, `${service} has neither image nor build`).toBeDefined();
      const { tag, digest } = parseImage(image!);
      expect(isPinnedTag(tag) || digest !== null, `${service}: ${image} is not pinned`).toBe(true);
    }
  });

  it('builds the worker and the sandbox from the Dockerfile, never pulling a floating tag for them', () => {
    for (const name of ['worker', 'heygen-sandbox']) {
      const service = resolvedServices[name];
      expect(service?.build, `${name} has no build section`).toBeDefined();
      const { tag } = parseImage(service!.image ?? '');
      expect(tag, `${name} builds an untagged image`).not.toBeNull();
      expect(tag).not.toBe('latest');
    }
    expect(resolvedServices['heygen-sandbox']?.build).toMatchObject({ target: 'heygen-sandbox' });
    expect(resolvedServices.worker?.build).toMatchObject({ target: 'worker' });
    // Separate images: the worker's holds only the product.
    expect(resolvedServices['heygen-sandbox']?.image).not.toBe(resolvedServices.worker?.image);
  });

  it('the Dockerfile pins its base image by version, builds dist/ and runs the worker as non-root', () => {
    const base = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfileText)?.[1];
    expect(base).toBeDefined();
    const parsed = parseImage(base!);
    expect(parsed.name).toBe('node');
    expect(parsed.tag).toMatch(/^20\.\d+\.\d+-bookworm-slim$/);
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
    expect(dockerfileText).toMatch(/^RUN .*npm ci\b/m);
    expect(dockerfileText).toMatch(/npm run build/);
    expect(dockerfileText).toMatch(/test -f dist\/workflows\/index\.js/);
    expect(dockerfileText).toMatch(/npm prune --omit=dev/);
    expect(dockerfileText).toMatch(/^USER node$/m);
    expect(dockerfileText).toMatch(/^CMD \["node", "dist\/worker\.js"\]$/m);
  });
});

describe('docker-compose.yml: variables and .env.example', () => {
  const composeStrings = stringsIn(compose);
  const used = composeStrings.flatMap(substitutionsIn);
  const documented = new Map(envEntries.map((entry) => [entry.name, entry]));

  it('uses only ${VAR} forms with a default, so an empty .env starts the local stack', () => {
    expect(used.length).toBeGreaterThan(10);
    for (const substitution of used) {
      expect(substitution.operator, `\${${substitution.name}} has no :- default`).toBe(':-');
    }
    // A bare $NAME (no braces) is interpolated by Compose too and easy to miss: use ${NAME} or $$NAME.
    for (const text of composeStrings) expect(text.replaceAll('$$', '')).not.toMatch(/\$[A-Za-z_]/);
  });

  it('documents every variable it uses in .env.example, with a comment and the same default', () => {
    for (const { name, value } of used) {
      const entry = documented.get(name);
      expect(entry, `${name} is not in .env.example`).toBeDefined();
      expect(entry!.commentedOut, `${name} is commented out in .env.example`).toBe(false);
      expect(entry!.comment.join(' ').trim().length, `${name} has no comment`).toBeGreaterThan(10);
      expect(entry!.value, `${name}: .env.example and the compose default differ`).toBe(value);
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

  it('the default profile list names profiles that exist', () => {
    const profiles = new Set(Object.values(services).flatMap((service) => service.profiles ?? []));
    const enabled = documented.get('COMPOSE_PROFILES')?.value.split(',').filter(Boolean) ?? [];
    expect(enabled).toEqual(['sandbox']);
    for (const profile of enabled)
      expect(profiles.has(profile), `no service has profile ${profile}`).toBe(true);
  });
});

describe('docker-compose.yml: services', () => {
  it('has the stack: postgres, temporal, search attributes, UI, mail, sandbox (optional), worker', () => {
    expect(Object.keys(services).sort()).toEqual(
      [
        'codec-server',
        'gateway',
        'heygen-sandbox',
        'mailpit',
        'postgresql',
        'temporal',
        'temporal-admin-tools',
        'temporal-ui',
        'worker',
      ].sort(),
    );
    expect(services['heygen-sandbox']?.profiles).toEqual(['sandbox']);
    expect(services.gateway?.profiles).toEqual(['gateway']);
    expect(services['codec-server']?.profiles).toEqual(['encryption']);
    for (const name of ['postgresql', 'temporal', 'heygen-sandbox']) {
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

  it('the worker waits for Temporal, the search attributes, mail, and (when enabled) the sandbox', () => {
    const deps = dependenciesOf(services.worker!);
    expect(deps.temporal?.condition).toBe('service_healthy');
    expect(deps['temporal-admin-tools']?.condition).toBe('service_completed_successfully');
    expect(deps.mailpit).toBeDefined();
    // The sandbox is in a profile: without required:false the worker could not start on real HeyGen.
    expect(deps['heygen-sandbox']).toEqual({ condition: 'service_healthy', required: false });
  });

  it('registers exactly the search attributes of the contract, as Keyword', () => {
    const script = JSON.stringify(services['temporal-admin-tools']?.command);
    const loop = /for name in ([A-Za-z ]+);/.exec(script)?.[1]?.split(' ');
    expect(loop?.sort()).toEqual(CONSENT_SEARCH_ATTRIBUTES.map((key) => key.name).sort());
    for (const key of CONSENT_SEARCH_ATTRIBUTES) expect(key.type).toBe('KEYWORD');
    expect(script).toMatch(/search-attribute create .*--type Keyword/);
  });

  it('gives the worker every variable its config requires, only known ones, and the defaults parse', () => {
    const env = environmentOf(resolvedServices.worker!);
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
      ]),
    );
    const parsed = workerEnvSchema.safeParse(
      Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')),
    );
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
    // The whole worker config (codec keys, return links, Temporal connection) accepts the defaults too.
    const config = loadWorkerConfig({
      ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])),
      TEMPORAL_CONFIG_FILE: '/nonexistent/avatar-consent.toml',
    });
    expect(config.temporal.connectionOptions.address).toBe('temporal:7233');
    expect(parsed.data).toMatchObject({
      HEYGEN_BASE_URL: 'http://heygen-sandbox:4010',
      SMTP_URL: 'smtp://mailpit:1025',
    });
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
    // The worker's key is one the sandbox accepts.
    expect(parsed.SANDBOX_API_KEYS).toContain(environmentOf(resolvedServices.worker!).HEYGEN_API_KEY);
  });
});

describe('docker-compose.yml: ports', () => {
  const ports = Object.entries(resolvedServices).flatMap(([name, service]) =>
    (service.ports ?? []).flatMap((spec) => publishedPorts(name, spec)),
  );

  it('publishes the UI, Temporal, Mailpit and the sandbox on loopback by default', () => {
    const byService = (name: string) => ports.filter((port) => port.service === name).map((p) => p.hostPort);
    expect(byService('temporal')).toEqual([7233]);
    expect(byService('temporal-ui')).toEqual([8080]);
    expect(byService('mailpit').sort()).toEqual([1025, 8025]);
    expect(byService('heygen-sandbox')).toEqual([4010]);
    expect(byService('postgresql')).toEqual([]); // only Temporal talks to it
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

  it('detects a collision (the check is live)', () => {
    const clash = publishedPorts('x', '127.0.0.1:8080:80').concat(publishedPorts('y', '8080:8080'));
    expect(new Set(clash.map((port) => `${port.hostPort}/${port.protocol}`)).size).toBe(1);
    expect(interpolate('${A:-1}:${B:-2}:$$C', { B: '9' })).toBe('1:9:$C');
    expect(isPinnedTag('latest')).toBe(false);
    expect(isPinnedTag(parseImage('localhost:5000/postgres').tag)).toBe(false);
    expect(isPinnedTag(parseImage('localhost:5000/postgres:16.10').tag)).toBe(true);
  });
});
