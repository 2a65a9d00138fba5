import type { Store } from '../../core/src/store/store.js';

/**
 * A store whose next RowBinary insert into one table waits until the test lets it go: how a
 * test holds a ledger instance between its head check and its insert (as a long pause or a lost
 * group membership would) while another instance appends to the same chain.
 */
export class HeldInserts {
  readonly store: Store;
  #armed = false;
  #release: (() => void) | undefined;
  #onHeld: (() => void) | undefined;
  #onDone: (() => void) | undefined;
  /** Resolves once an insert waits. */
  readonly held: Promise<void>;
  /** Resolves once the held insert, let go, has finished (stored, dropped or failed). */
  readonly done: Promise<void>;

  constructor(inner: Store, table = 'agate.ledger') {
    this.held = new Promise((r) => (this.#onHeld = r));
    this.done = new Promise((r) => (this.#onDone = r));
    // Bound calls, not a spread: a store's methods may use its private fields.
    this.store = {
      exec: (q) => inner.exec(q), query: (q, p) => inner.query(q, p), insert: (t, r) => inner.insert(t, r),
      insertTsv: (t, c, p) => inner.insertTsv(t, c, p), queryRowBinary: (q, p) => inner.queryRowBinary(q, p), close: () => inner.close(),
      insertRowBinary: async (t, c, st, p, o) => {
        if (!this.#armed || t !== table) return inner.insertRowBinary(t, c, st, p, o);
        this.#armed = false;
        await new Promise<void>((r) => ((this.#release = r), this.#onHeld!()));
        try {
          return await inner.insertRowBinary(t, c, st, p, o);
        } finally {
          this.#onDone!();
        }
      },
    };
  }

  /** Holds the next insert into the table (once). */
  hold(): void {
    this.#armed = true;
  }

  /** Lets the held insert go on. */
  release(): void {
    this.#release?.();
  }
}
