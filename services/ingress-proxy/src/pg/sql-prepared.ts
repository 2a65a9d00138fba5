/**
 * The session's SQL-level prepared statements (`PREPARE name AS …`, not the protocol's Parse), so
 * that `EXECUTE name(…)` is decided as the statement it runs, under the policy in force when it
 * runs: a statement prepared before a policy reload cannot carry the old verdict past it.
 *
 * A PREPARE, DEALLOCATE or DISCARD ALL takes effect only once the server reports it completed
 * ({@link settle}); until then it is pending, and statements decided after it (later in the same
 * query string or pipeline, which run only after it) see the pending state. A PREPARE of a name
 * that already exists changes nothing: the server refuses it.
 */

import { MAX_STATEMENTS } from './extended-state.js';
import { MAX_RETAINED_BYTES, SizedMap } from './sized-map.js';

type Node = Record<string, unknown>;

type Effect =
  | { kind: 'prepare'; name: string; text: string }
  | { kind: 'deallocate'; name: string }
  | { kind: 'deallocateAll' };

/** What one statement needs decided beyond its own text. */
type ExecutePlan =
  /** The PREPARE texts of the statements it executes (empty: it executes none). */
  | { ok: true; prepared: string[] }
  /** It executes a name Agate did not see prepared: Agate cannot tell what would run. */
  | { ok: false; why: 'unknown'; name: string }
  /** It prepares one more than a session may keep (count or text, as for the protocol's). */
  | { ok: false; why: 'limit'; name: string };

/** A cheap test before any parse: a statement with none of these words needs no tracking. */
export function mayTouchPrepared(text: string): boolean {
  return /\b(execute|prepare|deallocate|discard)\b/i.test(text);
}

export class SqlPreparedStatements {
  /** Names the server has, with the (recorded) text of the PREPARE that made each. */
  readonly #known = new SizedMap<string>((text) => text.length);
  /** Effects of statements forwarded but not yet completed, in order, by command id. */
  readonly #pending: { commandId: string; effect: Effect }[] = [];

  /** The PREPARE text behind `name` as of everything forwarded so far. */
  lookup(name: string): string | undefined {
    let text = this.#known.get(name);
    for (const { effect } of this.#pending) {
      if (effect.kind === 'prepare' && effect.name === name && text === undefined) text = effect.text;
      else if (effect.kind === 'deallocate' && effect.name === name) text = undefined;
      else if (effect.kind === 'deallocateAll') text = undefined;
    }
    return text;
  }

  /**
   * Plans one statement (its parse node and recorded text, under command `commandId`): which
   * prepared statements it executes, and what it prepares or deallocates (pending until settled).
   */
  plan(node: Node, text: string, commandId: string): ExecutePlan {
    const prepared: string[] = [];
    let unknown: string | undefined;
    for (const execute of nodesOf(node, 'ExecuteStmt')) {
      const name = String(execute.name ?? '');
      const found = this.lookup(name);
      if (found === undefined) unknown ??= name;
      else prepared.push(found);
    }
    if (unknown !== undefined) return { ok: false, why: 'unknown', name: unknown };
    const kind = Object.keys(node)[0];
    const body = (node[kind ?? ''] ?? {}) as Node;
    if (kind === 'PrepareStmt' && this.#full(text)) return { ok: false, why: 'limit', name: String(body.name ?? '') };
    if (kind === 'PrepareStmt') this.#pending.push({ commandId, effect: { kind: 'prepare', name: String(body.name ?? ''), text } });
    else if (kind === 'DeallocateStmt') {
      const effect: Effect = body.isall === true || body.name === undefined ? { kind: 'deallocateAll' } : { kind: 'deallocate', name: String(body.name) };
      this.#pending.push({ commandId, effect });
    } else if (kind === 'DiscardStmt' && body.target === 'DISCARD_ALL') this.#pending.push({ commandId, effect: { kind: 'deallocateAll' } });
    return { ok: true, prepared };
  }

  /**
   * The protocol's Close dropped `name` (the server keeps one set of names for PREPARE and
   * Parse): forgotten at once, with any PREPARE of it still pending, which the Close follows.
   */
  forget(name: string): void {
    this.#known.delete(name);
    for (let i = this.#pending.length - 1; i >= 0; i--) {
      const { effect } = this.#pending[i]!;
      if (effect.kind === 'prepare' && effect.name === name) this.#pending.splice(i, 1);
    }
  }

  /** Whether one more PREPARE of `text` would hold more than a session may. */
  #full(text: string): boolean {
    let count = this.#known.size;
    let chars = this.#known.total + text.length;
    for (const { effect } of this.#pending) {
      if (effect.kind !== 'prepare') continue;
      count += 1;
      chars += effect.text.length;
    }
    return count >= MAX_STATEMENTS || chars > MAX_RETAINED_BYTES;
  }

  /** The server completed (`ok`) or did not run the statement of `commandId`. */
  settle(commandId: string, ok: boolean): void {
    const i = this.#pending.findIndex((p) => p.commandId === commandId);
    if (i === -1) return;
    const { effect } = this.#pending.splice(i, 1)[0]!;
    if (!ok) return;
    if (effect.kind === 'prepare') {
      if (!this.#known.has(effect.name)) this.#known.set(effect.name, effect.text);
    } else if (effect.kind === 'deallocate') this.#known.delete(effect.name);
    else this.#known.clear();
  }
}

/** Every node of `kind` anywhere in a parse tree (EXPLAIN ANALYZE EXECUTE, CREATE TABLE AS EXECUTE). */
function nodesOf(tree: unknown, kind: string): Node[] {
  const out: Node[] = [];
  const visit = (value: unknown, depth: number): void => {
    if (depth > 200 || value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      for (const v of value) visit(v, depth + 1);
      return;
    }
    for (const [key, child] of Object.entries(value as Node)) {
      if (key === kind && child !== null && typeof child === 'object') out.push(child as Node);
      visit(child, depth + 1);
    }
  };
  visit(tree, 0);
  return out;
}
