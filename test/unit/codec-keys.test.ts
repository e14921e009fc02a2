// Codec keys from the environment or a key file: parsing, rotation settings, and errors without secrets.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { format, inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

import {
  CodecConfigError,
  createCodecKeyring,
  createEncryptionCodec,
  describeKeyring,
  generateKey,
  loadCodecKeysFromEnv,
} from '../../src/codec/index.js';

const k1 = randomBytes(32);
const k2 = randomBytes(32);
const b64 = (key: Buffer) => key.toString('base64');

const dir = mkdtempSync(join(tmpdir(), 'codec-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileCounter = 0;
function keyFile(content: string): string {
  fileCounter += 1;
  const path = join(dir, `keys-${fileCounter}.json`);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

/** The CodecConfigError message for an env, with a check that none of the given secrets leaked into the error. */
function configError(env: NodeJS.ProcessEnv, secrets: string[]): string {
  let caught: unknown;
  try {
    loadCodecKeysFromEnv(env);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(CodecConfigError);
  const error = caught as CodecConfigError;
  const everything = [
    error.message,
    error.stack ?? '',
    inspect(error, { depth: 5 }),
    JSON.stringify(error),
  ].join('\n');
  for (const secret of secrets) expect(everything).not.toContain(secret);
  expect(error.cause).toBeUndefined();
  return error.message;
}

describe('loadCodecKeysFromEnv', () => {
  it('returns null when nothing is configured (encryption off), also for blank variables', () => {
    expect(loadCodecKeysFromEnv({})).toBeNull();
    expect(
      loadCodecKeysFromEnv({ AVATAR_CONSENT_CODEC_KEYS: ' ', AVATAR_CONSENT_CODEC_KEY_FILE: '' }),
    ).toBeNull();
  });

  it('reads id:base64 pairs; the first key is active by default', () => {
    const keyring = loadCodecKeysFromEnv({ AVATAR_CONSENT_CODEC_KEYS: ` k1:${b64(k1)} , k2:${b64(k2)}, ` })!;
    expect(keyring.activeKeyId).toBe('k1');
    expect([...keyring.keys.keys()]).toEqual(['k1', 'k2']);
    expect(keyring.keys.get('k2')!.export().equals(k2)).toBe(true);
  });

  it('accepts URL-safe base64 without padding', () => {
    const urlSafe = k1.toString('base64url');
    const keyring = loadCodecKeysFromEnv({ AVATAR_CONSENT_CODEC_KEYS: `k1:${urlSafe}` })!;
    expect(keyring.keys.get('k1')!.export().equals(k1)).toBe(true);
  });

  it('chooses the active key from AVATAR_CONSENT_CODEC_ACTIVE_KEY', () => {
    const keyring = loadCodecKeysFromEnv({
      AVATAR_CONSENT_CODEC_KEYS: `k1:${b64(k1)},k2:${b64(k2)}`,
      AVATAR_CONSENT_CODEC_ACTIVE_KEY: 'k2',
    })!;
    expect(keyring.activeKeyId).toBe('k2');
  });

  it('reads a key file; its "active" applies unless the environment overrides it', () => {
    const path = keyFile(JSON.stringify({ active: 'k2', keys: { k1: b64(k1), k2: b64(k2) } }));
    const fromFile = loadCodecKeysFromEnv({ AVATAR_CONSENT_CODEC_KEY_FILE: path })!;
    expect(fromFile.activeKeyId).toBe('k2');
    expect(fromFile.keys.get('k1')!.export().equals(k1)).toBe(true);
    const overridden = loadCodecKeysFromEnv({
      AVATAR_CONSENT_CODEC_KEY_FILE: path,
      AVATAR_CONSENT_CODEC_ACTIVE_KEY: 'k1',
    })!;
    expect(overridden.activeKeyId).toBe('k1');
    const noActive = loadCodecKeysFromEnv({
      AVATAR_CONSENT_CODEC_KEY_FILE: keyFile(JSON.stringify({ keys: { a: b64(k1), b: b64(k2) } })),
    })!;
    expect(noActive.activeKeyId).toBe('a');
  });

  describe('errors name the variable and the problem, never key material', () => {
    it('a key of the wrong length', () => {
      const short = randomBytes(16).toString('base64');
      const message = configError({ AVATAR_CONSENT_CODEC_KEYS: `k1:${b64(k1)},k2:${short}` }, [
        short,
        b64(k1),
      ]);
      expect(message).toContain('AVATAR_CONSENT_CODEC_KEYS');
      expect(message).toContain('entry 2 (key "k2")');
      expect(message).toContain('must decode to 32 bytes, got 16');
    });

    it('a key that is not base64 (e.g. hex)', () => {
      const hex = k1.toString('hex');
      const message = configError({ AVATAR_CONSENT_CODEC_KEYS: `k1:${hex}!` }, [hex]);
      expect(message).toMatch(/AVATAR_CONSENT_CODEC_KEYS: entry 1 \(key "k1"\): the key is not base64/);
    });

    it('an entry without an ID (a bare key) is reported by position only', () => {
      const message = configError({ AVATAR_CONSENT_CODEC_KEYS: `k1:${b64(k1)},${b64(k2)}` }, [
        b64(k1),
        b64(k2),
      ]);
      expect(message).toContain('AVATAR_CONSENT_CODEC_KEYS: entry 2 is not in the form id:base64key');
    });

    it('ID and key swapped: the key before the colon is not echoed', () => {
      const urlSafe = k2.toString('base64url');
      const message = configError({ AVATAR_CONSENT_CODEC_KEYS: `${urlSafe}:k2` }, [urlSafe, b64(k2)]);
      expect(message).toContain('entry 1: the key ID must be 1-32 characters');
    });

    it('a duplicate key ID, and a list with no keys', () => {
      expect(configError({ AVATAR_CONSENT_CODEC_KEYS: `k1:${b64(k1)},k1:${b64(k2)}` }, [b64(k2)])).toContain(
        'entry 2: key ID "k1" appears twice',
      );
      expect(configError({ AVATAR_CONSENT_CODEC_KEYS: ',,' }, [])).toContain(
        'AVATAR_CONSENT_CODEC_KEYS: lists no keys',
      );
    });

    it('an active key that is not configured, or an active key without keys', () => {
      expect(
        configError({ AVATAR_CONSENT_CODEC_KEYS: `k1:${b64(k1)}`, AVATAR_CONSENT_CODEC_ACTIVE_KEY: 'k9' }, [
          b64(k1),
        ]),
      ).toMatch(/AVATAR_CONSENT_CODEC_ACTIVE_KEY: "k9" is not one of the configured key IDs$/);
      expect(configError({ AVATAR_CONSENT_CODEC_ACTIVE_KEY: 'k1' }, [])).toContain(
        'AVATAR_CONSENT_CODEC_ACTIVE_KEY is set but no keys are configured',
      );
      expect(configError({ AVATAR_CONSENT_CODEC_ACTIVE_KEY: 'not valid!' }, [])).toContain(
        'AVATAR_CONSENT_CODEC_ACTIVE_KEY: must be 1-32 characters',
      );
    });

    it('both the list and a key file', () => {
      const path = keyFile(JSON.stringify({ keys: { k1: b64(k1) } }));
      expect(
        configError({ AVATAR_CONSENT_CODEC_KEYS: `k2:${b64(k2)}`, AVATAR_CONSENT_CODEC_KEY_FILE: path }, [
          b64(k1),
          b64(k2),
        ]),
      ).toContain('set either AVATAR_CONSENT_CODEC_KEYS or AVATAR_CONSENT_CODEC_KEY_FILE, not both');
    });

    it('a missing key file', () => {
      const message = configError({ AVATAR_CONSENT_CODEC_KEY_FILE: join(dir, 'missing.json') }, []);
      expect(message).toContain('AVATAR_CONSENT_CODEC_KEY_FILE');
      expect(message).toContain('cannot read the file (ENOENT)');
    });

    it('a key file that is not JSON: the parser message (which quotes the text) is not used', () => {
      const path = keyFile(`{ keys: { k1: "${b64(k1)}" } }`);
      const message = configError({ AVATAR_CONSENT_CODEC_KEY_FILE: path }, [b64(k1)]);
      expect(message).toContain(`AVATAR_CONSENT_CODEC_KEY_FILE (${path}): the file is not valid JSON`);
    });

    it('key file problems: bad key, swapped ID and key, unknown fields, wrong types', () => {
      const short = randomBytes(20).toString('base64');
      const urlSafe = k2.toString('base64url');
      const path = keyFile(
        JSON.stringify({ keys: { k1: short, [urlSafe]: 'k2' }, [b64(k1)]: true, extra: 1 }),
      );
      const message = configError({ AVATAR_CONSENT_CODEC_KEY_FILE: path }, [
        short,
        urlSafe,
        b64(k1),
        b64(k2),
      ]);
      expect(message).toContain('has unknown fields');

      const typed = keyFile(JSON.stringify({ keys: { k1: 42, [urlSafe]: 7 } }));
      const typedMessage = configError({ AVATAR_CONSENT_CODEC_KEY_FILE: typed }, [urlSafe]);
      expect(typedMessage).toContain('keys.k1: must be a base64 string');
      expect(typedMessage).toContain('keys.<invalid key ID>: must be a base64 string');

      const values = keyFile(JSON.stringify({ keys: { k1: short, [urlSafe]: b64(k1) } }));
      const valuesMessage = configError({ AVATAR_CONSENT_CODEC_KEY_FILE: values }, [short, urlSafe, b64(k1)]);
      expect(valuesMessage).toContain('keys.k1: the key must decode to 32 bytes, got 20');
      expect(valuesMessage).toContain('keys: key ID number 2 must be 1-32 characters');

      const empty = keyFile(JSON.stringify({ keys: {} }));
      expect(configError({ AVATAR_CONSENT_CODEC_KEY_FILE: empty }, [])).toContain('keys: lists no keys');

      const activeMissing = keyFile(JSON.stringify({ active: 'k3', keys: { k1: b64(k1) } }));
      expect(configError({ AVATAR_CONSENT_CODEC_KEY_FILE: activeMissing }, [b64(k1)])).toMatch(
        /AVATAR_CONSENT_CODEC_KEY_FILE \(active\): "k3" is not one of the configured key IDs$/,
      );
    });
  });
});

describe('weak keys', () => {
  const repeated = [
    Buffer.alloc(32, 0),
    Buffer.alloc(32, 0x5a),
    Buffer.from('ab'.repeat(16)),
    Buffer.from('wxyz'.repeat(8)),
  ];

  it('refuses a key that is one byte or a short pattern repeated, naming the entry and ID only', () => {
    for (const weak of repeated) {
      const message = configError({ AVATAR_CONSENT_CODEC_KEYS: `k1:${b64(k1)},k2:${b64(weak)}` }, [
        b64(weak),
        b64(k1),
      ]);
      expect(message).toContain(
        'AVATAR_CONSENT_CODEC_KEYS: entry 2 (key "k2"): the key must not be one character (or a short pattern) repeated',
      );
      const file = keyFile(JSON.stringify({ keys: { k1: b64(k1), k2: b64(weak) } }));
      expect(configError({ AVATAR_CONSENT_CODEC_KEY_FILE: file }, [b64(weak), b64(k1)])).toContain(
        'keys.k2: the key must not be one character (or a short pattern) repeated',
      );
    }
  });

  it('refuses the same key listed twice under two IDs, however it is spelled', () => {
    const message = configError(
      { AVATAR_CONSENT_CODEC_KEYS: `k1:${b64(k1)},k2:${b64(k2)},k3:${k1.toString('base64url')}` },
      [b64(k1), b64(k2), k1.toString('base64url')],
    );
    expect(message).toContain('AVATAR_CONSENT_CODEC_KEYS: keys "k1" and "k3" are the same key');
    const file = keyFile(JSON.stringify({ keys: { old: b64(k2), new: b64(k2) } }));
    expect(configError({ AVATAR_CONSENT_CODEC_KEY_FILE: file }, [b64(k2)])).toContain(
      'keys "old" and "new" are the same key',
    );
  });
});

describe('keyrings', () => {
  it('never show key material when logged or serialized', () => {
    const keyring = createCodecKeyring({ k1, k2 }, 'k2');
    const shown = [
      inspect(keyring, { depth: 10, showHidden: true }),
      JSON.stringify(keyring),
      format('%s %o %O', keyring, keyring, keyring),
    ];
    for (const text of shown) {
      for (const secret of [b64(k1), k1.toString('hex'), b64(k2), k2.toString('base64url')]) {
        expect(text).not.toContain(secret);
      }
    }
    expect(describeKeyring(keyring)).toBe('keys k1, k2 (active: k2)');
  });

  it('reject bad keys and IDs when built in code', () => {
    expect(() => createCodecKeyring({ k1: randomBytes(31) })).toThrow(/must be 32 bytes, got 31/);
    expect(() => createCodecKeyring({ 'bad id': k1 })).toThrow(/key ID number 1 must be/);
    expect(() => createCodecKeyring({})).toThrow(/at least one key/);
    expect(() => createCodecKeyring({ k1 }, 'k2')).toThrow(/^Active codec key "k2" is not in the keyring$/);
  });

  it('reject a repeated-pattern key and one key under two IDs when built in code', () => {
    expect(() => createCodecKeyring({ k1: Buffer.alloc(32, 0x41) })).toThrow(
      /^Codec key "k1" must not be one character \(or a short pattern\) repeated/,
    );
    expect(() => createCodecKeyring({ k1, k2: Buffer.from(k1) })).toThrow(
      /^Codec keys "k1" and "k2" are the same key/,
    );
  });
});

describe('generateKey', () => {
  it('makes a random 32-byte key whose line loads back through the environment', async () => {
    const generated = generateKey('k7');
    expect(generated.line).toBe(`k7:${generated.keyBase64}`);
    expect(Buffer.from(generated.keyBase64, 'base64')).toHaveLength(32);
    expect(generateKey('k7').keyBase64).not.toBe(generated.keyBase64);

    const keyring = loadCodecKeysFromEnv({ AVATAR_CONSENT_CODEC_KEYS: generated.line })!;
    const codec = createEncryptionCodec(keyring);
    const [encrypted] = await codec.encode([{ data: Buffer.from('hello') }]);
    expect(Buffer.from((await codec.decode([encrypted!]))[0]!.data!).toString()).toBe('hello');
  });

  it('defaults to a dated ID and rejects invalid IDs', () => {
    expect(generateKey().id).toMatch(/^k\d{8}-[0-9a-f]{4}$/);
    expect(() => generateKey('has space')).toThrow(CodecConfigError);
  });
});
