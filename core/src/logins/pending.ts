import type { LoginThrottle } from './throttle.js';

/** Why a connection was closed before it logged in. */
export type Abandoned = 'timeout' | 'evicted';

export interface PendingOptions {
  /** A connection must log in within this time (PostgreSQL's `authentication_timeout`). */
  timeoutMs: number;
  /** Connections of one listener still logging in; past it one of them is closed to make room. */
  maxPending: number;
}

/**
 * One connection that has not logged in yet. Whoever owns the connection at the time sets
 * `onAbandon` (the listener before its session exists, the session after) and calls `done()`
 * once the login succeeded or the connection closed.
 */
export class PendingLogin {
  onAbandon: (why: Abandoned) => void;
  #timer: NodeJS.Timeout | undefined;
  #release: (() => void) | undefined;

  constructor(readonly address: string, onAbandon: (why: Abandoned) => void) {
    this.onAbandon = onAbandon;
  }

  /** @internal started by {@link PendingLogins.admit} */
  start(timeoutMs: number, release: () => void, onTimeout: () => void): void {
    this.#release = release;
    this.#timer = setTimeout(onTimeout, timeoutMs);
    this.#timer.unref();
  }

  get pending(): boolean {
    return this.#release !== undefined;
  }

  /** The login succeeded or the connection is gone: the slot is free again. Idempotent. */
  done(): void {
    clearTimeout(this.#timer);
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }
}

/**
 * The connections of one listener that have not logged in, capped apart from authenticated
 * sessions so that idle or slow unauthenticated sockets can never starve authenticated work.
 * Each must log in within `timeoutMs`. When the cap is reached a newcomer is still admitted:
 * the oldest pending connection of the address holding the most pending slots is closed for it
 * (so a flood from one address evicts itself, and a client from elsewhere always gets a slot).
 */
export class PendingLogins {
  /** Per address, in arrival order. */
  readonly #by = new Map<string, Set<PendingLogin>>();
  #size = 0;

  constructor(readonly options: PendingOptions) {}

  get size(): number {
    return this.#size;
  }

  admit(address: string, onAbandon: (why: Abandoned) => void): PendingLogin {
    if (this.#size >= this.options.maxPending) this.#evictOne();
    const login = new PendingLogin(address, onAbandon);
    let set = this.#by.get(address);
    if (set === undefined) this.#by.set(address, (set = new Set()));
    set.add(login);
    this.#size += 1;
    login.start(this.options.timeoutMs, () => this.#remove(login), () => this.#abandon(login, 'timeout'));
    return login;
  }

  #evictOne(): void {
    let busiest: Set<PendingLogin> | undefined;
    for (const set of this.#by.values()) if (busiest === undefined || set.size > busiest.size) busiest = set;
    const oldest = busiest?.values().next().value;
    if (oldest !== undefined) this.#abandon(oldest, 'evicted');
  }

  #abandon(login: PendingLogin, why: Abandoned): void {
    login.done();
    login.onAbandon(why);
  }

  #remove(login: PendingLogin): void {
    const set = this.#by.get(login.address);
    if (set === undefined || !set.delete(login)) return;
    this.#size -= 1;
    if (set.size === 0) this.#by.delete(login.address);
  }
}

/** The two halves every listener uses: its own pending set and the process's shared throttle. */
export interface LoginGuard {
  pending: PendingLogins;
  throttle: LoginThrottle;
}

/** Text for a record or a client: why the connection was closed before it logged in. */
export function abandonedMessage(why: Abandoned, options: PendingOptions): string {
  return why === 'timeout'
    ? `no login within ${options.timeoutMs} ms (logins.timeout_ms); the connection was closed`
    : `too many connections waiting to log in (logins.max_pending: ${options.maxPending}); this one, from the address holding the most, was closed to make room`;
}
