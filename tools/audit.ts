/**
 * The dependency check CI runs (`npm run audit`), in two parts, each saying plainly what it checked:
 *
 * 1. The lockfile policy, offline, always: package-lock.json against lockfile-policy.json. Every
 *    package comes from an allowed registry with an integrity hash (no git, URL or file sources unless
 *    allow-listed), only allow-listed packages have install scripts, and the development tools listed
 *    there are not in the production tree (the worker image). Any breach exits 1.
 * 2. `npm audit --omit=dev` at high severity, with audit-allowlist.json where each accepted advisory
 *    carries a reason. Exits 1 on any high or critical advisory not allowed. Where npm cannot get
 *    advisories (the registry here answers 405 to npm's advisory endpoint), this says so loudly, says
 *    that no advisory was checked, and exits 0, or 1 when AUDIT_REQUIRED=1.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { isEntryPoint } from './kit/cli.js';

const root = new URL('../', import.meta.url);

// ---------------------------------------------------------------------------------------------
// Part 1: the lockfile policy (offline)

const reason = z.string().min(20, 'give the reason, in at least 20 characters');

export const lockfilePolicySchema = z.strictObject({
  $comment: z.string().optional(),
  /** Where packages may come from (a `resolved` URL must start with one of these). */
  registries: z.array(z.url({ protocol: /^https$/ })).min(1),
  /** Packages allowed to run install scripts (preinstall, install, postinstall), by name. */
  installScripts: z.array(z.strictObject({ package: z.string().min(1), reason })),
  /** Packages allowed from git, a tarball URL or the file system, each with its exact `resolved`. */
  nonRegistrySources: z.array(
    z.strictObject({ package: z.string().min(1), resolved: z.string().min(1), reason }),
  ),
  /** Packages that must stay out of the production tree (`npm ci --omit=dev`, the worker image). */
  devOnly: z.array(z.strictObject({ package: z.string().min(1), reason })),
});
export type LockfilePolicy = z.infer<typeof lockfilePolicySchema>;

/** The part of a package-lock.json (lockfileVersion 2 or 3) the policy reads. */
interface LockEntry {
  name?: string;
  version?: string;
  resolved?: string;
  integrity?: string;
  link?: boolean;
  dev?: boolean;
  devOptional?: boolean;
  hasInstallScript?: boolean;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}
