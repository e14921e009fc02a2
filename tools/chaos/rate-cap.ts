/**
 * The HeyGen rate cap across every worker (HEYGEN_MAX_RPS, the HeyGen task queue's
 * maxTaskQueueActivitiesPerSecond), as the HeyGen stand-in saw it: requests per second, in sliding
 * windows over the arrival times the recording proxy kept.
 *
 * Temporal hands out activity tasks from a token bucket: R a second, and a full bucket lets about R
 * more go at once; between the hand-out and the request's arrival lies the worker (up to a couple
 * of seconds on a loaded machine). So a single second can see more than 2R (measured: 19 at R = 8),
 * while a longer stretch cannot beat its refill by more than a bucket and that delay: any 10 seconds
 * hold at most 13R, any 60 seconds at most 63R (measured at most 11.6R in 10 s). Three workers each
 * taking the full cap would show 30R in 10 s. The check holds the run to both bounds, and to having
 * met the cap at least once (some
 * second with R requests or more: the bucket ran dry), or it would prove nothing. (How long the run
 * stays at the cap depends on the machine: on a loaded one the workers fall below it.)
 */
import { busiestWindow } from '../kit/busiest-window.js';

export interface RateCapAnalysis {
  cap: number;
  requests: number;
  /** The most requests that arrived within any one second, and when that second began (epoch ms). */
  maxPerSecond: number;
  maxPerSecondAt: number | null;
  /** The most within any ten seconds, divided by ten. */
  maxPerSecondOver10s: number;
  /** Clock seconds that saw more than the cap: the bucket's bursts. */
  secondsOverCap: number;
  /** Most requests in any 10 s and in any 60 s: what the check compares with its bounds. */
  maxIn10s: number;
  maxIn60s: number;
  /** The bounds the check applies (see above). */
  bound10s: number;
  bound60s: number;
  /** Some second saw the cap's worth of requests: the limit was reached at least once. */
  reached: boolean;
  ok: boolean;
}

export function analyzeRateCap(arrivals: readonly number[], cap: number): RateCapAnalysis {
  const times = [...arrivals].sort((a, b) => a - b);
  const second = busiestWindow(times, 1_000);
  const tenSeconds = busiestWindow(times, 10_000);
  const minute = busiestWindow(times, 60_000);
  const perClockSecond = new Map<number, number>();
  for (const t of times)
    perClockSecond.set(Math.floor(t / 1000), (perClockSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
  const bound10s = Math.floor(13 * cap);
  const bound60s = Math.floor(63 * cap);

  return {
    cap,
    requests: times.length,
    maxPerSecond: second.count,
    maxPerSecondAt: second.at,
    maxPerSecondOver10s: Math.round(tenSeconds.count) / 10,
    secondsOverCap: [...perClockSecond.values()].filter((n) => n > cap).length,
    maxIn10s: tenSeconds.count,
    maxIn60s: minute.count,
    bound10s,
    bound60s,
    reached: second.count >= cap,
    ok: tenSeconds.count <= bound10s && minute.count <= bound60s && second.count >= cap,
  };
}
