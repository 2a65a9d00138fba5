import type { Bus } from './bus.js';

/**
 * The SessionOpened attribute naming the lease of the proxy process that holds the session: how
 * the sessions of a proxy that died are found again, exactly, even when another process runs
 * under the same instance_id.
 */
export const LEASE_ATTRIBUTE = 'proxy_lease';

/** The reason recorded in the SessionClosed of a session whose proxy's lease expired. */
export const LEASE_EXPIRED_REASON = 'proxy lease expired';

/**
 * The backbone's view of proxies' leases. On Kafka a proxy holds its lease by being a member of
 * its own verdict consumer group (a heartbeat every second; the broker drops a member silent for
 * its 10 s session timeout), so a group with no member is a proxy no longer alive.
 */
export interface ProxyLeases {
  /** Leases of this deployment's proxies whose holder is not alive now. */
  vacantLeases(): Promise<string[]>;
  /** Forgets a vacant lease for good (on Kafka: deletes the group). */
  releaseLease(lease: string): Promise<void>;
}

/**
 * A session's attributes with the lease of `bus`'s process, when it holds one. Set last, so a
 * client's own attribute of that name (a PostgreSQL startup parameter) cannot stand in for it.
 */
export function withLease(attributes: Record<string, string>, bus: Bus): Record<string, string> {
  return bus.lease === undefined ? attributes : { ...attributes, [LEASE_ATTRIBUTE]: bus.lease };
}
