import { statSync } from 'node:fs';
import { loadConfig, type MaskingConfig, type PolicyConfig } from '../../../core/src/config.js';
import { CompiledPolicy } from './engine.js';

interface PolicySnapshot {
  policy: PolicyConfig;
  masking: MaskingConfig;
  compiled: CompiledPolicy;
  /** Why the config file's latest edit was not taken (the policy before it stays in force, as in the policy service). */
  reload_error: string | null;
}

/**
 * The policy in force as another service sees it: the config file's policy, re-read when the file
 * changes, with a bad edit refused exactly as the policy service's reloader refuses it (reload.ts).
 * Lets the query service show the rules and try commands without asking the policy service.
 */
export class PolicyInForce {
  #snapshot: PolicySnapshot;
  #stamp: string;

  constructor(private readonly path: string | undefined, initial: { policy: PolicyConfig; masking: MaskingConfig }) {
    this.#snapshot = { ...initial, compiled: new CompiledPolicy(initial.policy, initial.masking.audit), reload_error: null };
    this.#stamp = this.#fileStamp();
  }

  current(): PolicySnapshot {
    const stamp = this.#fileStamp();
    if (this.path === undefined || stamp === this.#stamp) return this.#snapshot;
    this.#stamp = stamp;
    try {
      const config = loadConfig(this.path);
      this.#snapshot = { policy: config.policy, masking: config.masking, compiled: new CompiledPolicy(config.policy, config.masking.audit), reload_error: null };
    } catch (err) {
      this.#snapshot = { ...this.#snapshot, reload_error: (err as Error).message };
    }
    return this.#snapshot;
  }

  #fileStamp(): string {
    if (this.path === undefined) return '';
    try {
      const s = statSync(this.path);
      return `${s.mtimeMs}:${s.size}`;
    } catch {
      return 'missing';
    }
  }
}
