import { BoundedLru } from '../../../../../core/src/bounded-lru.js';
import { analyzeSql, type SqlAnalysis } from '../../../../../core/src/sql/analyze.js';
import { sqlShape } from '../../../../../core/src/sql/shape.js';
import type { Masker } from '../../masking/masker.js';
import { analysisCarries, analysisCopies, type MaskedCopy } from './derived-columns.js';
import { analysisSecrets, mayHoldSecrets, type StatementSecrets } from './statement-secrets.js';

/**
 * Shapes, and texts, remembered per mask set and question. At most 2 × 1,024 keys of 4 KiB
 * each, 8 MiB, per mask set and question; longer texts are read every time.
 */
const CAPACITY = 1024;
const MAX_TEXT = 4096;

/**
 * The answers of derived-columns.ts and statement-secrets.ts for statements seen before, so a
 * repeated statement is not parsed and walked again for its Command and each of its results (a
 * prepared statement, an ORM's queries, pgbench: the same text thousands of times). One
 * instance per proxy, shared by its sessions.
 *
 * What is remembered is keyed on everything the answer depends on, so a hit is the answer a
 * fresh reading would give:
 * - the mask set *object* (a WeakMap, never its name): a set compiled from another config, or a
 *   union or whole-masking set made for one statement, has answers of its own;
 * - the text exactly, or its {@link sqlShape} (numbers replaced by 0) when that shape parses.
 *   The parser (libpg-query) reads a text the same whatever the session's settings (it lexes
 *   with standard_conforming_strings on, and a session that changed how its text is lexed has
 *   its statements refused before they are read: engine.ts `#lexingSettled`); neither question
 *   looks at search_path or at a number's value, only at names, stars, aliases and statement
 *   kinds, which a shape keeps. A shape that does not parse is never used: the text itself is
 *   read, and an unparseable text is answered as derived-columns.ts answers it (carries: yes).
 */
export class MaskReadings {
  readonly #carries = new WeakMap<Masker, Memo<boolean>>();
  readonly #copies = new WeakMap<Masker, Memo<MaskedCopy | null>>();
  readonly #secrets = new WeakMap<Masker, Memo<StatementSecrets | null>>();

  /** {@link analysisCarries}: whether results of `sql` are masked whole under `masker`. */
  carries(sql: string, masker: Masker): boolean {
    if (!masker.hasColumnRules) return false;
    return this.#read(this.#carries, sql, masker, analysisCarries);
  }

  /** {@link analysisCopies}: why a masked client may not run `sql`, if it may not. Read-only: shared by every command of that text. */
  copies(sql: string, masker: Masker): MaskedCopy | undefined {
    if (!masker.hasColumnRules) return undefined;
    return this.#read(this.#copies, sql, masker, (a, m) => analysisCopies(a, m) ?? null) ?? undefined;
  }

  /**
   * statement-secrets.ts {@link analysisSecrets}: what the statement assigns to a masked column.
   * Read by exact text only, never by shape: its answer holds byte offsets into the text.
   * The answer is shared by every command of that text: read-only.
   */
  secrets(sql: string, masker: Masker): StatementSecrets | undefined {
    if (!mayHoldSecrets(sql)) return undefined;
    return this.#read(this.#secrets, sql, masker, (a, m) => analysisSecrets(a, m) ?? null, false) ?? undefined;
  }

  #read<T>(memos: WeakMap<Masker, Memo<T>>, sql: string, masker: Masker, answer: (a: SqlAnalysis, m: Masker) => T, byShape = true): T {
    if (sql.length > MAX_TEXT) return answer(analyzeSql(sql), masker);
    let memo = memos.get(masker);
    if (memo === undefined) memos.set(masker, (memo = { shapes: new BoundedLru(CAPACITY), texts: new BoundedLru(CAPACITY) }));
    const shape = byShape ? sqlShape(sql) : undefined;
    const known = (shape === undefined ? undefined : memo.shapes.get(shape)) ?? memo.texts.get(sql);
    if (known !== undefined) return known;
    if (shape !== undefined) {
      const analysis = analyzeSql(shape);
      if (analysis.ok) {
        const value = answer(analysis, masker);
        memo.shapes.set(shape, value);
        return value;
      }
    }
    const value = answer(analyzeSql(sql), masker);
    memo.texts.set(sql, value);
    return value;
  }
}

/**
 * One mask set's answers: by shape (only shapes that parsed) and by exact text, kept apart so an
 * unparseable text's answer is never taken for a parseable shape's that happens to be spelled
 * the same.
 */
interface Memo<T> {
  shapes: BoundedLru<string, T>;
  texts: BoundedLru<string, T>;
}
