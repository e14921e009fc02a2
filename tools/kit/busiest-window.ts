/**
 * The most arrivals within any window of `windowMs` that starts at an arrival ([at, at + windowMs)):
 * a sliding window, so no clock boundary hides a burst. `at` is where that window starts (null when
 * there are no arrivals). The bench's and the chaos run's rate figures both come from here.
 */
export function busiestWindow(
  arrivals: readonly number[],
  windowMs: number,
): { count: number; at: number | null } {
  const sorted = [...arrivals].sort((a, b) => a - b);
  let best: { count: number; at: number | null } = { count: 0, at: null };
  let end = 0;
  for (let start = 0; start < sorted.length; start++) {
    while (end < sorted.length && sorted[end]! < sorted[start]! + windowMs) end++;
    if (end - start > best.count) best = { count: end - start, at: sorted[start]! };
  }
  return best;
}
