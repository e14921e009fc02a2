/**
 * The worker's environment, parsed once with zod. Every problem is reported at once, and secrets
 * (the HeyGen key, the SMTP password) are redacted whenever the config is printed.
 */
import { z } from 'zod';
import { DEFAULT_TASK_QUEUE } from '../contract/index.js';
import { CodecConfigError, describeKeyring, loadCodecKeysFromEnv } from '../codec/keys.js';
import type { CodecKeyring } from '../codec/keys.js';
import { GatewayConfigError, loadReturnLinkConfig } from '../gateway/tokens.js';
import {
  TemporalConnectionConfigError,
  describeTemporalConnection,
  temporalConnectionFromEnv,
} from '../temporal-connection.js';
import type { TemporalConnectionConfig } from '../temporal-connection.js';
import type { ReturnLinkConfig } from '../gateway/tokens.js';
import { ConfigError, envVar, flagVar, formatIssues, withoutBlanks } from './env.js';
import { HEYGEN_HTTP_TIMEOUT_DEFAULT_MS, HEYGEN_HTTP_TIMEOUT_MAX_MS } from './timeouts.js';

export { ConfigError };

/**
 * How much a worker process holds and does at once.
 *
 * A waiting consent sleeps for hours between polling windows (its polls are activity retries that
 * the server schedules), so a worker need not keep every one in its workflow cache: an evicted
 * workflow is replayed from its history (about a hundred events) when it next wakes. The cache
 * bound is what keeps memory flat however many consents wait (about 0.3 MB per cached workflow).
 * 300, not less: an evicted consent loses its sticky queue, so when hundreds are active at once
 * (a burst of starts or approvals) a smaller cache puts each wake-up behind the whole task queue
 * (docs/benchmark.md: 12.4 s p99 from approval to the caller's signal with 100, 3.1 s with 300).
 */
export interface WorkerTuning {
  maxCachedWorkflows: number;
  maxConcurrentWorkflowTasks: number;
  maxConcurrentActivities: number;
}

export const DEFAULT_WORKER_TUNING: WorkerTuning = {
  maxCachedWorkflows: 300,
  maxConcurrentWorkflowTasks: 20,
  maxConcurrentActivities: 100,
};

const nonEmpty = (what: string) => z.string().trim().min(1, `${what} must not be empty`);

const smtpUrl = z
  .string()
  .trim()
  .refine((text) => URL.canParse(text) && ['smtp:', 'smtps:'].includes(new URL(text).protocol), {
    message: 'must be an smtp:// or smtps:// URL, e.g. smtp://localhost:1025',
  });

const httpUrl = z
  .string()
  .trim()
  .refine((text) => URL.canParse(text) && ['http:', 'https:'].includes(new URL(text).protocol), {
    message: 'must be an http(s) URL',
  })
  .transform((text) => text.replace(/\/+$/, ''));

const emailFrom = z
  .string()
  .trim()
  .regex(
    /^(?:[^<>\r\n]*<[^\s<>@]+@[^\s<>@]+\.?[^\s<>@]*>|[^\s<>@]+@[^\s<>@]+)$/,
    'must be an address such as "Consent <consent@example.com>" or consent@example.com',
  );

/**
 * The worker's own variables. The Temporal connection (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS,
 * API key, profiles) is read by Temporal's envconfig (src/temporal-connection.ts); the payload keys
 * and the return links by their modules (src/codec/keys.ts, src/gateway/tokens.ts).
 */
