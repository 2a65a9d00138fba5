import type { ExtendedState } from './extended-state.js';
import { parameterTexts } from './extended-state.js';
import type { Bind, Parse } from './messages.js';
import { MAX_RETAINED_BYTES, paramBytes, SizedMap } from './sized-map.js';

/** A statement the client asked to run while the server was ignoring its messages. */
interface SkippedStatement {
  text: string;
  parameters: (string | null)[];
}

/**
 * What the client sends after the server failed a message and before its Sync: the server
 * ignores all of it, so nothing is forwarded, decided or added to the {@link ExtendedState}.
 * It is still part of the record, so this keeps the client's view of the batch (its Parse texts
 * and Bind values, falling back to what was defined before) to name each Execute it sends.
 */
export class SkippedBatch {
  readonly #statements = new SizedMap<{ text: string; paramTypes: number[] }>((s) => s.text.length);
  readonly #portals = new SizedMap<SkippedStatement | undefined>((p) => p === undefined ? 0 : p.text.length + p.parameters.reduce((n, v) => n + (v?.length ?? 0), 0));

  /** Keeps a Parse's text; false when the batch would hold more than a session may (MAX_RETAINED_BYTES). */
  parse(msg: Parse): boolean {
    if (this.#retained() + msg.query.length > MAX_RETAINED_BYTES) return false;
    this.#statements.set(msg.name, { text: msg.query, paramTypes: msg.paramTypes });
    return true;
  }

  /** Keeps what a Bind names; false as for {@link parse}. */
  bind(msg: Bind, state: ExtendedState): boolean {
    const statement = this.#statements.get(msg.statement) ?? state.statements.get(msg.statement);
    if (statement === undefined) {
      this.#portals.set(msg.portal, undefined);
      return true;
    }
    // Its text is shared with the statement; its values are copied out as text (about their size again).
    if (this.#retained() + statement.text.length + 2 * paramBytes(msg.params) > MAX_RETAINED_BYTES) return false;
    const parameters = parameterTexts({ statement, params: msg.params, paramFormats: msg.paramFormats, described: false });
    this.#portals.set(msg.portal, { text: statement.text, parameters });
    return true;
  }

  #retained(): number {
    return this.#statements.total + this.#portals.total;
  }

  /** The statement an Execute of `portal` names, if any. */
  execute(portal: string, state: ExtendedState): SkippedStatement | undefined {
    if (this.#portals.has(portal)) return this.#portals.get(portal);
    const known = state.portals.get(portal);
    return known?.statement === undefined ? undefined : { text: known.statement.text, parameters: parameterTexts(known) };
  }

  clear(): void {
    this.#statements.clear();
    this.#portals.clear();
  }
}
