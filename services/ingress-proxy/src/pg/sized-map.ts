/**
 * A Map that keeps the total size of its values, so a session's named objects (prepared
 * statements and their texts, portals and their bound values) can be bounded in bytes as well as
 * in number: the server keeps whatever a client defines, but one proxy serves every session.
 */
export class SizedMap<V> extends Map<string, V> {
  #total = 0;
  readonly #sizeOf: (value: V) => number;

  constructor(sizeOf: (value: V) => number) {
    super();
    this.#sizeOf = sizeOf;
  }

  /** The sum of the sizes of the values held. */
  get total(): number {
    return this.#total;
  }

  override set(key: string, value: V): this {
    // (The Map constructor calls no set, given no entries, so the fields exist by now.)
    const old = super.get(key);
    if (old !== undefined) this.#total -= this.#sizeOf(old);
    if (value !== undefined) this.#total += this.#sizeOf(value);
    return super.set(key, value);
  }

  override delete(key: string): boolean {
    const old = super.get(key);
    if (old !== undefined) this.#total -= this.#sizeOf(old);
    return super.delete(key);
  }

  override clear(): void {
    this.#total = 0;
    super.clear();
  }
}

/** What one session may keep of statement texts and bound values together, in bytes (UTF-16 units for text). */
export const MAX_RETAINED_BYTES = 64 << 20;

/** The bytes of bound values (a NULL is none). */
export function paramBytes(params: readonly (Buffer | null)[]): number {
  let n = 0;
  for (const p of params) n += p === null ? 0 : p.length;
  return n;
}
