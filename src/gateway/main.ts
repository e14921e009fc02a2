/**
 * `npm run gateway`: the consent-return gateway as a standalone server.
 *
 * Environment (all problems are reported at once; secret values are never printed):
 *   GATEWAY_PORT         default 8090
 *   GATEWAY_HOST         default 127.0.0.1 (put a TLS-terminating proxy in front for the public URL)
 *   GATEWAY_SECRET       HMAC secret, ≥ 32 bytes: "hex:…", "base64:…" or plain text
 *   GATEWAY_SECRETS      instead of GATEWAY_SECRET, for rotation: "new,old" (first signs, all verify)
 *   GATEWAY_THANK_YOU_URL optional https page for returns without a caller redirect
 *   GATEWAY_RATE_LIMIT_PER_MINUTE  per-client sustained requests per minute, default 60; 0 = off
 *   GATEWAY_RATE_LIMIT_BURST       per-client requests in a row before that applies, default 60
 *   GATEWAY_TRUST_PROXY  reverse proxies in front that append to X-Forwarded-For, default 0 (the
 *                        header is ignored); "true" means 1. Set it only behind such a proxy.
 *   Temporal: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS, API key, profiles (Temporal's envconfig)
 */
import { pathToFileURL } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { temporalConnectionFromEnv } from '../temporal-connection.js';
import { z } from 'zod';
import { envVar, formatIssues, portVar } from '../config/env.js';
import { checkNowSignal } from '../contract/index.js';
import { rerouteUrlSchema } from '../rules/input.js';
import { DEFAULT_RATE_LIMIT, jsonLineLogger, startGateway } from './server.js';
import type { CheckNowSender } from './server.js';
import { GatewayConfigError, gatewaySecretsIssues } from './tokens.js';
import type { GatewaySecrets } from './tokens.js';

/** A whole number in [min, max], given as digits. */
function countVar(fallback: number, min: number, max: number) {
  return envVar(
    z
      .string()
      .trim()
      .regex(/^\d+$/, `must be a whole number ${min}-${max}`)
      .transform(Number)
      .pipe(z.number().int().min(min, `must be ${min}-${max}`).max(max, `must be ${min}-${max}`))
      .default(fallback),
  );
}

/** How many proxies to trust: a count, or true/false for the common one-proxy case. */
const trustProxyVar = envVar(
  z
    .string()
    .trim()
    .toLowerCase()
    .transform((text, ctx) => {
      if (text === 'true') return 1;
      if (text === 'false') return 0;
      if (/^\d{1,2}$/.test(text) && Number(text) <= 10) return Number(text);
      ctx.addIssue({
        code: 'custom',
        message: 'must be the number of proxies in front (0-10), or true (1) / false (0)',
      });
      return z.NEVER;
    })
    .default(0),
);

export const gatewayEnvSchema = z.object({
  GATEWAY_PORT: portVar(8090),
  GATEWAY_HOST: envVar(z.string().trim().default('127.0.0.1')),
  GATEWAY_THANK_YOU_URL: envVar(rerouteUrlSchema.optional()),
  GATEWAY_RATE_LIMIT_PER_MINUTE: countVar(DEFAULT_RATE_LIMIT.perMinute, 0, 1_000_000),
  GATEWAY_RATE_LIMIT_BURST: countVar(DEFAULT_RATE_LIMIT.burst, 1, 1_000_000),
  GATEWAY_TRUST_PROXY: trustProxyVar,
});

export interface GatewayConfig {
  port: number;
  host: string;
  thankYouUrl?: string;
  secrets: GatewaySecrets;
  /** perMinute 0: no limit. */
  rateLimit: { perMinute: number; burst: number };
  trustedProxies: number;
}

/** Parses the gateway's environment; throws one GatewayConfigError naming every bad variable. */
export function parseGatewayEnv(env: Record<string, string | undefined>): GatewayConfig {
  const base = gatewayEnvSchema.safeParse(env);
  const secrets = gatewaySecretsIssues(env);
  if (!base.success || !secrets.secrets) {
    const issues = [...(base.success ? [] : base.error.issues), ...secrets.issues];
    throw new GatewayConfigError(`Invalid gateway environment: ${formatIssues(issues)}`);
  }
  const e = base.data;
  return {
    port: e.GATEWAY_PORT,
    host: e.GATEWAY_HOST,
    ...(e.GATEWAY_THANK_YOU_URL !== undefined ? { thankYouUrl: e.GATEWAY_THANK_YOU_URL } : {}),
    secrets: secrets.secrets,
    rateLimit: { perMinute: e.GATEWAY_RATE_LIMIT_PER_MINUTE, burst: e.GATEWAY_RATE_LIMIT_BURST },
    trustedProxies: e.GATEWAY_TRUST_PROXY,
  };
}

/** Default bound on one `checkNow` call, gRPC retries included (Temporal down → it fails by then). */
export const DEFAULT_SIGNAL_DEADLINE_MS = 5_000;

/**
 * The production signal: `checkNow` through a runId-less handle, so it reaches the current run
 * even after continue-as-new. (`runId` from the token is the first run's ID: logged, not targeted.)
 * A deadline ends the call, retries included, so nothing is left pending when the connection closes.
 */
export function checkNowSender(client: Client, deadlineMs = DEFAULT_SIGNAL_DEADLINE_MS): CheckNowSender {
  return async (workflowId) => {
    await client.withDeadline(Date.now() + deadlineMs, () =>
      client.workflow.getHandle(workflowId).signal(checkNowSignal),
    );
  };
}

async function main(): Promise<void> {
  const config = parseGatewayEnv(process.env);
  // Lazy: the gateway starts (and keeps redirecting people) even while Temporal is unreachable.
  // TLS, API key and profiles through Temporal's envconfig, as for the worker.
  const temporal = temporalConnectionFromEnv(process.env);
  const connection = Connection.lazy(temporal.connectionOptions);
  const client = new Client({ connection, namespace: temporal.namespace });
  const gateway = await startGateway({
    host: config.host,
    port: config.port,
    secrets: config.secrets,
    signal: checkNowSender(client),
    ...(config.thankYouUrl !== undefined ? { thankYouUrl: config.thankYouUrl } : {}),
    rateLimit: config.rateLimit,
    trustedProxies: config.trustedProxies,
  });
  jsonLineLogger.info('consent-return gateway listening', {
    url: gateway.url,
    temporalAddress: temporal.connectionOptions.address,
    temporalNamespace: temporal.namespace,
    secrets: config.secrets.count,
    rateLimitPerMinute: config.rateLimit.perMinute,
    rateLimitBurst: config.rateLimit.burst,
    trustedProxies: config.trustedProxies,
  });

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    jsonLineLogger.info('stopping the consent-return gateway', { signal });
    gateway
      .close()
      .then(() => connection.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          jsonLineLogger.error('error while stopping', {
            error: err instanceof Error ? err.message : String(err),
          });
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof GatewayConfigError ? err.message : err);
    process.exit(err instanceof GatewayConfigError ? 2 : 1);
  });
}
