/**
 * A Temporal PayloadCodec that encrypts every payload with AES-256-GCM before it leaves the process,
 * so the Temporal database, history exports and the Web UI (without a codec server) see ciphertext.
 *
 * Wire format, shared with Temporal's Go and Python encryption samples:
 *   metadata: { encoding: "binary/encrypted", "encryption-key-id": <key ID> }
 *   data:     12-byte IV || ciphertext || 16-byte GCM tag
 * The plaintext is the whole original Payload, protobuf-encoded, so its metadata (e.g. `json/plain`)
 * is restored exactly on decode.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { METADATA_ENCODING_KEY } from '@temporalio/common';
import proto from '@temporalio/proto';

import { CodecConfigError, isValidKeyId } from './keys.js';
import type { CodecKeyring } from './keys.js';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const METADATA_ENCRYPTION_KEY_ID = 'encryption-key-id';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const CIPHER = 'aes-256-gcm';

const PayloadMessage = proto.temporal.api.common.v1.Payload;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();
const encryptedEncodingBytes = textEncoder.encode(ENCRYPTED_ENCODING);

/**
 * Decoding failed: unknown key ID, missing metadata, or data that does not authenticate. The message
 * names the key ID (never key material or payload content). Temporal treats it as a task failure and
 * retries, so adding the missing key to the worker's keyring lets stuck workflows continue.
 */
export class PayloadDecryptionError extends Error {
  override readonly name = 'PayloadDecryptionError';
  constructor(
    message: string,
    readonly keyId?: string,
  ) {
    super(message);
  }
}

/** True when the payload carries our `binary/encrypted` encoding (whatever its key). */
export function isEncryptedPayload(payload: Payload): boolean {
  const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
  return encoding != null && textDecoder.decode(encoding) === ENCRYPTED_ENCODING;
}

/** Runs synchronous work behind the async PayloadCodec interface: a throw becomes a rejection. */
function settle<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

/** A plaintext payload reached a worker that requires encryption (AVATAR_CONSENT_REQUIRE_ENCRYPTION). */
export class PlaintextPayloadError extends Error {
  override readonly name = 'PlaintextPayloadError';
}

export interface PlaintextPolicy {
  /** Refuse payloads that are not encrypted (a caller without the codec). */
  refuse: boolean;
  /** A migration window: until this time (epoch ms) plaintext is still accepted. */
  acceptUntilMs?: number | undefined;
  /** Told once when plaintext is accepted in the migration window. */
  onAccepted?: () => void;
  now?: () => number;
}

/** `binary/null` carries no data (an absent argument): nothing to protect, and clients send it bare. */
const NULL_ENCODING = 'binary/null';

export class EncryptionCodec implements PayloadCodec {
  #toldAccepted = false;

  constructor(
    private readonly keyring: CodecKeyring,
    private readonly plaintext: PlaintextPolicy = { refuse: false },
  ) {}

  encode(payloads: Payload[]): Promise<Payload[]> {
    return settle(() => payloads.map((payload) => this.encryptOne(payload)));
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    return settle(() => payloads.map((payload) => this.decryptOne(payload)));
  }

  private encryptOne(payload: Payload): Payload {
    const keyId = this.keyring.activeKeyId;
    const key = this.keyring.keys.get(keyId);
    // createCodecKeyring guarantees the active key exists; a hand-built keyring might not.
    if (!key) throw new CodecConfigError(`Active codec key "${keyId}" is not in the keyring`);
    const plaintext = PayloadMessage.encode(payload).finish();
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(CIPHER, key, iv, { authTagLength: TAG_BYTES });
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return {
      metadata: {
        [METADATA_ENCODING_KEY]: encryptedEncodingBytes,
        [METADATA_ENCRYPTION_KEY_ID]: textEncoder.encode(keyId),
      },
      data: Buffer.concat([iv, ciphertext, cipher.getAuthTag()]),
    };
  }

