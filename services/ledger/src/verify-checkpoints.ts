import type { Checkpoint } from './checkpoint.js';
import type { ChainFailure } from './verify.js';

/**
 * The signed checkpoints still to compare with, smallest first. Those within the prefix the run
 * starts after count as checked (the resumed or expired prefix was matched when it was verified).
 */
export class CheckpointQueue {
  readonly #pending: Checkpoint[];
  #next: number;

  constructor(
    checkpoints: readonly Checkpoint[],
    start: number,
    private readonly checked: number[],
  ) {
    this.#pending = [...checkpoints].sort((a, b) => a.size - b.size);
    for (const cp of this.#pending.filter((c) => c.size <= start)) checked.push(cp.size);
    const next = this.#pending.findIndex((c) => c.size > start);
    this.#next = next < 0 ? this.#pending.length : next;
  }

  /** The next checkpoint to compare, when `due` says its size has been reached. */
  peek(due: (size: number) => boolean): Checkpoint | undefined {
    const cp = this.#pending[this.#next];
    return cp !== undefined && due(cp.size) ? cp : undefined;
  }

  /**
   * Step 3, check a signed checkpoint: the tree and chain head at its size must be the signed
   * ones. Matched, it is taken off the queue; otherwise the failure says what differs.
   */
  check(cp: Checkpoint, root: Buffer, head: Buffer | undefined): ChainFailure | null {
    if (root.equals(cp.root) && (cp.chainHead === undefined || head?.equals(cp.chainHead) === true)) {
      this.checked.push(cp.size);
      this.#next += 1;
      return null;
    }
    const since = this.checked.length === 0 ? 0 : this.checked[this.checked.length - 1]!;
    return {
      kind: 'rewritten', seq: cp.size, event_id: '',
      problem: `records ${since + 1}..${cp.size} do not match the signed checkpoint of size ${cp.size} (${root.equals(cp.root) ? 'chain head' : 'Merkle root'} differs): rewritten along with their link hashes`,
    };
  }

  /** A checkpoint that covers more records than the store holds (the tail was truncated). */
  beyond(size: number): Checkpoint | undefined {
    return this.#pending.find((c) => c.size > size);
  }
}
