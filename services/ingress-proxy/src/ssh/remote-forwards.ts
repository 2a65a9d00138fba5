import type { Command } from '../../../../schemas/src/events.js';

/** One `ssh -R` listener the target holds for the client. */
export interface RemoteForward {
  /** The address the target was asked to listen on: the client's, in its canonical spelling (tcp-host.ts). */
  bindAddr: string;
  /** The address as the client sent it: the client names the listener so in `forwarded-tcpip`. */
  clientBindAddr: string;
  /** The port the client asked for; 0 lets the target choose. */
  bindPort: number;
  /** The port the target bound. */
  boundPort: number;
  /** The recorded `tcpip-forward` request that opened it. */
  command: Command;
}

/** Listeners one connection may hold on its target at once. */
export const MAX_REMOTE_FORWARDS = 16;

/**
 * The `-R` listeners of one connection. The target names an incoming connection by the bind
 * address it was given and the port it bound; the client cancels one by its address (canonical
 * here) and the port it asked for or, for a port the target chose, by the port it was told.
 */
export class RemoteForwards {
  readonly #forwards: RemoteForward[] = [];
  readonly #limit: number;
  /** Requests still being decided or bound: each holds a place, or requests sent at once would all pass the cap. */
  #pending = 0;

  constructor(limit = MAX_REMOTE_FORWARDS) {
    this.#limit = limit;
  }

  get full(): boolean {
    return this.#forwards.length + this.#pending >= this.#limit;
  }

  /** Holds a place for a request until it is refused or bound; the function returned gives it back (once). */
  reserve(): () => void {
    this.#pending += 1;
    let released = false;
    return () => {
      if (!released) this.#pending -= 1;
      released = true;
    };
  }

  add(forward: RemoteForward): void {
    this.#forwards.push(forward);
  }

  /** The listener an incoming `forwarded-tcpip` connection arrived on. */
  receiving(address: string, port: number): RemoteForward | undefined {
    return this.#forwards.find((f) => f.bindAddr === address && f.boundPort === port);
  }

  /** Removes and returns the listener a `cancel-tcpip-forward` names. */
  take(bindAddr: string, port: number): RemoteForward | undefined {
    const i = this.#forwards.findIndex((f) => f.bindAddr === bindAddr && (f.bindPort === port || f.boundPort === port));
    return i === -1 ? undefined : this.#forwards.splice(i, 1)[0];
  }

  /** Removes and returns every listener (the session is ending). */
  takeAll(): RemoteForward[] {
    return this.#forwards.splice(0);
  }
}
