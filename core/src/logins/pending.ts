import type { LoginThrottle } from './throttle.js';

/** Why a connection was closed before it logged in. */
export type Abandoned = 'timeout' | 'evicted';

interface PendingOptions {
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
  #progressed = false;

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

  /** The client has started to log in (a startup packet, a version line, a TLS handshake, a request). */
  progressed(): void {
    this.#progressed = true;
  }

  get hasProgressed(): boolean {
    return this.#progressed;
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
 * Each must log in within `timeoutMs`. When the cap is reached a newcomer is still admitted and
 * a pending connection is closed for it: a silent one first, from the address holding the most
 * slots (so a flood evicts itself, and a client already logging in keeps its slot).
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

  /**
   * The oldest silent connection (nothing sent yet) of the busiest address that has one; only
   * when none is silent, the oldest of the busiest address. A client in the middle of logging in
   * is never closed for a flood of idle sockets, even from its own address.
   */
  #evictOne(): void {
    let silent: PendingLogin | undefined;
    let silentFrom = -1;
    let busiest: Set<PendingLogin> | undefined;
    for (const set of this.#by.values()) {
      if (busiest === undefined || set.size > busiest.size) busiest = set;
      if (set.size <= silentFrom) continue;
      for (const login of set) {
        if (login.hasProgressed) continue;
        silent = login;
        silentFrom = set.size;
        break;
      }
    }
    const victim = silent ?? busiest?.values().next().value;
    if (victim !== undefined) this.#abandon(victim, 'evicted');
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
