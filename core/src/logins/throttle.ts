interface ThrottleOptions {
  /** Failed logins from one address within `windowMs` that start a block; 0 turns throttling off. */
  maxFailures: number;
  windowMs: number;
  /** The first block; each further block of the same address doubles it, up to `maxBlockMs`. */
  blockMs: number;
  maxBlockMs: number;
}

/** What a listener does with a new login attempt from an address. */
type ThrottleCheck =
  | { kind: 'open' }
  /** `record`: true for the first refusal of this block only, so a flood adds one record per block. */
  | { kind: 'blocked'; retryAfterMs: number; record: boolean; failures: number; blockMs: number };

interface Entry {
  /** Times of the latest failures, oldest first, at most `maxFailures`. */
  failures: number[];
  blockedUntil: number;
  blockMs: number;
  /** Blocks so far; reset after a quiet `maxBlockMs`. */
  blocks: number;
  refusalRecorded: boolean;
}

/** Addresses remembered at once; the quietest are forgotten first beyond it. */
const MAX_ADDRESSES = 100_000;

/**
 * Failed logins per source address, with exponential backoff: after `maxFailures` failures
 * within `windowMs` the address is refused for `blockMs`, twice as long for the next block, and
 * so on. One throttle is shared by every listener of a process (one attacker, one count).
 * A success does not clear the count: one valid token must not reset a guessing run.
 */
export class LoginThrottle {
  readonly #by = new Map<string, Entry>();

  readonly #options: ThrottleOptions;

  constructor(options: ThrottleOptions) {
    this.#options = options;
  }

  get windowMs(): number {
    return this.#options.windowMs;
  }

  check(address: string, now = Date.now()): ThrottleCheck {
    const e = this.#by.get(address);
    if (e === undefined || e.blockedUntil <= now) return { kind: 'open' };
    const record = !e.refusalRecorded;
    e.refusalRecorded = true;
    return { kind: 'blocked', retryAfterMs: e.blockedUntil - now, record, failures: this.#options.maxFailures, blockMs: e.blockMs };
  }

  /** Counts a failed login; true when it starts a block. */
  failed(address: string, now = Date.now()): boolean {
    const { maxFailures, windowMs, blockMs, maxBlockMs } = this.#options;
    if (maxFailures === 0) return false;
    let e = this.#by.get(address);
    if (e === undefined) {
      this.#makeRoom(now);
      e = { failures: [], blockedUntil: 0, blockMs: 0, blocks: 0, refusalRecorded: false };
      this.#by.set(address, e);
    }
    const last = e.failures.at(-1) ?? 0;
    if (e.blocks > 0 && now - Math.max(last, e.blockedUntil) > maxBlockMs) e.blocks = 0;
    e.failures.push(now);
    while (e.failures.length > 0 && (e.failures.length > maxFailures || now - e.failures[0]! > windowMs)) e.failures.shift();
    if (e.failures.length < maxFailures || e.blockedUntil > now) return false;
    // A penalty that doubles per block, not a wait between Agate's own retries (core/src/retry.ts):
    // no jitter, so the refusal can tell the client exactly when it may try again.
    e.blockMs = Math.min(blockMs * 2 ** e.blocks, maxBlockMs);
    e.blocks += 1;
    e.blockedUntil = now + e.blockMs;
    e.refusalRecorded = false;
    e.failures = [];
    return true;
  }

  /** Addresses remembered (tests and metrics). */
  get size(): number {
    return this.#by.size;
  }

  #makeRoom(now: number): void {
    if (this.#by.size < MAX_ADDRESSES) return;
    for (const [address, e] of this.#by) {
      if (e.blockedUntil <= now && (e.failures.at(-1) ?? 0) < now - this.#options.windowMs) this.#by.delete(address);
    }
    // Still full: forget the longest-known addresses (Map order is insertion order).
    for (const address of this.#by.keys()) {
      if (this.#by.size < MAX_ADDRESSES) break;
      this.#by.delete(address);
    }
  }
}

/** The key a throttle counts by: the client's IP, an IPv4-mapped IPv6 address written as IPv4. */
export function sourceAddress(remoteAddress: string | undefined): string {
  if (remoteAddress === undefined) return 'unknown';
  return remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.') ? remoteAddress.slice(7) : remoteAddress;
}

/** Text for a record or a client: why the address is refused, and for how long. */
export function throttledMessage(check: Extract<ThrottleCheck, { kind: 'blocked' }>, windowMs: number): string {
  const retry = Math.ceil(check.retryAfterMs / 1000);
  return `${check.failures} failed logins from this address within ${Math.round(windowMs / 1000)} s; it is refused for ${Math.round(check.blockMs / 1000)} s (try again in ${retry} s); refusals in this period are recorded once`;
}
