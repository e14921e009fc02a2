// The AES-256-GCM payload codec: roundtrip, tampering, key rotation, unknown keys, pass-through.
import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter, METADATA_ENCODING_KEY } from '@temporalio/common';
import type { Payload } from '@temporalio/common';
import proto from '@temporalio/proto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  createCodecKeyring,
  createEncryptionCodec,
  dataConverterFor,
  ENCRYPTED_ENCODING,
  isEncryptedPayload,
  METADATA_ENCRYPTION_KEY_ID,
  PayloadDecryptionError,
} from '../../src/codec/index.js';

const key1 = randomBytes(32);
const key2 = randomBytes(32);
const text = (bytes: Uint8Array | null | undefined) =>
  Buffer.from(bytes ?? new Uint8Array()).toString('utf8');
const email = 'ada.lovelace@example.com';
const consentUrl = 'https://app.heygen.com/consent/secret-token-123';

function personalPayload(): Payload {
  return defaultPayloadConverter.toPayload({ recipient: { email }, consentUrl });
}

async function decodeError(promise: Promise<unknown>): Promise<PayloadDecryptionError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(PayloadDecryptionError);
  return error as PayloadDecryptionError;
}

describe('encryption codec', () => {
  const keyring = createCodecKeyring({ k1: key1 });
  const codec = createEncryptionCodec(keyring);

  it('roundtrips a JSON payload and keeps its original metadata', async () => {
    const original = personalPayload();
    const [encrypted] = await codec.encode([original]);
    const [decoded] = await codec.decode([encrypted!]);
    expect(text(decoded!.metadata?.[METADATA_ENCODING_KEY])).toBe('json/plain');
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual({ recipient: { email }, consentUrl });
  });

  it('marks payloads binary/encrypted with the key ID and hides the plaintext', async () => {
    const [encrypted] = await codec.encode([personalPayload()]);
    expect(Object.keys(encrypted!.metadata ?? {}).sort()).toEqual([
      METADATA_ENCODING_KEY,
      METADATA_ENCRYPTION_KEY_ID,
    ]);
    expect(text(encrypted!.metadata?.[METADATA_ENCODING_KEY])).toBe(ENCRYPTED_ENCODING);
    expect(text(encrypted!.metadata?.[METADATA_ENCRYPTION_KEY_ID])).toBe('k1');
    expect(isEncryptedPayload(encrypted!)).toBe(true);
    const data = Buffer.from(encrypted!.data!);
    expect(data.includes(email)).toBe(false);
    expect(data.includes(consentUrl)).toBe(false);
    expect(data.includes('json/plain')).toBe(false);
  });

  it('uses a fresh 12-byte IV per payload: the same value never encrypts the same way twice', async () => {
    const [a, b] = await codec.encode([personalPayload(), personalPayload()]);
    expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);
    expect(Buffer.from(a!.data!).subarray(0, 12).equals(Buffer.from(b!.data!).subarray(0, 12))).toBe(false);
    // IV (12) + the whole Payload as protobuf (GCM keeps the length) + tag (16).
    const plaintextLength = proto.temporal.api.common.v1.Payload.encode(personalPayload()).finish().length;
    expect(a!.data!.length).toBe(12 + plaintextLength + 16);
  });

  it('handles empty lists and empty payloads', async () => {
    expect(await codec.encode([])).toEqual([]);
    const [encrypted] = await codec.encode([{}]);
    const [decoded] = await codec.decode([encrypted!]);
    expect(decoded!.data?.length ?? 0).toBe(0);
    expect(Object.keys(decoded!.metadata ?? {})).toEqual([]);
  });

  it('roundtrips arbitrary metadata and data (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), fc.uint8Array({ maxLength: 40 })),
        fc.uint8Array({ maxLength: 2000 }),
        async (metadata, data) => {
          const [encrypted] = await codec.encode([{ metadata, data }]);
          const [decoded] = await codec.decode([encrypted!]);
          expect(Buffer.from(decoded!.data ?? new Uint8Array()).equals(Buffer.from(data))).toBe(true);
          const decodedMetadata = Object.fromEntries(
            Object.entries(decoded!.metadata ?? {}).map(([k, v]) => [
              k,
              Buffer.from(v ?? []).toString('hex'),
            ]),
          );
          const expected = Object.fromEntries(
            Object.entries(metadata).map(([k, v]) => [k, Buffer.from(v).toString('hex')]),
          );
          expect(decodedMetadata).toEqual(expected);
        },
      ),
      { numRuns: 100 },
    );
  });

  describe('tampering', () => {
    const flipByte = (payload: Payload, index: number): Payload => {
      const data = Buffer.from(payload.data!);
      const at = index < 0 ? data.length + index : index;
      data[at] = data[at]! ^ 0x01;
      return { metadata: payload.metadata, data };
    };

    it.each([
      ['the IV', 0],
      ['the ciphertext', 20],
      ['the tag', -1],
    ])('rejects a payload with a flipped bit in %s', async (_part, index) => {
      const [encrypted] = await codec.encode([personalPayload()]);
      const error = await decodeError(codec.decode([flipByte(encrypted!, index)]));
      expect(error.message).toContain('"k1"');
      expect(error.message).toMatch(/failed authentication/);
      expect(error.keyId).toBe('k1');
    });

    it('rejects truncated data', async () => {
      const [encrypted] = await codec.encode([personalPayload()]);
      const truncated = { metadata: encrypted!.metadata, data: encrypted!.data!.subarray(0, 20) };
      await expect(codec.decode([truncated])).rejects.toThrow(/too short/);
    });

    it('rejects a payload relabelled with another configured key ID', async () => {
      const both = createEncryptionCodec(createCodecKeyring({ k1: key1, k2: key2 }));
      const [encrypted] = await both.encode([personalPayload()]);
      const relabelled = {
        metadata: { ...encrypted!.metadata, [METADATA_ENCRYPTION_KEY_ID]: Buffer.from('k2') },
        data: encrypted!.data,
      };
      const error = await decodeError(both.decode([relabelled]));
      expect(error.keyId).toBe('k2');
    });

    it('rejects encrypted payloads without a key ID', async () => {
      const [encrypted] = await codec.encode([personalPayload()]);
      const noKeyId = {
        metadata: { [METADATA_ENCODING_KEY]: encrypted!.metadata![METADATA_ENCODING_KEY]! },
        data: encrypted!.data,
      };
      await expect(codec.decode([noKeyId])).rejects.toThrow(/no "encryption-key-id" metadata/);
    });
  });

  describe('key rotation', () => {
    it('decodes old payloads with any configured key and encrypts new ones with the active key', async () => {
      const oldCodec = createEncryptionCodec(createCodecKeyring({ k1: key1 }));
      const [old] = await oldCodec.encode([personalPayload()]);

      const rotated = createEncryptionCodec(createCodecKeyring({ k1: key1, k2: key2 }, 'k2'));
      const [decoded] = await rotated.decode([old!]);
      expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual({ recipient: { email }, consentUrl });

      const [fresh] = await rotated.encode([personalPayload()]);
      expect(text(fresh!.metadata?.[METADATA_ENCRYPTION_KEY_ID])).toBe('k2');
      // Only k2 can read it: a codec with k1 alone names the missing key.
      const error = await decodeError(oldCodec.decode([fresh!]));
      expect(error.keyId).toBe('k2');
    });

    it('decodes a mixed batch (k1 and k2 payloads) in one call', async () => {
      const [byK1] = await createEncryptionCodec(createCodecKeyring({ k1: key1 })).encode([
        personalPayload(),
      ]);
      const [byK2] = await createEncryptionCodec(createCodecKeyring({ k2: key2 })).encode([
        defaultPayloadConverter.toPayload('second'),
      ]);
      const both = createEncryptionCodec(createCodecKeyring({ k1: key1, k2: key2 }, 'k2'));
      const decoded = await both.decode([byK1!, byK2!]);
      expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([
        { recipient: { email }, consentUrl },
        'second',
      ]);
    });
  });

  it('names only the unknown key ID, never the configured IDs or key material, in the error', async () => {
    const keyring3 = createCodecKeyring({ k3: randomBytes(32) });
    const [encrypted] = await createEncryptionCodec(keyring3).encode([personalPayload()]);
    const error = await decodeError(codec.decode([encrypted!]));
    expect(error.message).toBe(
      'Payload is encrypted with codec key "k3", which is not configured; add it to the keyring to decrypt',
    );
    expect(error.message).not.toContain('k1');
    expect(error.keyId).toBe('k3');
    const everything = JSON.stringify({ ...error, message: error.message, stack: error.stack });
    for (const secret of [key1.toString('base64'), key1.toString('hex'), email, consentUrl]) {
      expect(everything).not.toContain(secret);
    }
    expect(error.cause).toBeUndefined();
  });

  it('passes unencrypted payloads through decode unchanged', async () => {
    const plain = personalPayload();
    const noMetadata: Payload = { data: Buffer.from('raw bytes') };
    const otherEncoding: Payload = {
      metadata: { [METADATA_ENCODING_KEY]: Buffer.from('binary/plain') },
      data: Buffer.from('x'),
    };
    const decoded = await codec.decode([plain, noMetadata, otherEncoding]);
    expect(decoded[0]).toBe(plain);
    expect(decoded[1]).toBe(noMetadata);
    expect(decoded[2]).toBe(otherEncoding);
    expect(isEncryptedPayload(plain)).toBe(false);
  });
});

describe('dataConverterFor', () => {
  it('is empty when encryption is off', () => {
    expect(dataConverterFor(null)).toEqual({});
  });

  it('holds one encryption codec when a keyring is given', async () => {
    const converter = dataConverterFor(createCodecKeyring({ k1: key1 }));
    expect(converter.payloadCodecs).toHaveLength(1);
    const [encrypted] = await converter.payloadCodecs![0]!.encode([personalPayload()]);
    expect(isEncryptedPayload(encrypted!)).toBe(true);
  });
});
