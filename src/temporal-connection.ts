/**
 * How every process of the project connects to Temporal: the SDK's standard environment
 * configuration (@temporalio/envconfig), so TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
 * TEMPORAL_TLS*, TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE (a TOML file with profiles) mean what
 * they mean for the Temporal CLI and every other SDK. Local defaults: localhost:7233, "default".
 */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { ClientConnectConfig } from '@temporalio/envconfig';

export interface TemporalConnectionConfig {
  connectionOptions: ClientConnectConfig['connectionOptions'] & { address: string };
  namespace: string;
}

export class TemporalConnectionConfigError extends Error {
  override readonly name = 'TemporalConnectionConfigError';
}

export function temporalConnectionFromEnv(env: NodeJS.ProcessEnv = process.env): TemporalConnectionConfig {
  // Empty variables count as unset, as everywhere else in the project.
  const vars = Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== '',
    ),
  );
  let loaded: ClientConnectConfig;
  try {
    loaded = loadClientConnectConfig({
      overrideEnvVars: vars,
      ...(vars.TEMPORAL_PROFILE ? { profile: vars.TEMPORAL_PROFILE } : {}),
      ...(vars.TEMPORAL_CONFIG_FILE ? { configSource: { path: vars.TEMPORAL_CONFIG_FILE } } : {}),
    });
  } catch (err) {
    // The SDK's messages name the setting; they never carry an API key.
    const reason = err instanceof Error ? err.message : String(err);
    throw new TemporalConnectionConfigError(`Temporal connection settings (envconfig): ${reason}`);
  }
  return {
    connectionOptions: {
      ...loaded.connectionOptions,
      address: loaded.connectionOptions.address ?? 'localhost:7233',
    },
    namespace: loaded.namespace ?? 'default',
  };
}

/** What can be printed about a connection: no API key, no TLS key material. */
export function describeTemporalConnection(config: TemporalConnectionConfig): Record<string, unknown> {
  const { connectionOptions: o } = config;
  return {
    address: o.address,
    namespace: config.namespace,
    tls: Boolean(o.tls),
    apiKey: o.apiKey ? '****' : 'none',
  };
}
