import { HASH_SIZE, EMPTY_ROOT, hashBytes, hashText, nodeHashText, type HashText } from './merkle.js';

/** One complete subtree of the frontier: `size` is a power of two. */
interface Subtree {
  size: number;
  hash: Buffer;
}

/** Told of every interior node an append completes: its size in leaves, its index among the nodes of that size. */
export type NodeObserver = (size: number, index: number, hash: HashText) => void;

interface Node {
  size: number;
  hash: HashText;
}

/**
 * The right edge of an append-only Merkle tree: the roots of its complete subtrees, largest
 * first (one per set bit of the size). Appending costs one node hash amortised and the root
 * is a fold over at most log2(n) hashes, so the ledger never recomputes the tree. Hashes are
 * kept as HashTexts: the ledger's hashing thread pushes a leaf per record.
 */
export class CompactRange {
  #subtrees: Node[];
  #size: number;

  constructor(subtrees: readonly Subtree[] = []) {
    // A frontier's subtrees are distinct powers of two, largest first (the bits of its size).
    subtrees.forEach((s, i) => {
      if (s.size < 1 || (s.size & (s.size - 1)) !== 0 || (i > 0 && s.size >= subtrees[i - 1]!.size)) throw new RangeError('not a compact range');
    });
    this.#subtrees = subtrees.map((s) => ({ size: s.size, hash: hashText(s.hash) }));
    this.#size = subtrees.reduce((n, s) => n + s.size, 0);
  }

  get size(): number {
    return this.#size;
  }

  get subtrees(): readonly Subtree[] {
    return this.#subtrees.map((s) => ({ size: s.size, hash: hashBytes(s.hash) }));
  }

  /** Appends one leaf hash. */
  push(leaf: Uint8Array | HashText, onNode?: NodeObserver): void {
    this.pushSubtree(leaf, 1, onNode);
  }

  /**
   * Appends the root of a complete subtree of `size` leaves; the tree's size must be a multiple
   * of `size` (the subtree is aligned), as for whole verification pages.
   */
  pushSubtree(hash: Uint8Array | HashText, size: number, onNode?: NodeObserver): void {
    if (this.#size % size !== 0 || (size & (size - 1)) !== 0) throw new RangeError(`a subtree of ${size} leaves cannot be appended at ${this.#size}`);
    let node: Node = { size, hash: typeof hash === 'string' ? hash : hashText(hash) };
    let start = this.#size;
    for (;;) {
      const last = this.#subtrees[this.#subtrees.length - 1];
      if (last === undefined || last.size !== node.size) break;
      this.#subtrees.pop();
      start -= last.size;
      node = { size: node.size * 2, hash: nodeHashText(last.hash, node.hash) };
      onNode?.(node.size, start / node.size, node.hash);
    }
    this.#subtrees.push(node);
    this.#size += size;
  }

  /** The tree root, optionally with one more right-hand subtree (any size) folded in last. */
  root(tail?: Uint8Array): Buffer {
    const hashes = this.#subtrees.map((s) => s.hash);
    if (tail !== undefined) hashes.push(hashText(tail));
    if (hashes.length === 0) return EMPTY_ROOT;
    let acc = hashes[hashes.length - 1]!;
    for (let i = hashes.length - 2; i >= 0; i--) acc = nodeHashText(hashes[i]!, acc);
    return hashBytes(acc);
  }

  /** A copy that can grow independently. */
  clone(): CompactRange {
    const copy = new CompactRange();
    copy.#subtrees = this.#subtrees.slice(); // nodes are replaced, never changed
    copy.#size = this.#size;
    return copy;
  }

  toJSON(): { size: number; hash: string }[] {
    return this.#subtrees.map((s) => ({ size: s.size, hash: hashBytes(s.hash).toString('hex') }));
  }

  static fromJSON(value: readonly { size: number; hash: string }[]): CompactRange {
    return new CompactRange(value.map((s) => {
      const hash = Buffer.from(s.hash, 'hex');
      if (hash.length !== HASH_SIZE) throw new RangeError('a subtree hash must be 32 bytes');
      return { size: s.size, hash };
    }));
  }
}
