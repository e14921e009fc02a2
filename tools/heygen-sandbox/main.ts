// `npm run sandbox`: the HeyGen sandbox as a standalone server for local development.
// Configuration comes from SANDBOX_* variables (see env.ts); Ctrl-C stops it.
import { ConfigError } from '../../src/config/env.js';
import { parseSandboxEnv } from './env.js';
import { startSandbox } from './server.js';

async function main(): Promise<void> {
  const config = parseSandboxEnv(process.env);
  const sandbox = await startSandbox(config.options);
  const demo = sandbox.createGroup({ name: 'Demo Avatar' });
  const key = config.usesDefaultKey ? config.options.apiKeys[0] : '$HEYGEN_API_KEY';
  const api = sandbox.url;

  const lines = [
    `HeyGen sandbox listening on ${api}`,
    config.usesDefaultKey
      ? `API key: ${key}  (send it as "x-api-key: ${key}" or "Authorization: Bearer ${key}")`
      : `API key: any of the ${config.options.apiKeys.length} key(s) in SANDBOX_API_KEYS`,
    `Demo avatar group: ${demo.id} (consent pending)`,
    '',
    'Try:',
    `  curl -s -H 'x-api-key: ${key}' ${api}/v3/avatars/${demo.id}`,
    `  curl -s -X POST -H 'x-api-key: ${key}' -H 'content-type: application/json' -d '{}' ${api}/v3/avatars/${demo.id}/consent`,
    `  then open the returned url in a browser, or: curl -s -X POST ${api}/_sandbox/groups/${demo.id}/approve`,
    '',
    `Admin API (no auth, local use only): ${api}/_sandbox`,
  ];
  if (!['127.0.0.1', 'localhost', '::1'].includes(config.options.host)) {
    lines.push(
      `WARNING: listening on ${config.options.host}: the unauthenticated admin API is reachable from the network.`,
    );
  }
  console.log(lines.join('\n'));

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping the HeyGen sandbox`);
    sandbox.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('heygen sandbox: error while stopping', error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
