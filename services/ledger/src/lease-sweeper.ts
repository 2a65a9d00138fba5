import { createHash } from 'node:crypto';
import type { Bus } from '../../../core/src/bus/bus.js';
import { LEASE_ATTRIBUTE, LEASE_EXPIRED_REASON, type ProxyLeases } from '../../../core/src/bus/leases.js';
import { describeError } from '../../../core/src/errors.js';
import type { Logger } from '../../../core/src/log.js';
import type { Store } from '../../../core/src/store/store.js';
import { nowMicros, type SessionClosed } from '../../../schemas/src/events.js';

interface LeaseSweeperOptions {
  leases: ProxyLeases;
  bus: Bus;
  store: Store;
  logger: Logger;
  /** How long a lease must stay vacant, seen so on every look, before it counts as expired. */
  expiryMs: number;
  /** How often leases are looked at. */
  everyMs: number;
}

interface OpenSession {
  session_id: string;
  opened_us: string;
  commands: string;
}

/**
 * Closes the sessions of proxies that died. The ledger owns this because it alone knows which
 * sessions are open (a SessionOpened without a SessionClosed in the store) and it writes the
 * record; policy has no store to ask. A lease vacant on every look for `expiryMs` has expired:
 * each of its open sessions gets a SessionClosed with the reason `proxy lease expired`, and once
 * the store shows none open the lease is released (its Kafka group deleted).
 *
 * The same clock deletes the other groups a process holds alone (a proxy's termination
 * requests, a query process's session ends; PROCESS_GROUPS): a process that stops cleanly
 * deletes its own, one that died leaves them, and each would stay on the brokers for good.
 *
 * Every ledger instance sweeps; their SessionClosed events share an id derived from the session,
 * so the chain records one (the ledger drops a repeated event id). A look that fails (the broker
 * away) restarts every clock: a lease is only judged while the backbone can be asked.
 */
export class LeaseSweeper {
  /** Lease → when it was first seen vacant, in an unbroken run of looks. */
  readonly #vacantSince = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<void> = Promise.resolve();

  constructor(private readonly options: LeaseSweeperOptions) {}

  start(): void {
    this.#timer = setInterval(() => {
      this.#sweeping = this.#sweeping.then(() => this.sweep()).catch((err: unknown) => {
        this.#vacantSince.clear();
        this.options.logger.warn('cannot look at proxy leases; trying again', { error: describeError(err) });
      });
    }, this.options.everyMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#sweeping;
  }

  /**
   * One look: expired leases get their sessions closed, or are released when none is open;
   * expired per-process groups are deleted.
   */
  async sweep(now = Date.now()): Promise<void> {
    const { leases, logger } = this.options;
    const vacant = new Set(await leases.vacantLeases());
    const groups = new Set(await leases.vacantProcessGroups());
    for (const g of this.#vacantSince.keys()) if (!vacant.has(g) && !groups.has(g)) this.#vacantSince.delete(g);
    for (const group of groups) {
      if (!this.#expired(group, now)) continue;
      await leases.releaseLease(group);
      this.#vacantSince.delete(group);
      logger.info('deleted the consumer group of a process that is gone', { group });
    }
    for (const lease of vacant) {
      if (!this.#expired(lease, now)) continue;
      const since = this.#vacantSince.get(lease)!;
      const open = await this.#openSessions(lease);
      if (open.length === 0) {
        await leases.releaseLease(lease);
        this.#vacantSince.delete(lease);
        logger.info('released the lease of a proxy that is gone', { lease });
        continue;
      }
      for (const s of open) await this.options.bus.publish(closing(s));
      logger.warn('closed the open sessions of a proxy whose lease expired', { lease, sessions: open.length, vacant_ms: now - since });
    }
  }

  /** Whether a vacant group has been seen so on every look for `expiryMs`; starts its clock when first seen. */
  #expired(group: string, now: number): boolean {
    const since = this.#vacantSince.get(group) ?? now;
    this.#vacantSince.set(group, since);
    return now - since >= this.options.expiryMs;
  }

  /** The lease's sessions with no SessionClosed in the store yet. */
  #openSessions(lease: string): Promise<OpenSession[]> {
    return this.options.store.query<OpenSession>(
      `SELECT session_id, toString(toUnixTimestamp64Micro(min(time))) AS opened_us, toString(countIf(event_type = 'Command')) AS commands
       FROM agate.ledger
       WHERE session_id IN (SELECT session_id FROM agate.ledger WHERE event_type = 'SessionOpened' AND JSONExtractString(body, 'attributes', {attr:String}) = {lease:String})
       GROUP BY session_id HAVING countIf(event_type = 'SessionClosed') = 0 ORDER BY session_id`,
      { attr: LEASE_ATTRIBUTE, lease },
    );
  }
}

function closing(s: OpenSession): SessionClosed {
  const time = nowMicros();
  return {
    type: 'SessionClosed', event_id: leaseCloseId(s.session_id), time, session_id: s.session_id,
    reason: LEASE_EXPIRED_REASON, commands: Number(s.commands), duration_us: Math.max(0, time - Number(s.opened_us)),
  };
}

/** The same UUID-shaped id for a session's lease-expiry close, whichever ledger instance writes it. */
export function leaseCloseId(sessionId: string): string {
  const h = createHash('sha256').update(`agate lease-expired close\0${sessionId}`).digest('hex');
  // Version 8 (custom) and the RFC 4122 variant, so it reads as any other event id.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
