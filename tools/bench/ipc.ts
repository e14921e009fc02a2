/** Messages between the benchmark and its worker child processes (validated with zod on both sides). */
import { z } from 'zod';

/** The product: `runWorker` from dist/, configured through the child's environment, as deployed. */
export const productStartSchema = z.strictObject({
  type: z.literal('start'),
  system: z.literal('product'),
  /** Only requests to here are recorded (HEYGEN_BASE_URL). */
  heygenUrl: z.string(),
  /** Record every activity attempt and HeyGen request. */
  record: z.boolean(),
});

/** The control and the baseline: a plain Worker with their own workflow bundle. */
export const loopStartSchema = z.strictObject({
  type: z.literal('start'),
  system: z.enum(['control', 'baseline']),
  temporalAddress: z.string(),
  namespace: z.string(),
  taskQueue: z.string(),
  bundlePath: z.string(),
  heygenUrl: z.string(),
  heygenApiKey: z.string(),
  smtpUrl: z.string(),
  emailFrom: z.string(),
  record: z.boolean(),
});

export const workerStartSchema = z.union([productStartSchema, loopStartSchema]);
export type WorkerStart = z.infer<typeof workerStartSchema>;
export type LoopStart = z.infer<typeof loopStartSchema>;

export const parentMessageSchema = z.union([workerStartSchema, z.strictObject({ type: z.literal('stop') })]);
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

/**
 * One HeyGen request as the client sent it. Times are on the host's monotonic clock (ms, with
 * fractions), which every process of the host shares: one worker's 429 and another's next request
 * compare exactly.
 */
export const requestRecordSchema = z.tuple([
  z.number(), // fetch called
  z.number(), // response headers received
  z.number().nullable(), // a 429's body read (the client closes its gate right after); null otherwise
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
    /** When this process closed the shared HeyGen queue (QueueGate), on the monotonic clock. */
    queueClosedAt: z.array(z.number()),
    peakRss: z.number(),
  }),
  z.strictObject({ type: z.literal('failed'), message: z.string() }),
]);
export type ChildMessage = z.infer<typeof childMessageSchema>;
