/**
 * A worker process in miniature, for the rate gate's cross-process test: closes the shared gate
 * 2,000 times on a fixed clock with ever longer durations, and after each closure checks that the
 * file holds at least its own deadline (another process must never shorten it). Prints
 * {"largest": <longest duration asked>, "shortened": <times the file held less than ours>}.
 */
import { readFileSync } from 'node:fs';
import { RateGate } from '../../src/heygen/rate-gate.js';

const [path, seedText, startAtText] = process.argv.slice(2);
let seed = Number(seedText);
const next = () => {
  // xorshift: reproducible per process, different between processes.
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
};
const NOW = 1_000;
const gate = new RateGate({
  now: () => NOW,
  wallNow: () => 1_700_000_000_000,
  bootId: 'test',
  persistPath: path!,
});
// Start together, so that the processes' updates really interleave.
while (Date.now() < Number(startAtText)) {
  // busy-wait until the common start
}
let largest = 0;
let shortened = 0;
for (let i = 0; i < 2000; i++) {
  const ms = i * 8 + (next() % 8) + 1;
  largest = Math.max(largest, ms);
  gate.closeFor(ms);
  const held = (JSON.parse(readFileSync(path!, 'utf8')) as { monotonicUntil: number }).monotonicUntil;
  if (held < NOW + largest) shortened += 1;
}
console.log(JSON.stringify({ largest, shortened }));
