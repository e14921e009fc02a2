/** The entry block every command-line tool shares: parse the arguments, run, exit with a code. */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Whether the module with this `import.meta.url` is the script node was started with (not an import). */
export function isEntryPoint(moduleUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && moduleUrl === pathToFileURL(resolve(script)).href;
}

export interface Cli<S> {
  /** e.g. "npm run demo": names the tool when it fails. */
  name: string;
  usage: string;
  /** The settings, or 'help'; throws on bad arguments or environment. */
  parse: (argv: string[]) => S | 'help';
  /** The exit code. */
  run: (settings: S) => Promise<number>;
  /** Print the stack of an unexpected failure (default true); false where failures are meant for users. */
  stack?: boolean;
}

/**
 * Runs a tool: bad arguments print the problem and the usage (exit 2), --help the usage (exit 0);
 * then the exit code `run` returns, or 1 with the failure when it throws.
 */
export function runCli<S>(cli: Cli<S>, argv: string[] = process.argv.slice(2)): void {
  let settings: S | 'help';
  try {
    settings = cli.parse(argv);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    console.error(`\n${cli.usage}`);
    process.exit(2);
  }
  if (settings === 'help') {
    console.log(cli.usage);
    process.exit(0);
  }
  cli.run(settings).then(
    (code) => process.exit(code),
    (error: unknown) => {
      const shown =
        error instanceof Error
          ? (cli.stack ?? true)
            ? (error.stack ?? error.message)
            : error.message
          : String(error);
      console.error(`${cli.name} failed: ${shown}`);
      process.exit(1);
    },
  );
}
