import { unwatchFile, watchFile, type Stats } from 'node:fs';
import { loadConfig } from '../../../core/src/config.js';
import type { Logger } from '../../../core/src/log.js';
import { CompiledPolicy } from './engine.js';

interface PolicyReloaderOptions {
  /** The config file the policy came from. */
  path: string;
  /** Receives each valid new policy. */
  apply(policy: CompiledPolicy): void;
  logger: Logger;
  /** How often the file's modification time is checked. Default 1000 ms. */
  intervalMs?: number;
}

/**
 * Watches the config file and swaps in its policy when it changes. A file that does not load
 * (bad YAML, a schema error, an unknown mask set) is rejected with the loader's precise error,
 * and the policy in force stays. Polling the file's stat survives editors that replace the file.
 */
export class PolicyReloader {
  readonly #listener = (cur: Stats, prev: Stats) => {
    if (cur.mtimeMs !== prev.mtimeMs || cur.size !== prev.size) this.reload();
  };
  #revision: string | undefined;

  readonly #options: PolicyReloaderOptions;

  constructor(options: PolicyReloaderOptions) {
    this.#options = options;
  }

  start(current: CompiledPolicy): void {
    this.#revision = current.revision;
    watchFile(this.#options.path, { interval: this.#options.intervalMs ?? 1000, persistent: false }, this.#listener);
  }

  stop(): void {
    unwatchFile(this.#options.path, this.#listener);
  }

  /** Loads the file now; returns the error message when it was rejected. */
  reload(): string | undefined {
    const { path, logger, apply } = this.#options;
    let policy: CompiledPolicy;
    try {
      const config = loadConfig(path);
      policy = new CompiledPolicy(config.policy, config.masking.audit);
    } catch (err) {
      const message = (err as Error).message;
      logger.error('policy reload rejected; the previous policy stays in force', { path, revision: this.#revision, error: message });
      return message;
    }
    if (policy.revision === this.#revision) return undefined;
    logger.info('policy reloaded', { path, previous: this.#revision, revision: policy.revision });
    this.#revision = policy.revision;
    apply(policy);
    return undefined;
  }
}
