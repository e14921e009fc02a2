/**
 * Encryption keys for the payload codec: parsing from the environment or a key file, and generation.
 *
 * Key material lives only in `KeyObject`s: `console.log`, `util.inspect` and `JSON.stringify` of a
 * keyring never show the bytes. Every error names the variable (or file) and the problem, never a
 * key or any text that could be one.
 */
import { createSecretKey, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { envVar, formatIssues } from '../config/env.js';
import { duplicatePositions, isRepeatedPattern, REPEATED_PATTERN_RULE } from '../weak-secrets.js';

export const CODEC_KEYS_VAR = 'AVATAR_CONSENT_CODEC_KEYS';
export const CODEC_ACTIVE_KEY_VAR = 'AVATAR_CONSENT_CODEC_ACTIVE_KEY';
export const CODEC_KEY_FILE_VAR = 'AVATAR_CONSENT_CODEC_KEY_FILE';

/** AES-256 needs exactly 32 bytes of key. */
export const CODEC_KEY_BYTES = 32;

/**
 * Key IDs travel in payload metadata (plaintext), so they must be short and printable. At most 32
 * characters also means a 32-byte key in base64 (43+ characters) can never pass as an ID, so a valid
 * ID is safe to name in a message even when someone swapped ID and key.
 */
const keyIdPattern = /^[A-Za-z0-9._-]{1,32}$/;
const keyIdRule = 'must be 1-32 characters of A-Z, a-z, 0-9, ".", "_" or "-"';

// Standard or URL-safe base64, optional padding (what `openssl rand -base64 32` and our generator print).
const base64Pattern = /^[A-Za-z0-9+/_-]+={0,2}$/;

export interface CodecKeyring {
  /** The key that encrypts new payloads. */
  readonly activeKeyId: string;
  /** Every key that may decrypt, by ID (includes the active key). */
  readonly keys: ReadonlyMap<string, KeyObject>;
}

/** A configuration problem; the message names the variable and the reason, never key material. */
export class CodecConfigError extends Error {
  override readonly name = 'CodecConfigError';
}

export function isValidKeyId(id: string): boolean {
  return keyIdPattern.test(id);
}

/**
 * Decodes base64 key text; undefined unless it is base64 of exactly 32 bytes that are not a
 * repeated pattern. Returns the size for messages.
 */
function decodeKey(text: string): { key?: Buffer; problem?: string } {
  const trimmed = text.trim();
  if (!base64Pattern.test(trimmed)) return { problem: 'is not base64' };
  const bytes = Buffer.from(trimmed, 'base64');
  if (bytes.length !== CODEC_KEY_BYTES) {
    // The length says nothing useful about the key, and helps spot a hex key or a truncated paste.
    return { problem: `must decode to ${CODEC_KEY_BYTES} bytes, got ${bytes.length}` };
  }
  if (isRepeatedPattern(bytes)) return { problem: REPEATED_PATTERN_RULE };
  return { key: bytes };
}

/** "keys "k1" and "k2" are the same key": one key under two IDs is a copy-paste slip, not a rotation. */
function duplicateKeyProblems(entries: KeyEntries): string[] {
  return duplicatePositions(entries.map(([, key]) => key)).map(([first, second]) => {
    const a = entries[first - 1]![0];
    const b = entries[second - 1]![0];
    return `keys "${a}" and "${b}" are the same key; give each ID its own random key`;
  });
}

/**
 * Builds a keyring from raw keys. The active key defaults to the first one.
 * Throws CodecConfigError for a bad ID, a key that is not 32 bytes, or an active ID that is not a key.
 */
export function createCodecKeyring(
  keys: Record<string, Uint8Array> | Iterable<readonly [string, Uint8Array]>,
  activeKeyId?: string,
): CodecKeyring {
  const entries = Symbol.iterator in keys ? [...keys] : Object.entries(keys);
  const map = new Map<string, KeyObject>();
  for (const [index, [id, bytes]] of entries.entries()) {
    if (!isValidKeyId(id)) throw new CodecConfigError(`Codec key ID number ${index + 1} ${keyIdRule}`);
    if (map.has(id)) throw new CodecConfigError(`Codec key ID "${id}" is configured twice`);
    if (bytes.length !== CODEC_KEY_BYTES) {
      throw new CodecConfigError(`Codec key "${id}" must be ${CODEC_KEY_BYTES} bytes, got ${bytes.length}`);
    }
    if (isRepeatedPattern(bytes)) throw new CodecConfigError(`Codec key "${id}" ${REPEATED_PATTERN_RULE}`);
    map.set(id, createSecretKey(Buffer.from(bytes)));
  }
  const [duplicate] = duplicateKeyProblems(entries.map(([id, bytes]) => [id, Buffer.from(bytes)]));
  if (duplicate !== undefined) throw new CodecConfigError(`Codec ${duplicate}`);
  const first = map.keys().next();
  if (first.done) throw new CodecConfigError('A codec keyring needs at least one key');
  const active = activeKeyId ?? first.value;
  // Only the ID that failed: the message may reach a log or a CLI, and the list is nobody's business.
  if (!map.has(active)) throw new CodecConfigError(`Active codec key "${active}" is not in the keyring`);
  return { activeKeyId: active, keys: map };
}

/** A one-line summary safe to log: IDs only. */
export function describeKeyring(keyring: CodecKeyring): string {
  return `keys ${[...keyring.keys.keys()].join(', ')} (active: ${keyring.activeKeyId})`;
}

// ---------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------

type KeyEntries = Array<[string, Buffer]>;

/** `id:base64,id:base64`. Messages identify entries by position and ID, never by their text. */
const keyListSchema = z.string().transform((text, ctx): KeyEntries => {
  const entries: KeyEntries = [];
  const seen = new Set<string>();
  const parts = text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  parts.forEach((part, index) => {
    const position = `entry ${index + 1}`;
    const colon = part.indexOf(':');
    if (colon <= 0) {
      ctx.addIssue({ code: 'custom', message: `${position} is not in the form id:base64key` });
      return;
    }
    const id = part.slice(0, colon).trim();
    if (!isValidKeyId(id)) {
      // The text before the colon may be a pasted key, so it is not echoed.
      ctx.addIssue({ code: 'custom', message: `${position}: the key ID ${keyIdRule}` });
      return;
    }
    if (seen.has(id)) {
      ctx.addIssue({ code: 'custom', message: `${position}: key ID "${id}" appears twice` });
      return;
    }
    seen.add(id);
    const { key, problem } = decodeKey(part.slice(colon + 1));
    if (!key) {
      ctx.addIssue({ code: 'custom', message: `${position} (key "${id}"): the key ${problem}` });
      return;
    }
    entries.push([id, key]);
  });
  if (parts.length === 0) ctx.addIssue({ code: 'custom', message: 'lists no keys' });
  for (const message of duplicateKeyProblems(entries)) ctx.addIssue({ code: 'custom', message });
  return entries;
});

const keyIdSchema = z.string().trim().regex(keyIdPattern, keyIdRule);

export const codecEnvSchema = z.object({
  [CODEC_KEYS_VAR]: envVar(keyListSchema.optional()),
  [CODEC_ACTIVE_KEY_VAR]: envVar(keyIdSchema.optional()),
  [CODEC_KEY_FILE_VAR]: envVar(z.string().trim().optional()),
});

const keyFileSchema = z.strictObject(
  {
    active: keyIdSchema.optional(),
    keys: z.record(z.string(), z.string({ error: 'must be a base64 string' })),
  },
  {
    // zod's default message quotes unknown field names, which could be pasted keys.
    error: (issue) =>
      issue.code === 'unrecognized_keys' ? 'has unknown fields (allowed: "active", "keys")' : undefined,
  },
);

function issuesToText(error: z.ZodError, prefix: string, hideInvalidIds: boolean): string[] {
  // Only the path and our own messages: zod issues may carry the input, which could be a key.
  // Path segments that are not valid key IDs (record keys in the file) might be keys too.
  const segment = (part: PropertyKey) =>
    hideInvalidIds && typeof part === 'string' && !isValidKeyId(part) ? '<invalid key ID>' : String(part);
  return error.issues.map((issue) => {
    const text = formatIssues([issue], { root: '', segment });
    return prefix ? `${prefix}: ${text}` : text;
  });
}

export type ReadKeyFile = (path: string) => string;

const readUtf8: ReadKeyFile = (path) => readFileSync(path, 'utf8');

function loadKeyFile(path: string, readFile: ReadKeyFile): { entries: KeyEntries; active?: string } {
  const where = `${CODEC_KEY_FILE_VAR} (${path})`;
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    throw new CodecConfigError(`${where}: cannot read the file${code ? ` (${code})` : ''}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // JSON.parse messages quote the offending text, which may be a key: say only that it failed.
    throw new CodecConfigError(`${where}: the file is not valid JSON`);
  }
  const parsed = keyFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new CodecConfigError(
      `Invalid codec key file: ${issuesToText(parsed.error, where, true).join('; ')}`,
    );
  }
  const problems: string[] = [];
  const entries: KeyEntries = [];
  for (const [index, [id, text]] of Object.entries(parsed.data.keys).entries()) {
    if (!isValidKeyId(id)) {
      // Not echoed: an invalid ID may be a key pasted in the wrong place.
      problems.push(`${where}: keys: key ID number ${index + 1} ${keyIdRule}`);
      continue;
    }
    const { key, problem } = decodeKey(text);
    if (key) entries.push([id, key]);
    else problems.push(`${where}: keys.${id}: the key ${problem}`);
  }
  if (Object.keys(parsed.data.keys).length === 0) problems.push(`${where}: keys: lists no keys`);
  problems.push(...duplicateKeyProblems(entries).map((problem) => `${where}: ${problem}`));
  if (problems.length > 0) throw new CodecConfigError(`Invalid codec key file: ${problems.join('; ')}`);
  return { entries, ...(parsed.data.active ? { active: parsed.data.active } : {}) };
}

/**
 * Reads the codec keys from `AVATAR_CONSENT_CODEC_KEYS` (+ `AVATAR_CONSENT_CODEC_ACTIVE_KEY`) or from
 * the JSON file named by `AVATAR_CONSENT_CODEC_KEY_FILE`. Returns null when neither is set (encryption
 * off: whether that is acceptable is the caller's decision). Throws CodecConfigError listing every
 * problem; no message contains key material.
 *
 * With a key file, `AVATAR_CONSENT_CODEC_ACTIVE_KEY` (if set) overrides the file's `active`.
 */
export function loadCodecKeysFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  readFile: ReadKeyFile = readUtf8,
): CodecKeyring | null {
  const parsed = codecEnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new CodecConfigError(
      `Invalid codec key configuration: ${issuesToText(parsed.error, '', false).join('; ')}`,
    );
  }
  const {
    [CODEC_KEYS_VAR]: listed,
    [CODEC_ACTIVE_KEY_VAR]: activeFromEnv,
    [CODEC_KEY_FILE_VAR]: keyFile,
  } = parsed.data;

  if (listed && keyFile) {
    throw new CodecConfigError(
      `Invalid codec key configuration: set either ${CODEC_KEYS_VAR} or ${CODEC_KEY_FILE_VAR}, not both`,
    );
  }
  let entries: KeyEntries;
  let active = activeFromEnv;
  if (listed) {
    entries = listed;
  } else if (keyFile) {
    const loaded = loadKeyFile(keyFile, readFile);
    entries = loaded.entries;
    active = activeFromEnv ?? loaded.active;
  } else {
    if (activeFromEnv) {
      throw new CodecConfigError(
        `Invalid codec key configuration: ${CODEC_ACTIVE_KEY_VAR} is set but no keys are configured (set ${CODEC_KEYS_VAR} or ${CODEC_KEY_FILE_VAR})`,
      );
    }
    return null;
  }

  if (active !== undefined && !entries.some(([id]) => id === active)) {
    const source = activeFromEnv ? CODEC_ACTIVE_KEY_VAR : `${CODEC_KEY_FILE_VAR} (active)`;
    throw new CodecConfigError(
      `Invalid codec key configuration: ${source}: "${active}" is not one of the configured key IDs`,
    );
  }
  return createCodecKeyring(entries, active);
}

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

export interface GeneratedKey {
  id: string;
  /** Standard base64 of 32 random bytes. */
  keyBase64: string;
  /** `id:base64`, ready to append to AVATAR_CONSENT_CODEC_KEYS. */
  line: string;
}

/** A new random key. The default ID carries the date, so rotations read in order: `k20260321-3fa9`. */
export function generateKey(id?: string): GeneratedKey {
  const keyId =
    id ?? `k${new Date().toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(2).toString('hex')}`;
  if (!isValidKeyId(keyId)) throw new CodecConfigError(`Codec key ID "${keyId}" ${keyIdRule}`);
  const keyBase64 = randomBytes(CODEC_KEY_BYTES).toString('base64');
  return { id: keyId, keyBase64, line: `${keyId}:${keyBase64}` };
}
