/**
 * A dependency opened on first use: every caller gets the same promise, and only what was
 * opened is closed. Its type is the opened thing itself, so a service that needs the store
 * asks for it instead of asserting that someone opened it earlier.
 */
export class Lazy<T> {
  #opened: Promise<T> | undefined;

  constructor(private readonly open: () => Promise<T>) {}

  get(): Promise<T> {
    return (this.#opened ??= this.open());
  }

  /** The value if it was asked for and opened; never opens it (for stopping). */
  async ifOpened(): Promise<T | undefined> {
    return this.#opened?.catch(() => undefined);
  }
}
