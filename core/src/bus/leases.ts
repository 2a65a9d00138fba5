import type { Bus } from './bus.js';

/**
 * The SessionOpened attribute naming the lease of the proxy process that holds the session: how
 * the sessions of a proxy that died are found again, exactly, even when another process runs
 * under the same instance_id.
 */
export const LEASE_ATTRIBUTE = 'proxy_lease';

/**
 * The consumer groups a process may hold alone (SubscribeOptions.perProcess), besides its verdict
 * group: listed here so that the ledger, which holds none, can find the ones of processes that died.
 * A proxy's `terminations` subscription now rides its verdict group and creates none; the name
 * stays so that the groups proxies of earlier versions left behind are still swept.
 */
export const PROCESS_GROUPS = ['terminations', 'session-ends'] as const;

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
  /**
   * Per-process consumer groups other than leases (SubscribeOptions.perProcess: a proxy's
   * termination requests, a query process's session ends) that have no member now.
   */
  vacantProcessGroups(): Promise<string[]>;
  /** Forgets a vacant lease or per-process group for good (on Kafka: deletes the group). */
  releaseLease(lease: string): Promise<void>;
}

/**
 * A session's attributes with the lease of `bus`'s process, when it holds one. Set last, so a
 * client's own attribute of that name (a PostgreSQL startup parameter) cannot stand in for it.
 */
export function withLease(attributes: Record<string, string>, bus: Bus): Record<string, string> {
  return bus.lease === undefined ? attributes : { ...attributes, [LEASE_ATTRIBUTE]: bus.lease };
}
