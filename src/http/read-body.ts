/**
 * Reading a request body with a size cap, for every HTTP server of the project (the codec server,
 * the sandbox). Past the cap the body is still drained for a while, so the client gets the 413,
 * and the connection is dropped only for an endless upload.
 */
import type { IncomingMessage } from 'node:http';

export type BodyRead = { kind: 'ok'; body: Buffer } | { kind: 'too_large' };

/** Past this we stop draining and drop the connection. */
export const MAX_DRAIN_BYTES = 8 * 1024 * 1024;

export function readBody(req: IncomingMessage, maxBytes: number): Promise<BodyRead> {
  const declared = Number(req.headers['content-length']);
  return new Promise((resolve, reject) => {
    // Judged by Content-Length before reading, when the client says how much it will send.
    if (Number.isFinite(declared) && declared > maxBytes) {
      if (declared > MAX_DRAIN_BYTES) req.destroy();
      else req.resume();
      resolve({ kind: 'too_large' });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
      else if (size > MAX_DRAIN_BYTES) req.destroy();
    });
    req.on('end', () =>
      resolve(size > maxBytes ? { kind: 'too_large' } : { kind: 'ok', body: Buffer.concat(chunks) }),
    );
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) {
        if (size > maxBytes) resolve({ kind: 'too_large' });
        else reject(new Error('request body aborted'));
      }
    });
  });
}
