/**
 * The production settings a chaos run turns on, as an operator would: payload encryption (a fresh
 * key in AVATAR_CONSENT_CODEC_KEYS, and AVATAR_CONSENT_REQUIRE_ENCRYPTION so a worker without it
 * refuses to start) and the consent-return gateway (`src/gateway/main.ts` as its own process, its
 * address as the workers' PUBLIC_BASE_URL), so HeyGen's redirect after "I agree" nudges the workflow.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';

import type { DataConverter, PayloadCodec } from '@temporalio/common';

import { createCodecKeyring, dataConverterFor, generateKey } from '../../src/codec/index.js';
import { endProcess, exited, keepLines } from '../kit/child-process.js';
import { eventually } from '../kit/eventually.js';
import { freePort, LOOPBACK } from '../kit/ports.js';

export interface ProductionSettings {
  /** What every client of the run uses: the same codec as the workers. */
  dataConverter: DataConverter;
  /** Its codecs, to read the encrypted failures in the histories. */
  payloadCodecs: PayloadCodec[];
  /** Added to each worker's environment. */
  workerEnv: Record<string, string>;
  gatewayUrl: string;
  /** Every stdout/stderr line of the gateway, for the personal-data scan. */
  gatewayLog: string[];
  readonly gatewayProcess: ChildProcess;
  close(): Promise<void>;
}

/** A fresh codec key and gateway secret; the gateway started and answering /healthz. */
export async function startProductionSettings(opts: {
  cwd: string;
  temporalAddress: string;
  namespace: string;
  /** Where the run's key goes (mode 600), so a kept scratch folder can be read after the run. */
  keyFile: string;
}): Promise<ProductionSettings> {
  const key = generateKey('chaos');
  // A throwaway key for made-up data: kept beside the database it encrypted, never printed.
  writeFileSync(opts.keyFile, `${key.line}\n`, { mode: 0o600 });
  const keyring = createCodecKeyring({ [key.id]: Buffer.from(key.keyBase64, 'base64') });
  const gatewaySecret = `hex:${randomBytes(32).toString('hex')}`;
  const port = await freePort();
  const gatewayUrl = `http://${LOOPBACK}:${port}`;
  const gatewayLog: string[] = [];
  const gatewayProcess = spawn(process.execPath, ['--import', 'tsx', 'src/gateway/main.ts'], {
    cwd: opts.cwd,
    env: {
      PATH: process.env.PATH ?? '',
      GATEWAY_HOST: LOOPBACK,
      GATEWAY_PORT: String(port),
      GATEWAY_SECRET: gatewaySecret,
      // Every person of the run comes from 127.0.0.1: a per-client limit would refuse the harness.
      GATEWAY_RATE_LIMIT_PER_MINUTE: '0',
      TEMPORAL_ADDRESS: opts.temporalAddress,
      TEMPORAL_NAMESPACE: opts.namespace,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  keepLines(gatewayProcess.stdout, gatewayLog, 200_000);
  keepLines(gatewayProcess.stderr, gatewayLog, 200_000);
  const died = new AbortController();
  void exited(gatewayProcess).then(({ code }) =>
    died.abort(
      new Error(`the gateway exited while starting (code ${code}): ${gatewayLog.slice(-3).join(' | ')}`),
    ),
  );
  try {
    await eventually(
      `the consent-return gateway on ${gatewayUrl}`,
      async () => (await fetch(`${gatewayUrl}/healthz`, { signal: AbortSignal.timeout(1_000) })).ok,
      { timeoutMs: 60_000, intervalMs: 200, signal: died.signal },
    );
  } catch (error) {
    await endProcess(gatewayProcess, { signal: 'SIGKILL' });
    throw error;
  }
  const dataConverter = dataConverterFor(keyring);
  return {
    dataConverter,
    payloadCodecs: dataConverter.payloadCodecs ?? [],
    workerEnv: {
      AVATAR_CONSENT_CODEC_KEYS: key.line,
      AVATAR_CONSENT_REQUIRE_ENCRYPTION: 'true',
      PUBLIC_BASE_URL: gatewayUrl,
      GATEWAY_SECRET: gatewaySecret,
    },
    gatewayUrl,
    gatewayLog,
    gatewayProcess,
    close: async () => {
      await endProcess(gatewayProcess, { graceMs: 15_000 });
    },
  };
}
