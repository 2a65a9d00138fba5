import type { Bus, Subscription } from '../../../core/src/bus/bus.js';
import type { Logger } from '../../../core/src/log.js';
import { randomUUID } from 'node:crypto';
import { nowMicros, type Command, type Verdict } from '../../../schemas/src/events.js';
import type { CompiledPolicy } from './engine.js';

export interface PolicyServiceOptions {
  bus: Bus;
  policy: CompiledPolicy;
  logger: Logger;
  /** Commands older than this were already refused by their proxy's deadline: skip them on replay. */
  staleAfterMs: number;
}

/** Consumes command events and publishes a verdict for each. */
export class PolicyService {
  #subscription: Subscription | undefined;

  constructor(private readonly options: PolicyServiceOptions) {}

  async start(): Promise<void> {
    this.#subscription = await this.options.bus.subscribe({
      group: 'policy',
      types: ['Command'],
      handler: async (batch) => {
        // Published together: one group commit for the batch instead of one per verdict.
        const verdicts: Promise<void>[] = [];
        for (const event of batch) if (event.type === 'Command') verdicts.push(this.#decide(event));
        await Promise.all(verdicts);
      },
    });
  }

  async stop(): Promise<void> {
    await this.#subscription?.close();
  }

  async #decide(command: Command): Promise<void> {
    const { bus, policy, logger, staleAfterMs } = this.options;
    if (nowMicros() - command.time > staleAfterMs * 1000) {
      logger.debug('skipping a command past its verdict deadline', { command_id: command.event_id });
      return;
    }
    const d = policy.evaluate(command);
    const verdict: Verdict = {
      type: 'Verdict',
      event_id: randomUUID(),
      time: nowMicros(),
      session_id: command.session_id,
      command_id: command.event_id,
      decision: d.decision,
      rule_id: d.rule_id,
      reason: d.reason,
      source: 'policy',
      policy_revision: policy.revision,
      mask_set: d.mask_set,
    };
    await bus.publish(verdict);
  }
}
