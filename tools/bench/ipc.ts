/** Messages between the benchmark and its worker child process (validated with zod on both sides). */
import { z } from 'zod';

export const workerStartSchema = z.strictObject({
  type: z.literal('start'),
  system: z.enum(['product', 'baseline']),
  temporalAddress: z.string(),
  namespace: z.string(),
  taskQueue: z.string(),
  bundlePath: z.string(),
  heygenUrl: z.string(),
  heygenApiKey: z.string(),
  smtpUrl: z.string(),
  emailFrom: z.string(),
  /** Consent-return links through the gateway (product only). */
  returnLinks: z
    .strictObject({ publicBaseUrl: z.string(), secretText: z.string(), ttlMs: z.number() })
    .optional(),
  /** Record every activity attempt and HeyGen request (off for the memory hold, which only needs RSS). */
  record: z.boolean(),
});
export type WorkerStart = z.infer<typeof workerStartSchema>;

export const parentMessageSchema = z.discriminatedUnion('type', [
  workerStartSchema,
  z.strictObject({ type: z.literal('stop') }),
]);
export type ParentMessage = z.infer<typeof parentMessageSchema>;

/** One activity execution: the highest attempt number the worker ran for it. */
export const attemptRecordSchema = z.tuple([
  z.string(), // workflowId
  z.string(), // runId
  z.string(), // activityId
  z.string(), // activityType
  z.number(), // highest attempt
]);
export type AttemptRecord = z.infer<typeof attemptRecordSchema>;

/** One HeyGen request as the client sent it: what the worker did, seen from inside the HeyGen client. */
export const requestRecordSchema = z.tuple([
  z.number(), // sent at (epoch ms, sub-millisecond precision)
  z.number(), // response headers received at (epoch ms, sub-millisecond precision)
  z.number(), // HTTP status, 0 for a transport error
  z.string().nullable(), // Retry-After header
  z.string(), // method
  z.string(), // path
]);
export type RequestRecord = z.infer<typeof requestRecordSchema>;

export const childMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ready') }),
  z.strictObject({ type: z.literal('memory'), at: z.number(), rss: z.number(), heapUsed: z.number() }),
  z.strictObject({
    type: z.literal('report'),
    attempts: z.array(attemptRecordSchema),
    requests: z.array(requestRecordSchema),
    peakRss: z.number(),
  }),
  z.strictObject({ type: z.literal('failed'), message: z.string() }),
]);
export type ChildMessage = z.infer<typeof childMessageSchema>;
