import { z } from 'zod';

import type { FaultSpec } from './types.js';

const count = z.number().int().min(1);
const match = {
  pathPrefix: z.string().startsWith('/').optional(),
  method: z.string().min(1).optional(),
};

// Strict objects: a misspelt matcher (say `pathprefix`) must fail loudly, not fault every request.
export const faultSpecSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('status'), status: z.literal([500, 502, 503, 504]), count, ...match }),
  z.strictObject({ kind: z.literal('hang'), count, ...match }),
  z.strictObject({ kind: z.literal('rate_limit'), count, retryAfter: z.string().min(1), ...match }),
  z.strictObject({ kind: z.literal('latency'), ms: z.number().int().min(0), count, ...match }),
  z.strictObject({
    kind: z.literal('body'),
    count,
    body: z.string(),
    status: z.number().int().min(200).max(599).optional(),
    contentType: z.string().min(1).optional(),
    ...match,
  }),
]);

// Keep the hand-written public type and the schema in step.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const schemaMatchesType: Same<z.output<typeof faultSpecSchema>, FaultSpec> = true;
void schemaMatchesType;

/** Pending faults in injection order; each matching /v3 request uses up one count of the first match. */
export class FaultQueue {
  #pending: FaultSpec[] = [];

  /** Validates (throws a ZodError on a bad spec) and queues a copy. */
  inject(fault: unknown): FaultSpec {
    const parsed = faultSpecSchema.parse(fault);
    this.#pending.push(parsed);
    return { ...parsed };
  }

  clear(): void {
    this.#pending = [];
  }

  list(): FaultSpec[] {
    return this.#pending.map((f) => ({ ...f }));
  }

  take(method: string, path: string): FaultSpec | null {
    const index = this.#pending.findIndex(
      (f) =>
        (f.method === undefined || f.method.toUpperCase() === method.toUpperCase()) &&
        (f.pathPrefix === undefined || path.startsWith(f.pathPrefix)),
    );
    const fault = this.#pending[index];
    if (!fault) return null;
    fault.count -= 1;
    if (fault.count <= 0) this.#pending.splice(index, 1);
    return { ...fault };
  }
}
