import { z } from 'zod';

import { envVar, parseEnv } from '../../src/config/env.js';
import { DEFAULT_API_KEY } from './core.js';
import type { SandboxOptions } from './types.js';

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

/** The environment of `npm run sandbox`. Values are never echoed back in errors (keys are secrets). */
export const sandboxEnvSchema = z.object({
  SANDBOX_PORT: envVar(integer(0, 65535).default(4010)),
  SANDBOX_HOST: envVar(z.string().default('127.0.0.1')),
  SANDBOX_API_KEYS: envVar(
    z
      .string()
      .transform((list) => list.split(',').map((key) => key.trim()))
      .pipe(z.array(z.string().min(1, 'must not contain empty keys')).min(1, 'must list at least one key'))
      .default([DEFAULT_API_KEY]),
  ),
  SANDBOX_PUBLIC_URL: envVar(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional()),
  /** Requests per window per key; unset or 0 turns rate limiting off. */
  SANDBOX_RATE_LIMIT: envVar(integer(0, 1_000_000).optional()),
  SANDBOX_RATE_LIMIT_WINDOW_MS: envVar(integer(1, 86_400_000).default(60_000)),
  SANDBOX_PROCESSING_LATENCY_MS: envVar(integer(0, 600_000).default(0)),
  SANDBOX_TRAINING_TIME_MS: envVar(integer(0, 86_400_000).default(0)),
  SANDBOX_CONSENT_LINK_TTL_MS: envVar(integer(1, 30 * 86_400_000).optional()),
});

export interface SandboxEnvConfig {
  options: SandboxOptions & { host: string; port: number; apiKeys: string[] };
  usesDefaultKey: boolean;
}

/** Parses the environment, listing every problem at once (a ConfigError: names, never values, which may be keys). */
export function parseSandboxEnv(env: Record<string, string | undefined>): SandboxEnvConfig {
  const e = parseEnv(sandboxEnvSchema, env, 'sandbox');
  return {
    options: {
      host: e.SANDBOX_HOST,
      port: e.SANDBOX_PORT,
      apiKeys: e.SANDBOX_API_KEYS,
      publicUrl: e.SANDBOX_PUBLIC_URL,
      rateLimit: e.SANDBOX_RATE_LIMIT
        ? { limit: e.SANDBOX_RATE_LIMIT, windowMs: e.SANDBOX_RATE_LIMIT_WINDOW_MS }
        : null,
      processingLatencyMs: e.SANDBOX_PROCESSING_LATENCY_MS,
      trainingTimeMs: e.SANDBOX_TRAINING_TIME_MS,
      consentLinkTtlMs: e.SANDBOX_CONSENT_LINK_TTL_MS ?? null,
    },
    usesDefaultKey: e.SANDBOX_API_KEYS.length === 1 && e.SANDBOX_API_KEYS[0] === DEFAULT_API_KEY,
  };
}
