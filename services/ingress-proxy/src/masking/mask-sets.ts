import type { MaskingConfig } from '../../../../core/src/config.js';
import { ConfigError } from '../../../../core/src/errors.js';
import { Masker } from './masker.js';

/**
 * Every mask set of one config, compiled once at start and shared by the PostgreSQL, SSH and
 * Kubernetes proxies: one compiled rule set per config, so the three protocols can never mask
 * by different readings of the same `masking:` section. Immutable after construction.
 *
 * @example
 * const masks = MaskSets.compile(config.masking, config.source);
 * masks.audit.maskText(text);            // what every recorded value goes through
 * masks.byName.get('pii')?.masksColumn('email');
 */
export class MaskSets {
  /** The set applied to everything recorded (`masking.audit`). */
  readonly audit: Masker;
  /** Every set by name: what verdicts and targets' `mask_client` refer to. */
  readonly byName: ReadonlyMap<string, Masker>;
  readonly #auditName: string;

  private constructor(byName: Map<string, Masker>, auditName: string, audit: Masker) {
    this.byName = new SealedMap(byName);
    this.audit = audit;
    this.#auditName = auditName;
    Object.freeze(this);
  }

  /**
   * Compiles `masking.sets` as parseConfig validated them (a bad rule is refused there, with the
   * file, line and key); an audit set that is not among them fails start.
   */
  static compile(masking: MaskingConfig, source: string): MaskSets {
    const byName = new Map<string, Masker>();
    for (const [name, set] of Object.entries(masking.sets)) byName.set(name, new Masker(name, set));
    const audit = byName.get(masking.audit);
    if (audit === undefined) throw new ConfigError(`${source}: masking.audit: no mask set named "${masking.audit}" in masking.sets`);
    return new MaskSets(byName, masking.audit, audit);
  }

  /** The set a target's clients receive results through (`mask_client`): `true` is the audit set, `false` none. */
  clientSet(maskClient: boolean | string): string | undefined {
    if (maskClient === false) return undefined;
    return maskClient === true ? this.#auditName : maskClient;
  }
}

/** A read-only view of a map: no cast reaches a `set`, so the compiled sets stay as compiled. */
class SealedMap<K, V> implements ReadonlyMap<K, V> {
  readonly #map: ReadonlyMap<K, V>;

  constructor(map: ReadonlyMap<K, V>) {
    this.#map = map;
    Object.freeze(this);
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  forEach(fn: (value: V, key: K, map: ReadonlyMap<K, V>) => void): void {
    this.#map.forEach((v, k) => fn(v, k, this));
  }

  entries(): MapIterator<[K, V]> {
    return this.#map.entries();
  }

  keys(): MapIterator<K> {
    return this.#map.keys();
  }

  values(): MapIterator<V> {
    return this.#map.values();
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.#map.entries();
  }
}
