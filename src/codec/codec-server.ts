/**
 * Temporal's remote codec protocol over `node:http`, so the Web UI and the `temporal` CLI can show
 * decrypted payloads to authorized operators while the server stores only ciphertext.
 *
 *   POST /encode, POST /decode   (also /{namespace}/encode|decode, for the CLI's `{namespace}` template)
 *   body and answer: {"payloads":[{"metadata":{"encoding":"<base64>"},"data":"<base64>"}]}  (proto JSON)
 *
 * Every request needs `Authorization: Bearer <token>`. CORS headers go only to the configured UI
 * origin(s). Payload contents, the token and keys never reach a log line or an error body.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { z } from 'zod';
import { envVar, formatIssues } from '../config/env.js';
import { readBody } from '../http/read-body.js';

import { createEncryptionCodec, PayloadDecryptionError } from './encryption-codec.js';
import { isRepeatedPattern, REPEATED_PATTERN_RULE } from '../weak-secrets.js';
import { CodecConfigError, loadCodecKeysFromEnv } from './keys.js';
import type { CodecKeyring, ReadKeyFile } from './keys.js';

export const DEFAULT_CODEC_SERVER_PORT = 8888;
export const DEFAULT_CODEC_SERVER_HOST = '127.0.0.1';
/** The dev server's Web UI (`temporal server start-dev`). */
export const DEFAULT_ALLOWED_ORIGIN = 'http://localhost:8233';
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
export const MIN_TOKEN_LENGTH = 16;

const ALLOWED_METHODS = 'POST, OPTIONS';
// Authorization-Extras: the UI adds the user's ID token there when "pass access token" is on.
const ALLOWED_HEADERS = 'Authorization, Authorization-Extras, Content-Type, X-Namespace';
const MAX_PAYLOADS_PER_REQUEST = 10_000;

// ---------------------------------------------------------------------------------------------
// Wire format: Temporal's proto JSON for Payload (bytes as base64, standard or URL-safe)
// ---------------------------------------------------------------------------------------------

const base64Text = z.string().regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'must be base64');

export const jsonPayloadSchema = z.looseObject({
  metadata: z.record(z.string(), base64Text).nullish(),
  data: base64Text.nullish(),
});
export type JsonPayload = { metadata: Record<string, string>; data: string };

export const codecRequestSchema = z.looseObject({
  payloads: z
    .array(jsonPayloadSchema)
    .max(MAX_PAYLOADS_PER_REQUEST, `must hold at most ${MAX_PAYLOADS_PER_REQUEST} payloads`),
});

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export function payloadToJson(payload: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(payload.metadata ?? {})) {
    if (value) metadata[key] = toBase64(value);
  }
  return { metadata, data: toBase64(payload.data ?? new Uint8Array()) };
}

export function payloadFromJson(json: z.output<typeof jsonPayloadSchema>): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [key, value] of Object.entries(json.metadata ?? {})) {
    metadata[key] = Buffer.from(value, 'base64');
  }
  return { metadata, data: Buffer.from(json.data ?? '', 'base64') };
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

export interface CodecServerOptions {
  keyring: CodecKeyring;
  /** Required bearer token (at least 16 characters). */
  token: string;
  /** 0 picks a free port. Default 8888. */
  port?: number;
  /** Default 127.0.0.1: the codec server decrypts PII, keep it off the network unless behind TLS. */
  host?: string;
  /** Origin(s) of the Web UI allowed to call from a browser. Default http://localhost:8233. */
  allowedOrigin?: string | readonly string[];
  /** Larger bodies get 413. Default 4 MiB. */
  maxBodyBytes?: number;
  /** One line per request (method, path, status, payload count): never contents, tokens or keys. */
  log?: (line: string) => void;
}

