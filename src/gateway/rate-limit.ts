/**
 * Per-client request limit for the gateway: a token bucket per client address.
 *
 * A person needs a handful of requests (the return link, the thank-you page, a favicon); a client
 * that sends more than the burst and keeps going faster than the sustained rate gets 429 until its
 * bucket refills. This stops one client from flooding the gateway (and, through it, the logs and
 * Temporal); many clients at once need a limit upstream (load balancer, CDN, WAF).
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP, isIPv4 } from 'node:net';

export interface RateLimitOptions {
  /** Sustained requests per minute per client. */
  perMinute: number;
  /** Requests a client may make in a row before the sustained rate applies (at least 1). */
  burst: number;
  /** Clients remembered at most; the least recently seen is forgotten first. Default 10 000. */
  maxClients?: number;
  now?: () => number;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterMs: number };

interface Bucket {
  tokens: number;
  at: number;
}

export class ClientRateLimiter {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #maxClients: number;
  readonly #now: () => number;
  /** Insertion order is recency order: every take() moves its client to the end. */
  readonly #buckets = new Map<string, Bucket>();

  constructor(options: RateLimitOptions) {
    if (!(options.perMinute > 0) || !(options.burst >= 1)) {
      throw new RangeError('A rate limit needs perMinute > 0 and burst >= 1');
    }
    this.#perMs = options.perMinute / 60_000;
    this.#burst = Math.floor(options.burst);
    this.#maxClients = options.maxClients ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** Takes one request from `client`'s bucket, or says how long until it may try again. */
  take(client: string): RateDecision {
    const now = this.#now();
    const previous = this.#buckets.get(client);
    this.#buckets.delete(client);
    // A clock that steps back refills nothing (and takes nothing away).
    const elapsed = previous ? Math.max(0, now - previous.at) : 0;
    const tokens = previous ? Math.min(this.#burst, previous.tokens + elapsed * this.#perMs) : this.#burst;
    const allowed = tokens >= 1;
    this.#buckets.set(client, { tokens: allowed ? tokens - 1 : tokens, at: now });
    if (this.#buckets.size > this.#maxClients) {
      // Forgetting a client only ever gives it a full bucket again: never a wrong refusal.
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
    if (allowed) return { allowed: true };
    return { allowed: false, retryAfterMs: Math.ceil((1 - tokens) / this.#perMs) };
  }

  /** Clients currently remembered (for tests). */
  get size(): number {
    return this.#buckets.size;
  }
}

// ---------------------------------------------------------------------------------------------
// Who is the client?
// ---------------------------------------------------------------------------------------------

/**
 * The address to limit by. Without trusted proxies (the default) it is the socket's peer:
 * X-Forwarded-For is ignored, since anyone can send it. With `trustedProxies` = n, the n proxies
 * in front each append the address they saw, so the client is the n-th entry from the right; the
 * entries left of it are whatever the client wrote, and are never used.
 */
export function clientAddress(req: IncomingMessage, trustedProxies: number): string {
  const peer = req.socket.remoteAddress ?? 'unknown';
  if (trustedProxies <= 0) return clientKey(peer);
  const header = req.headers['x-forwarded-for'];
  const forwarded = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  const chain = [...forwarded, peer];
  // Fewer entries than proxies: the request skipped a proxy, so the leftmost entry is the nearest
  // one a trusted proxy wrote.
  const picked = chain[Math.max(0, chain.length - 1 - trustedProxies)]!;
  const address = withoutPort(picked);
  // A trusted proxy writes addresses; anything else means a misconfiguration: fall back to the peer.
  return clientKey(isIP(address) ? address : peer);
}

/** "1.2.3.4:5678" → "1.2.3.4", "[2001:db8::1]:443" → "2001:db8::1". */
function withoutPort(entry: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(entry);
  if (bracketed) return bracketed[1]!;
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(entry);
  return v4WithPort ? v4WithPort[1]! : entry;
}

/**
 * The bucket key for an address: IPv4 as is (also when written IPv4-mapped, ::ffff:1.2.3.4), IPv6
 * by its /64 prefix, since one subscriber usually holds a whole /64 and could otherwise take a new
 * address, and a fresh bucket, for every request.
 */
export function clientKey(address: string): string {
  const plain = address.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(plain);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  if (isIP(plain) !== 6) return plain;
  const groups = expandIPv6(plain);
  return groups ? `${groups.slice(0, 4).join(':')}::/64` : plain;
}

/** Eight 16-bit groups (lowercase hex, no leading zeros), or undefined if not an IPv6 address. */
function expandIPv6(address: string): string[] | undefined {
  let text = address.toLowerCase();
  // An embedded IPv4 tail (::1.2.3.4) becomes two hex groups.
  const v4 = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  return groups.map((group) => parseInt(group, 16).toString(16));
}

/**
 * A per-process, non-reversible tag for a client key: lets an operator see that refusals come from
 * one client without the logs holding its address (personal data). The salt changes with every
 * start, so the tag cannot be looked up in a table of all IPv4 addresses.
 */
export function clientFingerprinter(): (key: string) => string {
  const salt = randomBytes(16);
  return (key) => createHmac('sha256', salt).update(key, 'utf8').digest('hex').slice(0, 12);
}
