/** A live proxy session as an administrator can end it. */
export interface LiveSession {
  readonly id: string;
  /** Closes the session from the proxy's side, telling the client why; SessionClosed records `reason`. */
  terminate(reason: string): void;
  /** Resolves once the session's end is recorded (SessionClosed durable on the bus). */
  readonly finished: Promise<void>;
}

/** A proxy server's live sessions by id. */
interface SessionHolder {
  find(sessionId: string): LiveSession | undefined;
}

/** The reason SessionClosed records for an administrator's termination: who asked, and why. */
export function terminationReason(by: { issuer: string; subject: string }, reason: string): string {
  return `terminated by administrator ${by.subject} (${by.issuer}): ${reason}`;
}

type TerminateOutcome = { kind: 'terminated'; reason: string } | { kind: 'not-found' } | { kind: 'timeout'; reason: string };

/**
 * The live sessions of the proxies in this process, for the query API's terminate route. A
 * session is ended by the proxy that holds it, which records SessionClosed with the reason
 * (who asked, and why) before the answer goes back: an answer of `terminated` means the end is
 * in the record.
 */
export class LiveSessions {
  readonly #holders: SessionHolder[] = [];

  add(holder: SessionHolder): void {
    this.#holders.push(holder);
  }

  async terminate(sessionId: string, reason: string, timeoutMs = 10_000): Promise<TerminateOutcome> {
    const session = this.#holders.map((h) => h.find(sessionId)).find((s) => s !== undefined);
    if (session === undefined) return { kind: 'not-found' };
    session.terminate(reason);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
    const ended = await Promise.race([session.finished.then(() => 'ended' as const), late]);
    clearTimeout(timer);
    return ended === 'ended' ? { kind: 'terminated', reason } : { kind: 'timeout', reason };
  }
}