export interface RunningCodecServer {
  /** e.g. http://127.0.0.1:8888 */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const routePattern = /^(?:\/[^/]+)?\/(encode|decode)\/?$/;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * Compares digests, not the strings: equal length always, so neither the comparison time nor an
 * early exit reveals how much of the token, or how long a token, was right.
 */
function bearerTokenMatches(header: string | undefined, expectedDigest: Buffer): boolean {
  const match = /^Bearer +(\S+) *$/i.exec(header ?? '');
  const presented = sha256(match?.[1] ?? '');
  return timingSafeEqual(presented, expectedDigest) && match !== null;
}

function normalizeOrigin(origin: string): string {
  if (!URL.canParse(origin)) throw new CodecConfigError('The allowed CORS origin must be a URL');
  const url = new URL(origin);
  if (!['http:', 'https:'].includes(url.protocol) || origin.replace(/\/$/, '') !== url.origin) {
    throw new CodecConfigError(
      `The allowed CORS origin must be scheme://host[:port] without a path, got "${origin}"`,
    );
  }
  return url.origin;
}

function describeZodIssues(error: z.ZodError): string {
  const more = error.issues.length - 5;
  return formatIssues(error.issues.slice(0, 5), { root: '(body)' }) + (more > 0 ? `; and ${more} more` : '');
}

export async function startCodecServer(options: CodecServerOptions): Promise<RunningCodecServer> {
  if (options.token.length < MIN_TOKEN_LENGTH) {
    throw new CodecConfigError(`The codec server token must be at least ${MIN_TOKEN_LENGTH} characters`);
  }
  if (isRepeatedPattern(Buffer.from(options.token, 'utf8'))) {
    throw new CodecConfigError(`The codec server token ${REPEATED_PATTERN_RULE}`);
  }
  // Only a digest is kept, so a heap dump or an inspected closure does not show the token.
  const tokenDigest = sha256(options.token);
  const allowedOrigins = new Set(
    [options.allowedOrigin ?? DEFAULT_ALLOWED_ORIGIN].flat().map((origin) => normalizeOrigin(origin)),
  );
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const codec: PayloadCodec = createEncryptionCodec(options.keyring);
  const log = options.log ?? (() => undefined);

  function corsHeaders(req: IncomingMessage): Record<string, string> {
    const origin = req.headers.origin;
    if (origin === undefined || !allowedOrigins.has(origin)) return {};
    // No Access-Control-Allow-Credentials: the token travels in Authorization, which CORS allows
    // without it; allowing credentials would only let cookies or client certificates ride along.
    return { 'Access-Control-Allow-Origin': origin };
  }

  function send(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, {
      // Decrypted personal data must not sit in a browser or proxy cache.
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      Vary: 'Origin',
      ...(body === undefined ? {} : { 'Content-Type': 'application/json; charset=utf-8' }),
      'Content-Length': String(Buffer.byteLength(text)),
      ...corsHeaders(req),
      ...headers,
    });
    res.end(text);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<{ payloads?: number }> {
    const path = new URL(req.url ?? '/', 'http://codec.invalid').pathname;
    const operation = routePattern.exec(path)?.[1] as 'encode' | 'decode' | undefined;
    if (!operation) throw new HttpError(404, 'not found: use POST /encode or POST /decode');

    if (req.method === 'OPTIONS') {
      // Preflights carry no credentials, so they are judged by origin alone.
      const origin = req.headers.origin;
      if (origin === undefined || !allowedOrigins.has(origin)) {
        throw new HttpError(403, 'origin not allowed');
      }
      send(req, res, 204, undefined, {
        'Access-Control-Allow-Methods': ALLOWED_METHODS,
        'Access-Control-Allow-Headers': ALLOWED_HEADERS,
        'Access-Control-Max-Age': '600',
      });
      return {};
    }
    if (req.method !== 'POST') throw new HttpError(405, 'method not allowed', { Allow: ALLOWED_METHODS });

    if (!bearerTokenMatches(req.headers.authorization, tokenDigest)) {
      throw new HttpError(401, 'unauthorized', { 'WWW-Authenticate': 'Bearer' });
    }

    const read = await readBody(req, maxBodyBytes);
    if (read.kind === 'too_large')
      throw new HttpError(413, `request body is larger than ${maxBodyBytes} bytes`);
    const body = read.body;
    let raw: unknown;
    try {
      raw = JSON.parse(body.toString('utf8'));
    } catch {
      // JSON.parse messages quote the body, which may be personal data.
      throw new HttpError(400, 'request body is not valid JSON');
    }
    const parsed = codecRequestSchema.safeParse(raw);
    if (!parsed.success) {
      throw new HttpError(
        400,
        `request body must be {"payloads":[{"metadata":{...},"data":"<base64>"}]}: ${describeZodIssues(parsed.error)}`,
      );
    }
    const payloads = parsed.data.payloads.map(payloadFromJson);
    const result = operation === 'encode' ? await codec.encode(payloads) : await codec.decode(payloads);
    send(req, res, 200, { payloads: result.map(payloadToJson) });
    return { payloads: payloads.length };
  }

  const server: Server = createServer((req, res) => {
    const started = Date.now();
    const path = new URL(req.url ?? '/', 'http://codec.invalid').pathname;
    const finish = (status: number, detail = '') => {
      log(`${req.method ?? '?'} ${path} ${status}${detail} ${Date.now() - started}ms`);
    };
    handle(req, res).then(
      ({ payloads }) => finish(res.statusCode, payloads === undefined ? '' : ` ${payloads} payload(s)`),
      (error: unknown) => {
        let status = 500;
        let message = 'internal error';
        let headers: Record<string, string> = {};
        if (error instanceof HttpError) {
          ({ status, message, headers } = error);
        } else if (error instanceof PayloadDecryptionError) {
          // Our own message: names the key ID, never key material or payload contents.
          status = 422;
          message = error.message;
        }
        if (status === 413) {
          // Stop reading an oversized body: answer, then drop the connection.
          headers = { ...headers, Connection: 'close' };
          res.on('finish', () => req.socket.destroy());
        }
        if (!res.headersSent) send(req, res, status, { error: message }, headers);
        else res.destroy();
        // For unexpected errors only the class name: their messages could quote payload data.
        finish(status, status === 500 ? ` (${error instanceof Error ? error.name : typeof error})` : '');
      },
    );
  });
  server.requestTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(
      options.port ?? DEFAULT_CODEC_SERVER_PORT,
      options.host ?? DEFAULT_CODEC_SERVER_HOST,
      () => {
        server.off('error', reject);
        resolve();
      },
    );
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    host: address.address,
    port: address.port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Environment for `npm run codec-server`
// ---------------------------------------------------------------------------------------------

export interface CodecServerConfig {
  port: number;
  host: string;
  token: string;
  allowedOrigins: string[];
  keyring: CodecKeyring;
}

const originList = z.string().transform((text, ctx) => {
  const origins = text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  const normalized: string[] = [];
  for (const origin of origins) {
    try {
      normalized.push(normalizeOrigin(origin));
    } catch {
      ctx.addIssue({ code: 'custom', message: `"${origin}" is not an origin such as http://localhost:8233` });
    }
  }
  if (origins.length === 0) ctx.addIssue({ code: 'custom', message: 'lists no origin' });
  return normalized;
});

export const codecServerEnvSchema = z.object({
  CODEC_SERVER_PORT: envVar(
    z.coerce
      .number({ error: 'must be a port number' })
      .int('must be a port number')
      .min(0, 'must be 0-65535')
      .max(65535, 'must be 0-65535')
      .default(DEFAULT_CODEC_SERVER_PORT),
  ),
  CODEC_SERVER_HOST: envVar(z.string().trim().default(DEFAULT_CODEC_SERVER_HOST)),
  // Messages say what is wrong, never what was given.
  CODEC_SERVER_TOKEN: envVar(
    z
      .string({ error: `is required (a random secret of at least ${MIN_TOKEN_LENGTH} characters)` })
      .min(MIN_TOKEN_LENGTH, `must be at least ${MIN_TOKEN_LENGTH} characters`)
      .refine((token) => !isRepeatedPattern(Buffer.from(token, 'utf8')), REPEATED_PATTERN_RULE),
  ),
  CODEC_SERVER_ALLOWED_ORIGIN: envVar(originList.default([DEFAULT_ALLOWED_ORIGIN])),
});

function tokenIsACodecKey(token: string, keyring: CodecKeyring): boolean {
  return [...keyring.keys.values()].some((key) => {
    const bytes = key.export();
    return [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex')].includes(token);
  });
}

/**
 * Reads CODEC_SERVER_* and the codec key variables. Throws one CodecConfigError listing every
 * problem; the token and keys never appear in it. Keys are required here (no keys, nothing to decode).
 */
export function loadCodecServerConfig(
  env: NodeJS.ProcessEnv = process.env,
  readFile?: ReadKeyFile,
): CodecServerConfig {
  const problems: string[] = [];
  const parsed = codecServerEnvSchema.safeParse(env);
  if (!parsed.success) problems.push(formatIssues(parsed.error));
  let keyring: CodecKeyring | null = null;
  try {
    keyring = loadCodecKeysFromEnv(env, readFile);
    if (!keyring) {
      problems.push(
        'no codec keys: set AVATAR_CONSENT_CODEC_KEYS (id:base64,...) or AVATAR_CONSENT_CODEC_KEY_FILE',
      );
    }
  } catch (error) {
    if (!(error instanceof CodecConfigError)) throw error;
    problems.push(error.message);
  }
  if (parsed.success && keyring && tokenIsACodecKey(parsed.data.CODEC_SERVER_TOKEN, keyring)) {
    // The token is typed into the Web UI and CLI flags: it must not be a key that decrypts history.
    problems.push('CODEC_SERVER_TOKEN: must not be one of the codec keys; use its own random secret');
  }
  if (!parsed.success || !keyring || problems.length > 0) {
    throw new CodecConfigError(`Invalid codec server environment: ${problems.join('; ')}`);
  }
  return {
    port: parsed.data.CODEC_SERVER_PORT,
    host: parsed.data.CODEC_SERVER_HOST,
    token: parsed.data.CODEC_SERVER_TOKEN,
    allowedOrigins: parsed.data.CODEC_SERVER_ALLOWED_ORIGIN,
    keyring,
  };
}