export const workerEnvSchema = z.object({
  TEMPORAL_TASK_QUEUE: nonEmpty('TEMPORAL_TASK_QUEUE').default(DEFAULT_TASK_QUEUE),
  HEYGEN_API_KEY: z
    .string({ error: 'is required (your HeyGen API key, or the sandbox key)' })
    .trim()
    .min(1, 'must not be empty'),
  HEYGEN_BASE_URL: httpUrl.default('https://api.heygen.com'),
  // The HTTP call must give up before its activity attempt does (src/config/timeouts.ts).
  HEYGEN_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .max(HEYGEN_HTTP_TIMEOUT_MAX_MS)
    .default(HEYGEN_HTTP_TIMEOUT_DEFAULT_MS),
  /**
   * Keep the rate gate's Retry-After deadline in this file too, so a restarted worker (same host or
   * volume) does not send before its predecessor's Retry-After has passed. Unset: memory only.
   */
  HEYGEN_RATE_GATE_FILE: z.string().trim().min(1).optional(),
  /**
   * After a 429, close the HeyGen task queue for every worker (on every host) until Retry-After has
   * passed, through the queue's server-side rate limit (src/queue-gate.ts). Needs permission to update
   * task queue config; without it, each worker process holds Retry-After on its own.
   */
  HEYGEN_QUEUE_GATE: flagVar(true),
  /** Cap on HeyGen requests per second across all workers (the HeyGen task queue's rate limit); unset = none. */
  HEYGEN_MAX_RPS: z.coerce.number().positive().max(10_000).optional(),
  SMTP_URL: z.string({ error: 'is required, e.g. smtp://localhost:1025' }).pipe(smtpUrl),
  EMAIL_FROM: z.string({ error: 'is required, e.g. "Avatar consent <consent@example.com>"' }).pipe(emailFrom),
  LOG_LEVEL: z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
  /** Keep activities' task tokens in log lines (for debugging a stuck activity). */
  LOG_TASK_TOKENS: flagVar(false),
  /** Workflows kept in memory; an evicted one is replayed from history when it wakes (src/worker.ts). */
  WORKER_MAX_CACHED_WORKFLOWS: z.coerce
    .number()
    .int()
    .min(0)
    .max(100_000)
    .default(DEFAULT_WORKER_TUNING.maxCachedWorkflows),
  WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: z.coerce
    .number()
    .int()
    .min(2)
    .max(10_000)
    .default(DEFAULT_WORKER_TUNING.maxConcurrentWorkflowTasks),
  WORKER_MAX_CONCURRENT_ACTIVITIES: z.coerce
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(DEFAULT_WORKER_TUNING.maxConcurrentActivities),
  /** Prometheus metrics (SDK runtime + consent counters) on this port; unset = off. */
  METRICS_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  METRICS_HOST: nonEmpty('METRICS_HOST').default('0.0.0.0'),
  /** Refuse to start without payload encryption keys (set it in production). */
  AVATAR_CONSENT_REQUIRE_ENCRYPTION: flagVar(false),
  /** Accept a caller's plain-http localhost rerouteUrl: for a local deployment (npm run dev) only. */
  REROUTE_URL_ALLOW_LOCAL_HTTP: flagVar(false),
  /** Comma-separated host names a caller's rerouteUrl may point at; unset: any https host. */
  REROUTE_URL_ALLOWED_HOSTS: envVar(
    z
      .string()
      .transform((text) =>
        text
          .split(',')
          .map((host) => host.trim().toLowerCase())
          .filter(Boolean),
      )
      .pipe(
        z
          .array(z.string().regex(/^[a-z0-9.-]+$/, 'must list host names such as app.example.com'))
          .min(1, 'must list at least one host'),
      )
      .optional(),
  ),
  /**
   * With AVATAR_CONSENT_REQUIRE_ENCRYPTION, plaintext payloads (callers without the codec) are still
   * accepted until this time: the migration window. Set it past the longest deadline of any consent
   * started in plaintext, or those consents stop when the window closes.
   */
  AVATAR_CONSENT_ACCEPT_PLAINTEXT_UNTIL: envVar(
    z.iso
      .datetime({ offset: true, message: 'must be an ISO-8601 date-time, e.g. 2027-01-31T00:00:00Z' })
      .transform((text) => Date.parse(text))
      .optional(),
  ),
});

