/**
 * The supply-chain checks that need no network: package-lock.json against lockfile-policy.json, and
 * what `npm run audit` reports when npm's advisory endpoint cannot be used.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  auditOutcome,
  checkLockfile,
  checkRepositoryLockfile,
  lockfilePolicySchema,
} from '../../tools/audit.js';
import type { Lockfile, LockfilePolicy } from '../../tools/audit.js';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
const REGISTRY = 'https://registry.npmjs.org/';

describe('the repository', () => {
  it('package-lock.json follows lockfile-policy.json, and matches package.json', () => {
    const report = checkRepositoryLockfile();
    expect(report.problems).toEqual([]);
    expect(report.packages).toBeGreaterThan(100);
    const policy = lockfilePolicySchema.parse(JSON.parse(read('lockfile-policy.json')));
    expect(report.installScripts.map((id) => /^(.+?)@[^@\s]+ \(/.exec(id)?.[1]).sort()).toEqual(
      policy.installScripts.map((entry) => entry.package).sort(),
    );
  });

  it('tsx and its esbuild are development dependencies: the production tree (the image) has neither', () => {
    const manifest = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    expect(Object.keys(manifest.dependencies)).not.toContain('tsx');
    const lock = JSON.parse(read('package-lock.json')) as Lockfile;
    expect(lock.packages?.['node_modules/tsx']?.dev).toBe(true);
    expect(lock.packages?.['node_modules/esbuild']?.dev).toBe(true);
  });

  it('what the image runs is compiled JavaScript: no command of the Dockerfile or compose file needs tsx', () => {
    const dockerfile = read('Dockerfile');
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    const commands = runtime.split('\n').filter((line) => /^(CMD|ENTRYPOINT)\b/.test(line));
    expect(commands).toEqual(['CMD ["node", "dist/worker.js"]']);
    const composeCommands = read('docker-compose.yml')
      .split('\n')
      .filter((line) => /^\s+command: \['node'/.test(line));
    expect(composeCommands.length).toBeGreaterThan(0);
    for (const line of [...commands, ...composeCommands]) {
      expect(line).not.toMatch(/tsx|ts-node|\.ts\b/);
      expect(line).toMatch(/dist\//);
    }
  });
});

// ---------------------------------------------------------------------------------------------

const policy: LockfilePolicy = {
  registries: [REGISTRY],
  installScripts: [{ package: 'native-thing', reason: 'checks its prebuilt binary, downloads nothing' }],
  nonRegistrySources: [],
  devOnly: [{ package: 'tsx', reason: 'runs TypeScript in development only' }],
};

/** A lockfile with the allowed install script and the dev tool, plus `more` entries. */
function lockWith(more: Record<string, object> = {}): Lockfile {
  return {
    lockfileVersion: 3,
    packages: {
      '': { dependencies: { 'native-thing': '1.0.0' }, devDependencies: { tsx: '4.0.0' } },
      'node_modules/native-thing': { version: '1.0.0', integrity: 'sha512-a', hasInstallScript: true },
      'node_modules/tsx': { version: '4.0.0', integrity: 'sha512-b', dev: true },
      ...more,
    },
  };
}

function problemsOf(lock: Lockfile, withPolicy: LockfilePolicy = policy): string[] {
  return checkLockfile(lock, withPolicy).problems;
}