export interface Lockfile {
  lockfileVersion?: number;
  packages?: Record<string, LockEntry>;
}
export interface Manifest {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

export interface LockfileReport {
  /** Installed packages checked (the root project excluded). */
  packages: number;
  /** Each breach, naming the package, its place in node_modules and the rule. Empty when all is well. */
  problems: string[];
  /** The allowed install scripts found, as `name@version (path)`. */
  installScripts: string[];
}

/** `node_modules/a/node_modules/@s/b` → `@s/b`; an aliased package has its real name in `name`. */
function packageName(path: string, entry: LockEntry): string {
  return entry.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
}

/** What kind of place a `resolved` names, for messages. */
function sourceKind(resolved: string): string {
  if (/^(git\+|git:|github:|gitlab:|bitbucket:)/.test(resolved)) return 'a git repository';
  if (/^https?:/.test(resolved)) return 'a URL outside the allowed registries';
  return 'the file system';
}

/** Checks a lockfile against the policy (and, given package.json, that the lockfile matches it). */
export function checkLockfile(lock: Lockfile, policy: LockfilePolicy, manifest?: Manifest): LockfileReport {
  const problems: string[] = [];
  const installScripts: string[] = [];
  const entries = Object.entries(lock.packages ?? {});
  if (lock.lockfileVersion === undefined || lock.lockfileVersion < 2 || entries.length === 0) {
    return {
      packages: 0,
      problems: [
        'package-lock.json has no "packages" (lockfileVersion 2 or 3 needed): nothing could be checked',
      ],
      installScripts,
    };
  }
  const scriptAllowed = new Set(policy.installScripts.map((entry) => entry.package));
  const sourceAllowed = new Set(
    policy.nonRegistrySources.map((entry) => `${entry.package} ${entry.resolved}`),
  );
  const devOnly = new Set(policy.devOnly.map((entry) => entry.package));
  const used = { scripts: new Set<string>(), sources: new Set<string>(), devOnly: new Set<string>() };
  let packages = 0;

  for (const [path, entry] of entries) {
    if (path === '') continue;
    packages += 1;
    const name = packageName(path, entry);
    const id = `${name}@${entry.version ?? '?'} (${path})`;

    if (entry.hasInstallScript) {
      if (scriptAllowed.has(name)) {
        used.scripts.add(name);
        installScripts.push(id);
      } else {
        problems.push(
          `${id} runs an install script that lockfile-policy.json does not allow: read it, then allow it with a reason or drop the package`,
        );
      }
    }

    // A link (workspace or `file:` dependency) points at a folder; its `resolved` is a relative path.
    const resolved = entry.link ? `file:${entry.resolved ?? ''}` : entry.resolved;
    const fromRegistry =
      resolved === undefined || policy.registries.some((registry) => resolved.startsWith(registry));
    if (!fromRegistry) {
      const key = `${name} ${resolved}`;
      if (sourceAllowed.has(key)) used.sources.add(key);
      else problems.push(`${id} comes from ${sourceKind(resolved)} (${resolved}), not an allowed registry`);
    }
    // npm verifies every download against this hash; without it a tampered tarball would install.
    if (fromRegistry && !entry.integrity) problems.push(`${id} has no integrity hash`);

    if (devOnly.has(name)) {
      used.devOnly.add(name);
      if (!entry.dev)
        problems.push(
          `${id} is in the production tree (npm ci --omit=dev keeps it), but it is a development tool (devOnly)`,
        );
    }
  }

  // Entries that match nothing make the policy look stricter than it is: they go.
  for (const entry of policy.installScripts)
    if (!used.scripts.has(entry.package))
      problems.push(
        `installScripts: ${entry.package} has no install script in the lockfile: remove the entry`,
      );
  for (const entry of policy.nonRegistrySources)
    if (!used.sources.has(`${entry.package} ${entry.resolved}`))
      problems.push(
        `nonRegistrySources: ${entry.package} from ${entry.resolved} is not in the lockfile: remove the entry`,
      );
  for (const entry of policy.devOnly)
    if (!used.devOnly.has(entry.package))
      problems.push(`devOnly: ${entry.package} is not in the lockfile: remove the entry`);

  if (manifest) {
    const rootEntry = lock.packages?.[''] ?? {};
    for (const field of ['dependencies', 'devDependencies'] as const) {
      const wanted = manifest[field] ?? {};
      const locked = rootEntry[field] ?? {};
      const names = new Set([...Object.keys(wanted), ...Object.keys(locked)]);
      for (const name of [...names].sort())
        if (wanted[name] !== locked[name])
          problems.push(
            `package.json ${field}.${name} is ${wanted[name] ?? 'absent'} but package-lock.json has ${locked[name] ?? 'nothing'}: run npm install`,
          );
    }
  }
  return { packages, problems, installScripts };
}

function readJson(relative: string): unknown {
  return JSON.parse(readFileSync(new URL(relative, root), 'utf8'));
}

/** The repository's policy, lockfile and package.json, checked. */
export function checkRepositoryLockfile(): LockfileReport {
  const parsed = lockfilePolicySchema.safeParse(readJson('lockfile-policy.json'));
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    return {
      packages: 0,
      problems: issues.map((issue) => `lockfile-policy.json ${issue}`),
      installScripts: [],
    };
  }
  return checkLockfile(
    readJson('package-lock.json') as Lockfile,
    parsed.data,
    readJson('package.json') as Manifest,
  );
}

// ---------------------------------------------------------------------------------------------
// Part 2: npm audit (needs the registry's advisory endpoint)

const allowListSchema = z.object({
  advisories: z.array(
    z.strictObject({
      /** The advisory URL or GHSA ID, as npm audit prints it. */
      id: z.string().min(1),
      package: z.string().min(1),
      reason: z.string().min(10, 'say why it is acceptable'),
      /** When to look again (ISO date). */
      reviewBy: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
    }),
  ),
});

interface Advisory {
  source?: number;
  url?: string;
  title?: string;
  severity?: string;
}
interface Vulnerability {
  name: string;
  severity: string;
  via: (string | Advisory)[];
}
interface AuditJson {
  vulnerabilities?: Record<string, Vulnerability>;
  message?: string;
  statusCode?: number;
  error?: { code?: string; summary?: string };
}

export type AuditOutcome = { ran: true; blocking: string[]; allowed: number } | { ran: false; why: string };

export interface NpmRun {
  status: number | null;
  stdout: string;
  stderr: string;
  error?: Error;
}

/**
 * npm as `npm run` started us (npm_execpath), so the audit uses the same npm; `npm` on PATH otherwise.
 * Nothing is installed or changed: `npm audit` only reads the lockfile and asks the registry.
 */
