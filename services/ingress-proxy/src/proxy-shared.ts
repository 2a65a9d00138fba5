import type { Bus } from '../../../core/src/bus/bus.js';
import type { TokenVerifier } from '../../../core/src/identity/oidc.js';
import type { LoginGuard } from '../../../core/src/logins/pending.js';
import type { Logger } from '../../../core/src/log.js';
import type { MaskSets } from './masking/mask-sets.js';

/**
 * What the PostgreSQL, SSH and Kubernetes proxies of one process share, built once at start:
 * each protocol's `fromConfig` adds only what its own config slice says.
 */
export interface ProxyShared {
  bus: Bus;
  verifier: TokenVerifier;
  /** This instance's id, in every event its proxies emit. */
  proxyId: string;
  /** How long a command waits for its verdict before it is refused. */
  verdictTimeoutMs: number;
  logger: Logger;
  /** The mask sets, compiled once for every protocol. */
  masks: MaskSets;
  /** A new guard for one listener: its own pending logins, the process's one throttle. */
  loginGuard(): LoginGuard;
}