describe('checkLockfile', () => {
  it('passes a lockfile within the policy, listing the allowed install script', () => {
    const report = checkLockfile(lockWith(), policy);
    expect(report).toEqual({
      packages: 2,
      problems: [],
      installScripts: ['native-thing@1.0.0 (node_modules/native-thing)'],
    });
  });

  it('fails on an install script that is not allowed, naming the package and where it is', () => {
    const problems = problemsOf(
      lockWith({
        'node_modules/a/node_modules/@evil/postinstall': {
          version: '6.6.6',
          integrity: 'sha512-c',
          hasInstallScript: true,
        },
      }),
    );
    expect(problems).toEqual([
      '@evil/postinstall@6.6.6 (node_modules/a/node_modules/@evil/postinstall) runs an install script that lockfile-policy.json does not allow: read it, then allow it with a reason or drop the package',
    ]);
  });

  it('knows an aliased package by its real name', () => {
    const problems = problemsOf(
      lockWith({
        'node_modules/innocent-alias': {
          name: 'sneaky',
          version: '1.0.0',
          integrity: 'sha512-d',
          hasInstallScript: true,
        },
      }),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^sneaky@1\.0\.0 \(node_modules\/innocent-alias\) runs an install script/);
  });

  it.each([
    ['git+ssh://git@github.com/x/y.git#0123abc', 'a git repository'],
    ['git+https://github.com/x/y.git#0123abc', 'a git repository'],
    ['https://codeload.github.com/x/y/tar.gz/0123abc', 'a URL outside the allowed registries'],
    ['https://registry.npmjs.org.evil.example/y/-/y-1.0.0.tgz', 'a URL outside the allowed registries'],
    ['http://registry.npmjs.org/y/-/y-1.0.0.tgz', 'a URL outside the allowed registries'],
    ['file:../vendor/y-1.0.0.tgz', 'the file system'],
  ])('fails on a package from %s', (resolved, kind) => {
    const problems = problemsOf(lockWith({ 'node_modules/y': { version: '1.0.0', resolved } }));
    expect(problems).toEqual([
      `y@1.0.0 (node_modules/y) comes from ${kind} (${resolved}), not an allowed registry`,
    ]);
  });

  it('fails on a linked folder (a file: dependency or workspace)', () => {
    const problems = problemsOf(lockWith({ 'node_modules/local': { resolved: '../local', link: true } }));
    expect(problems).toEqual([
      'local@? (node_modules/local) comes from the file system (file:../local), not an allowed registry',
    ]);
  });

  it('allows a non-registry source listed with its exact resolved value, and only that one', () => {
    const resolved = 'git+https://github.com/x/y.git#0123abc';
    const allowing: LockfilePolicy = {
      ...policy,
      nonRegistrySources: [{ package: 'y', resolved, reason: 'a fork with a fix not yet released' }],
    };
    expect(problemsOf(lockWith({ 'node_modules/y': { version: '1.0.0', resolved } }), allowing)).toEqual([]);
    const moved = 'git+https://github.com/x/y.git#fffffff';
    expect(
      problemsOf(lockWith({ 'node_modules/y': { version: '1.0.0', resolved: moved } }), allowing),
    ).toEqual([
      `y@1.0.0 (node_modules/y) comes from a git repository (${moved}), not an allowed registry`,
      `nonRegistrySources: y from ${resolved} is not in the lockfile: remove the entry`,
    ]);
  });

  it('accepts registry packages with or without a resolved URL, but not without an integrity hash', () => {
    const problems = problemsOf(
      lockWith({
        'node_modules/listed': {
          version: '1.0.0',
          resolved: `${REGISTRY}listed/-/listed-1.0.0.tgz`,
          integrity: 'x',
        },
        'node_modules/omitted': { version: '1.0.0', integrity: 'x' },
        'node_modules/unhashed': { version: '1.0.0' },
      }),
    );
    expect(problems).toEqual(['unhashed@1.0.0 (node_modules/unhashed) has no integrity hash']);
  });

  it('fails when a development tool is in the production tree', () => {
    const lock = lockWith();
    lock.packages!['node_modules/tsx'] = { version: '4.0.0', integrity: 'sha512-b' };
    expect(problemsOf(lock)).toEqual([
      'tsx@4.0.0 (node_modules/tsx) is in the production tree (npm ci --omit=dev keeps it), but it is a development tool (devOnly)',
    ]);
  });

  it('fails on policy entries that match nothing, so the allow-lists stay short', () => {
    const lock = lockWith();
    delete lock.packages!['node_modules/tsx'];
    lock.packages!['node_modules/native-thing']!.hasInstallScript = false;
    expect(problemsOf(lock)).toEqual([
      'installScripts: native-thing has no install script in the lockfile: remove the entry',
      'devOnly: tsx is not in the lockfile: remove the entry',
    ]);
  });

  it('fails when package-lock.json does not match package.json (npm ci would install something else)', () => {
    const report = checkLockfile(lockWith(), policy, {
      dependencies: { 'native-thing': '1.0.1' },
      devDependencies: { tsx: '4.0.0', vitest: '4.0.0' },
    });
    expect(report.problems).toEqual([
      'package.json dependencies.native-thing is 1.0.1 but package-lock.json has 1.0.0: run npm install',
      'package.json devDependencies.vitest is 4.0.0 but package-lock.json has nothing: run npm install',
    ]);
  });

  it('refuses to pass a lockfile it cannot read (lockfileVersion 1 has no "packages")', () => {
    expect(problemsOf({ lockfileVersion: 1 })).toEqual([
      'package-lock.json has no "packages" (lockfileVersion 2 or 3 needed): nothing could be checked',
    ]);
  });

  it('the policy file needs a reason for every entry, and https registries', () => {
    const parsed = lockfilePolicySchema.safeParse({
      registries: ['http://registry.example/'],
      installScripts: [{ package: 'x' }],
      nonRegistrySources: [],
      devOnly: [{ package: 'y', reason: 'short' }],
    });
    expect(parsed.success).toBe(false);
    const paths = parsed.error!.issues.map((issue) => issue.path.join('.'));
    expect(paths).toEqual(['registries.0', 'installScripts.0.reason', 'devOnly.0.reason']);
  });
});

