import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBus } from '../../core/src/bus/local-bus.js';
import type { Subscription } from '../../core/src/bus/bus.js';
import { parseConfig } from '../../core/src/config.js';
import { silentLogger } from '../../core/src/log.js';
import type { AgateEvent } from '../../schemas/src/events.js';
import { CompiledPolicy, loadParsers } from '../../services/policy/src/engine.js';
import { PolicyService } from '../../services/policy/src/service.js';
import { eventsSeen, until } from './until.js';

/**
 * A real in-process bus (LocalBus in a temporary directory) with the real policy service
 * deciding on it, for unit tests of a proxy's decision path without a network. Every event
 * published is kept in `events`, in order.
 */
export class PolicyBus {
  readonly events: AgateEvent[] = [];
  readonly bus: LocalBus;
  readonly #dir: string;
  #service: PolicyService | undefined;
  #subscription: Subscription | undefined;

  private constructor(dir: string) {
    this.#dir = dir;
    this.bus = new LocalBus({ dir, fsync: false, logger: silentLogger });
  }

  /** `policyYaml` is an Agate config document (its `policy:` section is used); null runs no policy service. */
  static async start(policyYaml: string | null): Promise<PolicyBus> {
    await loadParsers();
    const pb = new PolicyBus(mkdtempSync(join(tmpdir(), 'agate-policy-bus-')));
    pb.#subscription = await pb.bus.subscribe({ group: 'policy-bus-watch', types: ['SessionOpened', 'AuthenticationFailed', 'Command', 'Verdict', 'Response', 'SessionClosed'], handler: async (b) => void pb.events.push(...b) });
    if (policyYaml !== null) {
      const policy = new CompiledPolicy(parseConfig(policyYaml, 'policy-bus.yaml').policy);
      pb.#service = new PolicyService({ bus: pb.bus, policy, logger: silentLogger, staleAfterMs: 30_000 });
      await pb.#service.start();
    }
    return pb;
  }

  /** Waits until `pick` finds something among the events seen (up to `timeoutMs`). */
  async waitFor<T>(pick: (events: AgateEvent[]) => T | undefined, timeoutMs = 15_000): Promise<T> {
    return until(() => `the awaited event to be published (${eventsSeen(this.events)})`, () => pick(this.events), { timeoutMs, everyMs: 10 });
  }

  async stop(): Promise<void> {
    await this.#service?.stop();
    await this.#subscription?.close().catch(() => undefined);
    await this.bus.close().catch(() => undefined);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