export type WorkerConfig = z.output<typeof workerEnvSchema> & {
  /** Consent-return links through the gateway (PUBLIC_BASE_URL + GATEWAY_SECRET[S]); off when unset. */
  returnLinks?: ReturnLinkConfig;
  /** Payload encryption keys (AVATAR_CONSENT_CODEC_KEYS or _KEY_FILE); null means payloads are stored in clear. */
  codecKeyring: CodecKeyring | null;
  /** Connection and namespace from the SDK's environment configuration (TLS, API key, profiles). */
  temporal: TemporalConnectionConfig;
};

/** Parses the environment; throws one ConfigError listing every bad or missing variable. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const problems: string[] = [];
  const result = workerEnvSchema.safeParse(withoutBlanks(env));
  if (!result.success) problems.push(formatIssues(result.error));
  let returnLinks: ReturnLinkConfig | undefined;
  try {
    returnLinks = loadReturnLinkConfig(env);
  } catch (err) {
    if (!(err instanceof GatewayConfigError)) throw err;
    problems.push(err.message.replace(/^Invalid return-link environment: /, ''));
  }
  let temporal: TemporalConnectionConfig | undefined;
  try {
    temporal = temporalConnectionFromEnv(env);
  } catch (err) {
    if (!(err instanceof TemporalConnectionConfigError)) throw err;
    problems.push(err.message);
  }
  let codecKeyring: CodecKeyring | null = null;
  try {
    codecKeyring = loadCodecKeysFromEnv(env);
  } catch (err) {
    if (!(err instanceof CodecConfigError)) throw err;
    problems.push(err.message);
  }
  if (
    result.success &&
    result.data.AVATAR_CONSENT_REQUIRE_ENCRYPTION &&
    codecKeyring === null &&
    problems.length === 0
  ) {
    problems.push(
      'AVATAR_CONSENT_REQUIRE_ENCRYPTION is set but no codec keys are configured (AVATAR_CONSENT_CODEC_KEYS or AVATAR_CONSENT_CODEC_KEY_FILE)',
    );
  }
  if (!result.success || !temporal || problems.length > 0) {
    throw new ConfigError(`Invalid worker environment: ${problems.join('; ')}`);
  }
  return { ...result.data, codecKeyring, temporal, ...(returnLinks ? { returnLinks } : {}) };
}

/** The domain of EMAIL_FROM, used for deterministic Message-IDs. */
export function emailDomain(from: string): string {
  const address = /<([^>]+)>/.exec(from)?.[1] ?? from;
  return address.slice(address.lastIndexOf('@') + 1).trim();
}

/** The values that must never appear in logs or errors. */
export function secretsOf(config: WorkerConfig): string[] {
  const secrets = [config.HEYGEN_API_KEY];
  if (
    config.temporal.connectionOptions.apiKey &&
    typeof config.temporal.connectionOptions.apiKey === 'string'
  ) {
    secrets.push(config.temporal.connectionOptions.apiKey);
  }
  if (URL.canParse(config.SMTP_URL)) {
    const password = new URL(config.SMTP_URL).password;
    if (password) secrets.push(password, decodeURIComponent(password));
  }
  return secrets;
}

function redactUrlPassword(text: string): string {
  if (!URL.canParse(text)) return '****';
  const url = new URL(text);
  if (url.password) url.password = '****';
  return url.toString();
}

/** A printable copy of the config: no secret survives. */
export function redactConfig(config: WorkerConfig): Record<string, unknown> {
  const { returnLinks, codecKeyring, temporal, ...plain } = config;
  return {
    ...plain,
    temporal: describeTemporalConnection(temporal),
    payloadEncryption: codecKeyring ? describeKeyring(codecKeyring) : 'off',
    HEYGEN_API_KEY: '****',
    SMTP_URL: redactUrlPassword(config.SMTP_URL),
    returnLinks: returnLinks
      ? { publicBaseUrl: returnLinks.publicBaseUrl, secrets: '****', ttlMs: returnLinks.ttlMs }
      : 'off',
  };
}