function runNpmAudit(): NpmRun {
  const args = ['audit', '--omit=dev', '--json'];
  const options = { encoding: 'utf8', cwd: fileURLToPath(root) } as const;
  const npmCli = process.env.npm_execpath;
  const run =
    npmCli && /\.[cm]?js$/.test(npmCli)
      ? spawnSync(process.execPath, [npmCli, ...args], options)
      : spawnSync('npm', args, options);
  return {
    status: run.status,
    stdout: run.stdout ?? '',
    stderr: run.stderr ?? '',
    ...(run.error ? { error: run.error } : {}),
  };
}

/** Why npm produced no report, in words that say what failed: npm itself, the network or the registry. */
function whyNoReport(run: NpmRun, report: AuditJson | undefined): string {
  if (run.error) return `npm could not be started (${run.error.message})`;
  if (!report) {
    const last = run.stderr.trim().split('\n').at(-1) ?? '';
    return `npm exited with code ${run.status} without a report${last ? ` (${last})` : ''}`;
  }
  const said = report.message ?? report.error?.summary ?? report.error?.code ?? 'no reason given';
  if (report.statusCode === 405 || /\b405\b/.test(said))
    return `the registry does not serve npm's advisory endpoint (${said})`;
  if (/ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|ECONNRESET/.test(`${said} ${report.error?.code ?? ''}`))
    return `the advisory endpoint could not be reached (${said})`;
  return `npm audit failed (${said})`;
}

/** What `npm audit --json` said: the advisories that block, or why there was no report. */
export function auditOutcome(run: NpmRun, allowedIds: ReadonlySet<string>): AuditOutcome {
  let report: AuditJson | undefined;
  try {
    report = JSON.parse(run.stdout) as AuditJson;
  } catch {
    report = undefined;
  }
  if (!report?.vulnerabilities) return { ran: false, why: whyNoReport(run, report) };
  const blocking: string[] = [];
  for (const vuln of Object.values(report.vulnerabilities)) {
    if (vuln.severity !== 'high' && vuln.severity !== 'critical') continue;
    for (const via of vuln.via) {
      if (typeof via === 'string') continue; // reached through another package, reported there
      const id = via.url ?? String(via.source);
      const ghsa = /GHSA-[\w-]+/.exec(id)?.[0];
      if (allowedIds.has(id) || (ghsa && allowedIds.has(ghsa))) continue;
      blocking.push(`${vuln.severity} ${vuln.name}: ${via.title ?? ''} ${id}`);
    }
  }
  return { ran: true, blocking, allowed: allowedIds.size };
}

// ---------------------------------------------------------------------------------------------

function main(): number {
  let failed = false;

  const lockfile = checkRepositoryLockfile();
  if (lockfile.problems.length > 0) {
    console.error(
      `lockfile policy (offline): ${lockfile.problems.length} problem(s):\n  ${lockfile.problems.join('\n  ')}`,
    );
    failed = true;
  } else {
    console.log(
      `lockfile policy (offline): ${lockfile.packages} packages checked: all from the allowed registries with ` +
        `integrity hashes; install scripts only from the allowed ${lockfile.installScripts.length} ` +
        `(${lockfile.installScripts.join(', ')}); dev-only tools out of the production tree. OK`,
    );
  }

  const allowList = allowListSchema.parse(readJson('audit-allowlist.json'));
  const today = new Date().toISOString().slice(0, 10);
  for (const entry of allowList.advisories) {
    if (entry.reviewBy < today)
      console.warn(
        `audit allow-list: ${entry.id} (${entry.package}) was due for review on ${entry.reviewBy}`,
      );
  }
  const audit = auditOutcome(runNpmAudit(), new Set(allowList.advisories.map((a) => a.id)));
  if (!audit.ran) {
    console.warn(`\n*** npm audit could NOT run: ${audit.why}.`);
    console.warn(
      '*** No advisory database was consulted: known vulnerabilities were NOT checked in this run.',
    );
    console.warn(
      '*** Only the lockfile policy above ran. Run `npm run audit` where the registry serves advisories, ' +
        'or set AUDIT_REQUIRED=1 to make this a failure.\n',
    );
    if (process.env.AUDIT_REQUIRED === '1') failed = true;
  } else if (audit.blocking.length > 0) {
    console.error(
      `npm audit: ${audit.blocking.length} high/critical advisories not in audit-allowlist.json:\n  ${audit.blocking.join('\n  ')}`,
    );
    failed = true;
  } else {
    console.log(
      `npm audit: no high or critical advisories outside the allow-list (${audit.allowed} allowed).`,
    );
  }
  return failed ? 1 : 0;
}

if (isEntryPoint(import.meta.url)) process.exit(main());
