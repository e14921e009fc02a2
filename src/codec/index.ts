// Payload encryption for Temporal: the codec, its keys, and the codec server for the Web UI and CLI.
export {
  createEncryptionCodec,
  dataConverterFor,
  EncryptionCodec,
  ENCRYPTED_ENCODING,
  isEncryptedPayload,
  METADATA_ENCRYPTION_KEY_ID,
  PayloadDecryptionError,
  PlaintextPayloadError,
} from './encryption-codec.js';
export type { PlaintextPolicy } from './encryption-codec.js';
export {
  CODEC_ACTIVE_KEY_VAR,
  CODEC_KEY_BYTES,
  CODEC_KEY_FILE_VAR,
  CODEC_KEYS_VAR,
  CodecConfigError,
  createCodecKeyring,
  describeKeyring,
  generateKey,
  isValidKeyId,
  loadCodecKeysFromEnv,
} from './keys.js';
export type { CodecKeyring, GeneratedKey, ReadKeyFile } from './keys.js';
export {
  DEFAULT_ALLOWED_ORIGIN,
  DEFAULT_CODEC_SERVER_HOST,
  DEFAULT_CODEC_SERVER_PORT,
  DEFAULT_MAX_BODY_BYTES,
  loadCodecServerConfig,
  payloadFromJson,
  payloadToJson,
  startCodecServer,
} from './codec-server.js';
export type {
  CodecServerConfig,
  CodecServerOptions,
  JsonPayload,
  RunningCodecServer,
} from './codec-server.js';
