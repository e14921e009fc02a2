import type { IncomingMessage, ServerResponse } from 'node:http';

import type { z } from 'zod';

import { readBody } from '../../src/http/read-body.js';

/** Largest request body the sandbox accepts; bigger ones get 413 in the error envelope. */
export const MAX_BODY_BYTES = 64 * 1024;

import type { StandardApiError } from '../../src/heygen/types.js';

/** What a handler answers; the server writes it (and the idempotency store may keep it). */
export interface ApiResponse {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export function apiError(
  status: number,
  code: string,
  message: string,
  param: string | null = null,
  headers?: Record<string, string>,
): ApiResponse {
  const error: StandardApiError = { code, message, param, doc_url: null };
  return headers ? { status, body: { error }, headers } : { status, body: { error } };
}

export function methodNotAllowed(allowed: string[]): ApiResponse {
  return apiError(405, 'method_not_allowed', `Method not allowed. Allowed: ${allowed.join(', ')}.`, null, {
    allow: allowed.join(', '),
  });
}

export function notFound(): ApiResponse {
  return apiError(404, 'not_found', 'The requested resource was not found.');
}

export function writeJson(res: ServerResponse, response: ApiResponse): void {
  const payload = JSON.stringify(response.body);
  res.writeHead(response.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    'cache-control': 'no-store',
    ...response.headers,
  });
  res.end(payload);
}

export function writeRaw(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** 400 invalid_parameter naming the first offending field (`param`), from a zod error. */
export function invalidParameter(error: z.ZodError): ApiResponse {
  const issue = error.issues[0];
  const head = issue?.path[0];
  const param = typeof head === 'string' ? head : null;
  let message = issue?.message ?? 'Invalid request';
  if (!message.endsWith('.')) message += '.';
  if (param && !message.includes(param)) message = `${param}: ${message}`;
  return apiError(400, 'invalid_parameter', message, param);
}

export type BodyParse<T> = { ok: true; value: T } | { ok: false; response: ApiResponse };

/**
 * Reads a JSON object body and validates it: 413 over 64 KiB, 400 (param null) for malformed JSON or
 * a non-object, 400 with the field as param when the schema rejects it. An empty body counts as {}.
 */
export async function readJsonBody<T>(req: IncomingMessage, schema: z.ZodType<T>): Promise<BodyParse<T>> {
  const read = await readBody(req, MAX_BODY_BYTES);
  if (read.kind === 'too_large') {
    return { ok: false, response: apiError(413, 'request_too_large', 'The request body exceeds 64 KiB.') };
  }
  let value: unknown = {};
  const text = read.body.toString('utf8');
  if (text.trim() !== '') {
    try {
      value = JSON.parse(text);
    } catch {
      return {
        ok: false,
        response: apiError(400, 'invalid_parameter', 'The request body is not valid JSON.'),
      };
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      ok: false,
      response: apiError(400, 'invalid_parameter', 'The request body must be a JSON object.'),
    };
  }
  const parsed = schema.safeParse(value);
  return parsed.success
    ? { ok: true, value: parsed.data }
    : { ok: false, response: invalidParameter(parsed.error) };
}

/** A decoded path segment, or null when empty or not valid percent-encoding. */
export function decodePathSegment(segment: string): string | null {
  try {
    return segment === '' ? null : decodeURIComponent(segment);
  } catch {
    return null;
  }
}

export function singleHeader(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}
