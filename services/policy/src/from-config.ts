import type { Bus } from '../../../core/src/bus/bus.js';
import type { AgateConfig } from '../../../core/src/config.js';
import type { OnStarted } from '../../../core/src/lifecycle.js';
import type { Logger } from '../../../core/src/log.js';
import type { Tracing } from '../../../core/src/tracing/tracing.js';
import type { Store } from '../../../core/src/store/store.js';
import { StoreApprovalHistory } from './approval-history.js';
import { CompiledPolicy } from './engine.js';
import { PolicyReloader } from './reload.js';
import { PolicyService } from './service.js';
import { ApprovalWebhooks } from './webhooks/notifier.js';

/** What the policy service reads from the config. */
type PolicySlice = Pick<AgateConfig, 'source' | 'policy' | 'masking' | 'approvals'> & { proxy: Pick<AgateConfig['proxy'], 'verdict_timeout_ms'> };

interface PolicyShared {
  bus: Bus;
  /** Where open approvals are read back after a restart; a policy process without a store has none. */
  store: Store | undefined;
  logger: Logger;
  /** One process on the local bus: the proxies waiting on holds from before this start are gone. */
  holdsDieWithProcess: boolean;
  onStarted: OnStarted;
  /** Trace export, when configured (telemetry.otlp). */
  tracing?: Tracing;
}

/**
 * Starts the policy service of this config: verdicts, approval webhooks, and the reloader that
 * applies edits of the config file's policy without a restart (a bad edit is refused).
 */
export async function policyFromConfig(config: PolicySlice, shared: PolicyShared): Promise<PolicyService> {
  const logger = shared.logger.child({ component: 'policy' });
  const compiled = new CompiledPolicy(config.policy, config.masking.audit);
  const history = shared.store === undefined ? undefined : new StoreApprovalHistory(shared.store);
  const policy = new PolicyService({ bus: shared.bus, policy: compiled, logger, staleAfterMs: config.proxy.verdict_timeout_ms, history, holdsDieWithProcess: shared.holdsDieWithProcess, tracing: shared.tracing });
  await policy.start();
  shared.onStarted(policy);
  const webhooks = new ApprovalWebhooks({ bus: shared.bus, webhooks: config.approvals.webhooks, logger: logger.child({ component: 'approval-webhooks' }), source: config.source });
  await webhooks.start();
  shared.onStarted(webhooks);
  if (config.policy.reload_ms > 0) {
    const reloader = new PolicyReloader({ path: config.source, apply: (p) => policy.setPolicy(p), logger, intervalMs: config.policy.reload_ms });
    reloader.start(compiled);
    shared.onStarted({ stop: async () => reloader.stop() });
  }
  return policy;
}
