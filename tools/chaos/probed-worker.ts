/**
 * Starts a worker entry (argv[2], e.g. src/worker.ts) with the chaos probe installed first. A wrapper
 * rather than `--import`: the worker's workflow thread inherits execArgv and cannot load a .ts there.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import './worker-probe.js';

const entry = process.argv[2];
if (!entry) {
  console.error('usage: probed-worker.ts <worker entry>');
  process.exit(2);
}
const path = resolve(entry);
// The entry runs its main only when it is the script node was started with.
process.argv.splice(1, 2, path);
await import(pathToFileURL(path).href);
