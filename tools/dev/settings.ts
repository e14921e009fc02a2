/**
 * What `npm run dev` is told: its flags, its DEV_* variables (read through the product's config kit),
 * and the worker's environment it derives from them.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { envVar, parseEnv, portVar, withoutBlanks } from '../../src/config/env.js';
import { DEFAULT_TASK_QUEUE } from '../../src/contract/index.js';
import { DEFAULT_API_KEY } from '../heygen-sandbox/index.js';
import { DEV_SERVER_NAMESPACE } from '../kit/temporal-server.js';

/** Loopback only: the sandbox admin API and the inbox have no authentication. */
export const DEV_HOST = '127.0.0.1';
export const DEV_NAMESPACE = DEV_SERVER_NAMESPACE;

export const devEnvSchema = z.object({
  DEV_TEMPORAL_PORT: portVar(7233),
  DEV_TEMPORAL_UI_PORT: portVar(8233),
  DEV_SANDBOX_PORT: portVar(4010),
  DEV_SMTP_PORT: portVar(1025),
  DEV_INBOX_PORT: portVar(1080),
  DEV_GATEWAY_PORT: portVar(8090),
  DEV_STATE_DIR: envVar(z.string().default('.temporal-dev')),
});

export interface DevPorts {
  temporal: number;
  temporalUi: number;
  sandbox: number;
  smtp: number;
  inbox: number;
  gateway: number;
}

export interface DevStackSettings {
  ports: DevPorts;
  ui: boolean;
  /** Absolute path of the state directory (SQLite file, logs, sandbox groups). */
  stateDir: string;
}

function devEnv(env: NodeJS.ProcessEnv) {
  return parseEnv(devEnvSchema, env, 'dev stack');
}

/** The dev stack's ports from DEV_* variables (also used by `npm run demo` to find the stack). */
export function devPortsFromEnv(env: NodeJS.ProcessEnv = process.env): DevPorts {
  const e = devEnv(env);
  return {
    temporal: e.DEV_TEMPORAL_PORT,
    temporalUi: e.DEV_TEMPORAL_UI_PORT,
    sandbox: e.DEV_SANDBOX_PORT,
    smtp: e.DEV_SMTP_PORT,
    inbox: e.DEV_INBOX_PORT,
    gateway: e.DEV_GATEWAY_PORT,
  };
}

export const usage = `Usage: npm run dev [-- --no-ui]

Starts, in this terminal: the Temporal dev server (+ Web UI), the HeyGen sandbox, a mail catcher
with a web inbox, and the avatar-consent worker. Ctrl-C stops all of it.

  --no-ui      run the Temporal dev server without its Web UI
  --help       this text

Environment:
  DEV_TEMPORAL_PORT (7233)  DEV_TEMPORAL_UI_PORT (8233)  DEV_SANDBOX_PORT (4010)
  DEV_SMTP_PORT (1025)      DEV_INBOX_PORT (1080)        DEV_GATEWAY_PORT (8090)
  DEV_STATE_DIR (.temporal-dev)
  HEYGEN_BASE_URL + HEYGEN_API_KEY   use this HeyGen API instead of the sandbox
  SMTP_URL                           send through this SMTP server instead of the local inbox
  EMAIL_FROM, LOG_LEVEL, TEMPORAL_TASK_QUEUE, TEMPORAL_CLI_PATH`;

export function parseDevArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): DevStackSettings | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'no-ui': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return 'help';
  return {
    ports: devPortsFromEnv(env),
    ui: !values['no-ui'],
    stateDir: resolve(devEnv(env).DEV_STATE_DIR),
  };
}

/** The worker's environment: the local pieces unless the caller points at real services. */
export function devWorkerEnv(
  env: NodeJS.ProcessEnv,
  local: {
    temporalAddress: string;
    sandboxUrl: string;
    smtpUrl: string;
    gatewayUrl?: string;
    gatewaySecret?: string;
  },
): NodeJS.ProcessEnv {
  // Blank means unset, as everywhere in the config kit.
  const set = withoutBlanks(env);
  // The key goes with the URL: a real key must never be sent to the sandbox, nor the sandbox key to HeyGen.
  const realHeyGen = set.HEYGEN_BASE_URL !== undefined;
  return {
    ...env,
    TEMPORAL_ADDRESS: local.temporalAddress,
    TEMPORAL_NAMESPACE: DEV_NAMESPACE,
    TEMPORAL_TASK_QUEUE: set.TEMPORAL_TASK_QUEUE ?? DEFAULT_TASK_QUEUE,
    HEYGEN_BASE_URL: realHeyGen ? set.HEYGEN_BASE_URL : local.sandboxUrl,
    HEYGEN_API_KEY: realHeyGen ? set.HEYGEN_API_KEY : DEFAULT_API_KEY,
    SMTP_URL: set.SMTP_URL ?? local.smtpUrl,
    EMAIL_FROM: set.EMAIL_FROM ?? 'Avatar consent <consent@localhost>',
    LOG_LEVEL: set.LOG_LEVEL ?? 'INFO',
    // A local stack: a caller's rerouteUrl may be a plain-http page on this machine.
    REROUTE_URL_ALLOW_LOCAL_HTTP: set.REROUTE_URL_ALLOW_LOCAL_HTTP ?? 'true',
    // The consent page's redirect goes through the local gateway, which nudges the workflow.
    ...(local.gatewayUrl && local.gatewaySecret && set.PUBLIC_BASE_URL === undefined
      ? { PUBLIC_BASE_URL: local.gatewayUrl, GATEWAY_SECRET: local.gatewaySecret }
      : {}),
  };
}

/** The gateway's HMAC secret, made once and kept in the state folder so links survive a restart. */
export function devGatewaySecret(stateDir: string): string {
  const file = join(stateDir, 'gateway-secret');
  if (!existsSync(file)) writeFileSync(file, `hex:${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}