  /**
   * A plaintext payload on a worker that requires encryption: refused (the workflow task fails with
   * this message, so nothing runs on a caller's unencrypted input), or let through during the
   * migration window.
   */
  private plaintextPassing(payload: Payload): Payload {
    const { refuse, acceptUntilMs, onAccepted, now = Date.now } = this.plaintext;
    if (!refuse) return payload;
    const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
    if (encoding && textDecoder.decode(encoding) === NULL_ENCODING) return payload;
    if (acceptUntilMs !== undefined && now() < acceptUntilMs) {
      if (!this.#toldAccepted) onAccepted?.();
      this.#toldAccepted = true;
      return payload;
    }
    throw new PlaintextPayloadError(
      'A plaintext payload was refused: AVATAR_CONSENT_REQUIRE_ENCRYPTION is set, so every caller must ' +
        'encrypt with the project codec (docs/integrators.md); AVATAR_CONSENT_ACCEPT_PLAINTEXT_UNTIL opens a migration window',
    );
  }

  private decryptOne(payload: Payload): Payload {
    // Anything we did not encrypt (older unencrypted histories, other encodings) passes through,
    // unless this worker requires encryption.
    if (!isEncryptedPayload(payload)) return this.plaintextPassing(payload);

    const keyIdBytes = payload.metadata?.[METADATA_ENCRYPTION_KEY_ID];
    if (!keyIdBytes || keyIdBytes.length === 0) {
      throw new PayloadDecryptionError(
        `Encrypted payload has no "${METADATA_ENCRYPTION_KEY_ID}" metadata, cannot choose a key`,
      );
    }
    const keyId = textDecoder.decode(keyIdBytes);
    const key = this.keyring.keys.get(keyId);
    if (!key) {
      // Only the ID that failed, never the configured ones; and only if it is a well-formed ID
      // (metadata is not authenticated, so it could be any text).
      const named = isValidKeyId(keyId) ? `codec key "${keyId}"` : 'a malformed codec key ID';
      throw new PayloadDecryptionError(
        `Payload is encrypted with ${named}, which is not configured; add it to the keyring to decrypt`,
        keyId,
      );
    }
    const data = payload.data ?? new Uint8Array();
    if (data.length < IV_BYTES + TAG_BYTES) {
      throw new PayloadDecryptionError(
        `Encrypted payload (key "${keyId}") is too short to be AES-GCM data (${data.length} bytes)`,
        keyId,
      );
    }
    const iv = data.subarray(0, IV_BYTES);
    const tag = data.subarray(data.length - TAG_BYTES);
    const ciphertext = data.subarray(IV_BYTES, data.length - TAG_BYTES);
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv(CIPHER, key, iv, { authTagLength: TAG_BYTES });
      decipher.setAuthTag(tag);
      plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    } catch {
      // Node's message here is generic, but a fresh error guarantees no internals leak via `cause`.
      throw new PayloadDecryptionError(
        `Payload encrypted with codec key "${keyId}" failed authentication: it was modified, or the key with this ID is not the one that encrypted it`,
        keyId,
      );
    }
    try {
      // The message itself (not a copy of two fields) keeps any newer Payload fields intact.
      return PayloadMessage.decode(plaintext);
    } catch {
      throw new PayloadDecryptionError(
        `Payload encrypted with codec key "${keyId}" decrypted, but is not a protobuf Payload (written by a codec with another format?)`,
        keyId,
      );
    }
  }
}

/** ./failure-converter.ts beside this file (.js once built). */
const encodedFailureConverterPath = fileURLToPath(
  new URL(`./failure-converter${extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);

export function createEncryptionCodec(keyring: CodecKeyring, plaintext?: PlaintextPolicy): PayloadCodec {
  return new EncryptionCodec(keyring, plaintext);
}

/**
 * The data converter options for `Worker.create({ dataConverter })` and `new Client({ dataConverter })`:
 * with a keyring, the encryption codec, and failures whose message and stack trace are encoded too
 * (HeyGen's and the mail server's words, which may quote what we sent); without one, plain payloads.
 */
export function dataConverterFor(keyring: CodecKeyring | null, plaintext?: PlaintextPolicy): DataConverter {
  if (!keyring) return {};
  return {
    payloadCodecs: [createEncryptionCodec(keyring, plaintext)],
    failureConverterPath: encodedFailureConverterPath,
  };
}
