/**
 * The Retry-After gate that every worker obeys, on every host: the HeyGen task queue's server-side
 * rate limit (what `temporal task-queue config set --queue-rps-limit` sets). After a 429, a worker
 * sets it to 0 until Retry-After has passed, so the Temporal server dispatches no HeyGen activity
 * to anyone; then it restores what was there. No database beyond Temporal itself.
 *
 * The closure is written into the limit's reason (`avatar-consent: HeyGen Retry-After until <ISO>,
 * was <rps|unset>`), so any worker can reopen a closure whose worker died, and a later 429 is never
 * shortened by an earlier one's reopening. Each process also keeps its own RateGate (src/heygen):
 * this gate adds the hosts; it does not replace the in-process one.
 */
import type { NativeConnection } from '@temporalio/worker';
import proto from '@temporalio/proto';

const ACTIVITY_QUEUE = proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY;
const REASON_PREFIX = 'avatar-consent: HeyGen Retry-After until ';
const REASON = /^avatar-consent: HeyGen Retry-After until (\S+), was (unset|[0-9.]+)$/;
/** How often a worker looks for a closure whose deadline passed (its closer may have died). */
const SWEEP_MS = 15_000;

export interface QueueGateLog {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
}

export interface QueueGateOptions {
  connection: Pick<NativeConnection, 'workflowService'>;
  namespace: string;
  /** The HeyGen task queue. */
  taskQueue: string;
  log: QueueGateLog;
  identity?: string;
  now?: () => number;
}

interface Closure {
  untilMs: number;
  /** The limit to restore; null: none was set through the API. */
  was: number | null;
}

function parseClosure(reason: string | null | undefined): Closure | null {
  const match = REASON.exec(reason ?? '');
  if (!match) return null;
  const untilMs = Date.parse(match[1]!);
  if (!Number.isFinite(untilMs)) return null;
  return { untilMs, was: match[2] === 'unset' ? null : Number(match[2]) };
}

export class QueueGate {
  readonly #o: Required<Omit<QueueGateOptions, 'identity'>> & { identity: string };
  #timer: NodeJS.Timeout | null = null;
  #sweeper: NodeJS.Timeout | null = null;
  #failing = false;
  /** Serialises this process's updates, so its own close and reopen never cross. */
  #queue: Promise<void> = Promise.resolve();

  constructor(options: QueueGateOptions) {
    this.#o = { now: Date.now, identity: 'avatar-consent-worker', ...options };
  }

  /** Starts looking for stale closures (at once, then every SWEEP_MS). */
  start(): void {
    void this.sweep();
    this.#sweeper = setInterval(() => void this.sweep(), SWEEP_MS);
    this.#sweeper.unref();
  }

  /** Reopens the queue if a closure's deadline has passed (whoever closed it). */
  sweep(): Promise<void> {
    return this.#serial(() => this.#reopenIfDue());
  }

  stop(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    if (this.#timer) clearTimeout(this.#timer);
    this.#sweeper = this.#timer = null;
  }

  /** Closes the queue for every worker until `retryAfterMs` from now (never earlier than a closure in place). */
  close(retryAfterMs: number): Promise<void> {
    return this.#serial(async () => {
      const untilMs = this.#o.now() + retryAfterMs;
      const current = await this.#config();
      if (current === undefined) return;
      const closure = parseClosure(current.reason);
      if (closure && closure.untilMs >= untilMs) {
        this.#reopenAt(closure.untilMs);
        return;
      }
      // The limit to restore is the one in place before any of our closures.
      const was = closure ? closure.was : current.rps;
      const ok = await this.#update(
        0,
        `${REASON_PREFIX}${new Date(untilMs).toISOString()}, was ${was ?? 'unset'}`,
      );
      if (ok) {
        this.#o.log.info('HeyGen task queue closed for every worker', {
          until: new Date(untilMs).toISOString(),
        });
        this.#reopenAt(untilMs);
      }
    });
  }

  #reopenAt(untilMs: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(
      () => void this.#serial(() => this.#reopenIfDue()),
      Math.max(0, untilMs - this.#o.now()),
    );
    this.#timer.unref();
  }

  /** Restores the limit when our closure's deadline has passed (whoever closed it). */
  async #reopenIfDue(): Promise<void> {
    const current = await this.#config();
    const closure = parseClosure(current?.reason);
    if (!closure) return;
    if (closure.untilMs > this.#o.now()) {
      this.#reopenAt(closure.untilMs);
      return;
    }
    if (await this.#update(closure.was, 'avatar-consent: HeyGen Retry-After passed')) {
      this.#o.log.info('HeyGen task queue reopened', { rps: closure.was ?? 'unset' });
    }
  }

  /** The queue's API rate limit and its reason; undefined when Temporal cannot be asked. */
  async #config(): Promise<{ rps: number | null; reason: string | null } | undefined> {
    try {
      const response = await this.#o.connection.workflowService.describeTaskQueue({
        namespace: this.#o.namespace,
        taskQueue: { name: this.#o.taskQueue },
        taskQueueType: ACTIVITY_QUEUE,
        reportConfig: true,
      });
      const limit = response.config?.queueRateLimit;
      this.#recovered();
      return {
        rps: limit?.rateLimit ? (limit.rateLimit.requestsPerSecond ?? 0) : null,
        reason: limit?.metadata?.reason ?? null,
      };
    } catch (err) {
      this.#failed('could not read the HeyGen task queue config', err);
      return undefined;
    }
  }

  async #update(rps: number | null, reason: string): Promise<boolean> {
    try {
      await this.#o.connection.workflowService.updateTaskQueueConfig({
        namespace: this.#o.namespace,
        identity: this.#o.identity,
        taskQueue: this.#o.taskQueue,
        taskQueueType: ACTIVITY_QUEUE,
        updateQueueRateLimit: { rateLimit: rps === null ? null : { requestsPerSecond: rps }, reason },
      });
      this.#recovered();
      return true;
    } catch (err) {
      this.#failed('could not update the HeyGen task queue config', err);
      return false;
    }
  }

  /** Reported once while it lasts: each process's own gate still holds Retry-After meanwhile. */
  #failed(what: string, err: unknown): void {
    if (this.#failing) return;
    this.#failing = true;
    this.#o.log.warn(`${what}; Retry-After holds per worker process only`, {
      error: err instanceof Error ? err.message : String(err),
      hint: 'the worker needs permission to update task queue config (UpdateTaskQueueConfig)',
    });
  }

  #recovered(): void {
    this.#failing = false;
  }

  #serial(step: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(step, step);
    this.#queue = next.catch(() => undefined);
    return next;
  }
}