describe('npm audit, as CI reports it', () => {
  const allowed = new Set(['GHSA-aaaa-bbbb-cccc']);

  it('a registry that refuses the advisory endpoint (405) is reported as such: nothing was checked', () => {
    const outcome = auditOutcome(
      {
        status: 1,
        stdout: JSON.stringify({
          message:
            '405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk',
          statusCode: 405,
        }),
        stderr: 'npm error audit endpoint returned an error',
      },
      allowed,
    );
    expect(outcome).toEqual({
      ran: false,
      why: "the registry does not serve npm's advisory endpoint (405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk)",
    });
  });

  it('no network and a broken npm are told apart from a registry without advisories', () => {
    const offline = auditOutcome(
      {
        status: 1,
        stdout: JSON.stringify({ error: { code: 'ENOTFOUND', summary: 'getaddrinfo ENOTFOUND' } }),
        stderr: '',
      },
      allowed,
    );
    expect(offline).toEqual({
      ran: false,
      why: 'the advisory endpoint could not be reached (getaddrinfo ENOTFOUND)',
    });
    const crashed = auditOutcome(
      { status: 1, stdout: '', stderr: 'ReferenceError: require is not defined\n\nNode.js v24.19.0' },
      allowed,
    );
    expect(crashed).toEqual({
      ran: false,
      why: 'npm exited with code 1 without a report (Node.js v24.19.0)',
    });
    const missing = auditOutcome(
      { status: null, stdout: '', stderr: '', error: new Error('spawnSync npm ENOENT') },
      allowed,
    );
    expect(missing).toEqual({ ran: false, why: 'npm could not be started (spawnSync npm ENOENT)' });
  });

  it('a high advisory blocks unless allow-listed; moderate ones and indirect mentions do not', () => {
    const vulnerability = (name: string, severity: string, url: string) => ({
      name,
      severity,
      via: [{ source: 1, url, title: `${name} is bad`, severity }, 'some-parent'],
    });
    const outcome = auditOutcome(
      {
        status: 1,
        stdout: JSON.stringify({
          vulnerabilities: {
            a: vulnerability('a', 'high', 'https://github.com/advisories/GHSA-1111-2222-3333'),
            b: vulnerability('b', 'critical', 'https://github.com/advisories/GHSA-aaaa-bbbb-cccc'),
            c: vulnerability('c', 'moderate', 'https://github.com/advisories/GHSA-4444-5555-6666'),
          },
        }),
        stderr: '',
      },
      allowed,
    );
    expect(outcome).toEqual({
      ran: true,
      allowed: 1,
      blocking: ['high a: a is bad https://github.com/advisories/GHSA-1111-2222-3333'],
    });
  });
});
