import type { Command, Verdict } from '../../../schemas/src/events.js';
import type { VerdictOutcome, VerdictRequestOptions } from './bus.js';

interface Waiter {
  deliver(verdict: Verdict): void;
}

/**
 * The commands a process waits on, keyed by command id, shared by both bus implementations.
 * A `hold` verdict is not an answer: the waiter reports it through `onHold`, moves its deadline
 * to the hold's expiry plus the normal deadline, and keeps waiting for the final verdict.
 */
export class VerdictWaiters {
  readonly #waiters = new Map<string, Waiter>();

  get size(): number {
    return this.#waiters.size;
  }

  has(commandId: string): boolean {
    return this.#waiters.has(commandId);
  }

  deliver(verdict: Verdict): void {
    this.#waiters.get(verdict.command_id)?.deliver(verdict);
  }

  /**
   * Registers before `publish` runs, so a fast verdict cannot slip past the waiter. A publish
   * that fails before the deadline rejects; one still in flight at the deadline is handed to the
   * caller in the timeout (`published`), which must see the command recorded even if it fails.
   */
  wait(command: Command, deadlineMs: number, options: VerdictRequestOptions, publish: () => Promise<void>): Promise<VerdictOutcome> {
    const id = command.event_id;
    return new Promise((resolve, reject) => {
      let settled = false;
      let published: Promise<void> = Promise.resolve();
      const timeout = () => done({ kind: 'timeout', published });
      let timer = setTimeout(timeout, deadlineMs);
      const done = (outcome: VerdictOutcome) => {
        settled = true;
        clearTimeout(timer);
        this.#waiters.delete(id);
        resolve(outcome);
      };
      this.#waiters.set(id, {
        deliver: (verdict) => {
          if (verdict.decision !== 'hold') return done({ kind: 'verdict', verdict });
          // Without a hold handler, or without an expiry, a hold is final (a refusal).
          if (options.onHold === undefined || verdict.hold_expires_at === null) return done({ kind: 'verdict', verdict });
          clearTimeout(timer);
          const untilExpiry = Math.max(0, (verdict.hold_expires_at - Date.now() * 1000) / 1000);
          timer = setTimeout(timeout, untilExpiry + deadlineMs);
          options.onHold(verdict);
        },
      });
      published = publish();
      published.catch((err: unknown) => {
        if (settled) return; // past the deadline: the timeout carries `published` to the caller
        settled = true;
        clearTimeout(timer);
        this.#waiters.delete(id);
        reject(err);
      });
    });
  }
}
