import type { ExtendedState } from './extended-state.js';
import { parameterTexts } from './extended-state.js';
import type { Bind, Parse } from './messages.js';

/** A statement the client asked to run while the server was ignoring its messages. */
export interface SkippedStatement {
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
  readonly #statements = new Map<string, { text: string; paramTypes: number[] }>();
  readonly #portals = new Map<string, SkippedStatement | undefined>();

  parse(msg: Parse): void {
    this.#statements.set(msg.name, { text: msg.query, paramTypes: msg.paramTypes });
  }

  bind(msg: Bind, state: ExtendedState): void {
    const statement = this.#statements.get(msg.statement) ?? state.statements.get(msg.statement);
    if (statement === undefined) return void this.#portals.set(msg.portal, undefined);
    const parameters = parameterTexts({ statement, params: msg.params, paramFormats: msg.paramFormats, described: false });
    this.#portals.set(msg.portal, { text: statement.text, parameters });
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
