// `npm run codec-server`: the remote codec server for the Temporal Web UI and CLI (see docs/codec-server.md).
// `npm run codec-server -- --generate-key [--id <keyId>]` prints a new `id:base64` key line and exits.
import { parseArgs } from 'node:util';

import { loadCodecServerConfig, startCodecServer } from './codec-server.js';
import { isLocalHostname } from '../rules/input.js';
import { CodecConfigError, describeKeyring, generateKey } from './keys.js';

const usage = `Usage:
  npm run codec-server                                  start the codec server
  npm run codec-server -- --generate-key [--id <keyId>] print a new key line (id:base64) and exit

Environment (server):
  CODEC_SERVER_TOKEN           required, at least 16 characters; clients send "Authorization: Bearer <token>"
  CODEC_SERVER_PORT            default 8888
  CODEC_SERVER_HOST            default 127.0.0.1
  CODEC_SERVER_ALLOWED_ORIGIN  Web UI origin(s), comma separated; default http://localhost:8233
  AVATAR_CONSENT_CODEC_KEYS    id:base64key,... (32-byte keys), or
  AVATAR_CONSENT_CODEC_KEY_FILE  JSON file {"active":"k2","keys":{"k1":"<base64>","k2":"<base64>"}}
  AVATAR_CONSENT_CODEC_ACTIVE_KEY  key ID that encrypts (default: the first key)`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'generate-key': { type: 'boolean', default: false },
      id: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  if (values['generate-key']) {
    // Printing the key is the point of this command: it goes to stdout only, for the operator to store.
    console.log(generateKey(values.id).line);
    return;
  }
  if (values.id !== undefined) throw new CodecConfigError('--id is only meaningful with --generate-key');

  const config = loadCodecServerConfig(process.env);
  const server = await startCodecServer({
    keyring: config.keyring,
    token: config.token,
    port: config.port,
    host: config.host,
    allowedOrigin: config.allowedOrigins,
    log: (line) => console.log(`codec-server: ${line}`),
  });
  const lines = [
    `Codec server listening on ${server.url}`,
    `Codec ${describeKeyring(config.keyring)}`,
    `Browser origins allowed: ${config.allowedOrigins.join(', ')}`,
    `Clients must send "Authorization: Bearer <CODEC_SERVER_TOKEN>", e.g.`,
    `  temporal workflow show -w <id> --codec-endpoint ${server.url} --codec-auth "Bearer $CODEC_SERVER_TOKEN"`,
  ];
  if (!isLocalHostname(config.host)) {
    lines.push(
      `WARNING: listening on ${config.host} over plain HTTP: decrypted payloads and the token cross the network; put TLS in front.`,
    );
  }
  console.log(lines.join('\n'));

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping the codec server`);
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('codec-server: error while stopping:', error instanceof Error ? error.name : error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  // Our configuration errors are written to be safe to print; for anything else, print the message
  // without the object (a thrown object could carry more than its message).
  if (error instanceof CodecConfigError) console.error(error.message);
  else if (error instanceof Error) {
    const badArguments = String((error as NodeJS.ErrnoException).code ?? '').startsWith('ERR_PARSE_ARGS');
    console.error(`codec-server: ${error.name}: ${error.message}${badArguments ? `\n\n${usage}` : ''}`);
  } else console.error('codec-server: unexpected error');
  process.exit(1);
});
