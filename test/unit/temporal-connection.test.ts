import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadWorkerConfig, redactConfig, secretsOf } from '../../src/config/worker-config.js';
import {
  TemporalConnectionConfigError,
  describeTemporalConnection,
  temporalConnectionFromEnv,
} from '../../src/temporal-connection.js';

const noFile = { TEMPORAL_CONFIG_FILE: '/nonexistent/avatar-consent-test.toml' };

describe('Temporal connection through envconfig', () => {
  it('defaults to the local dev server', () => {
    const config = temporalConnectionFromEnv({ HOME: mkdtempSync(join(tmpdir(), 'home-')) });
    expect(config.connectionOptions.address).toBe('localhost:7233');
    expect(config.namespace).toBe('default');
    expect(config.connectionOptions.tls).toBeFalsy();
  });

  it('takes address, namespace and an API key (which turns TLS on) from the standard variables', () => {
    const config = temporalConnectionFromEnv({
      HOME: mkdtempSync(join(tmpdir(), 'home-')),
      TEMPORAL_ADDRESS: 'acme.a1b2c.tmprl.cloud:7233',
      TEMPORAL_NAMESPACE: 'acme.a1b2c',
      TEMPORAL_API_KEY: 'tmprl-api-key-secret',
    });
    expect(config.connectionOptions.address).toBe('acme.a1b2c.tmprl.cloud:7233');
    expect(config.namespace).toBe('acme.a1b2c');
    expect(config.connectionOptions.apiKey).toBe('tmprl-api-key-secret');
    expect(config.connectionOptions.tls).toBeTruthy();
    expect(JSON.stringify(describeTemporalConnection(config))).not.toContain('tmprl-api-key-secret');
  });

  it('reads a TOML profile, with environment variables taking precedence', () => {
    const dir = mkdtempSync(join(tmpdir(), 'envconfig-'));
    const file = join(dir, 'temporal.toml');
    writeFileSync(file, '[profile.staging]\naddress = "staging.example:7233"\nnamespace = "consents"\n');
    const config = temporalConnectionFromEnv({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'staging' });
    expect(config.connectionOptions.address).toBe('staging.example:7233');
    expect(config.namespace).toBe('consents');
    const overridden = temporalConnectionFromEnv({
      TEMPORAL_CONFIG_FILE: file,
      TEMPORAL_PROFILE: 'staging',
      TEMPORAL_NAMESPACE: 'other',
    });
    expect(overridden.namespace).toBe('other');
  });

  it('reports a broken config file as a connection-settings error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'envconfig-'));
    const file = join(dir, 'temporal.toml');
    writeFileSync(file, '[profile.default\naddress = ');
    expect(() => temporalConnectionFromEnv({ TEMPORAL_CONFIG_FILE: file })).toThrow(
      TemporalConnectionConfigError,
    );
  });

  it('the worker config carries it, never printing the API key and masking it in logs', () => {
    const config = loadWorkerConfig({
      ...noFile,
      HEYGEN_API_KEY: 'hg-key',
      SMTP_URL: 'smtp://localhost:1025',
      EMAIL_FROM: 'consent@example.com',
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      TEMPORAL_API_KEY: 'tmprl-api-key-secret',
    });
    expect(config.temporal.connectionOptions.address).toBe('temporal.internal:7233');
    expect(JSON.stringify(redactConfig(config))).not.toContain('tmprl-api-key-secret');
    expect(secretsOf(config)).toContain('tmprl-api-key-secret');
  });
});
