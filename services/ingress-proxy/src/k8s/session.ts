import { randomUUID } from 'node:crypto';
import type { Bus } from '../../../../core/src/bus/bus.js';
import { withLease } from '../../../../core/src/bus/leases.js';
import type { Logger } from '../../../../core/src/log.js';
import { normaliseTraceParent } from '../../../../core/src/tracing/traceparent.js';
import { nowMicros, type Command, type Identity } from '../../../../schemas/src/events.js';
import { SessionEvents } from '../session-events.js';

/**
 * The audit session of one client connection and one identity. HTTP has no login: the first
 * request with a valid token opens the session; a later request on the same connection with a
 * token for another subject closes it and opens another. The connection's end closes it.
 */
interface KubeSessionOptions {
  token: string;
  identity: Identity;
  /** Seconds since the epoch after which the token is no longer accepted. */
  expiresAt: number;
  bus: Bus;
  proxyId: string;
  target: string;
  log: Logger;
}

export class KubeSession {
  readonly id = randomUUID();
  readonly events: SessionEvents;
  readonly token: string;
  readonly identity: Identity;
  /** Seconds since the epoch after which the token is no longer accepted. */
  readonly expiresAt: number;
  readonly #bus: Bus;
  readonly #proxyId: string;
  readonly #target: string;
  readonly #startedAt = nowMicros();
  #sequence = 0;
  #closed = false;

  constructor(options: KubeSessionOptions) {
    this.token = options.token;
    this.identity = options.identity;
    this.expiresAt = options.expiresAt;
    this.#bus = options.bus;
    this.#proxyId = options.proxyId;
    this.#target = options.target;
    this.events = new SessionEvents(options.bus, options.log);
  }

  /** Records the session's start; rejects when it cannot be recorded (the request is then refused). */
  open(clientAddress: string, attributes: Record<string, string>): Promise<void> {
    return this.events.emit({
      type: 'SessionOpened', event_id: randomUUID(), time: nowMicros(), session_id: this.id, proxy_id: this.#proxyId,
      protocol: 'kubernetes', target: this.#target, client_address: clientAddress, identity: this.identity, attributes: withLease(attributes, this.#bus),
    });
  }

  /** `traceParent`: the client's W3C trace context (its `traceparent` header), carried on only when valid. */
  command(text: string, parameters: (string | null)[], attributes: Record<string, string>, traceParent?: string | string[]): Command {
    return {
      type: 'Command', event_id: randomUUID(), time: nowMicros(), session_id: this.id, proxy_id: this.#proxyId, sequence: ++this.#sequence,
      protocol: 'kubernetes', target: this.#target, identity: this.identity, text, parameters, attributes,
      // Repeated headers arrive joined by ", ", which no valid value matches: no trace context then.
      trace_parent: typeof traceParent === 'string' ? normaliseTraceParent(traceParent) : null,
    };
  }

  async close(reason: string): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.events.emitLogged({ type: 'SessionClosed', event_id: randomUUID(), time: nowMicros(), session_id: this.id, reason, commands: this.#sequence, duration_us: nowMicros() - this.#startedAt });
    await this.events.drained();
  }
}
