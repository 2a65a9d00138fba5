import type { MaskSetConfig } from '../../../../core/src/config.js';
import { globTest } from '../../../../core/src/glob.js';
import { detector, type Detector } from './detectors.js';

/** What a masked run of text is replaced with; names the detector so the audit trail says why. */
const maskedSpan = (kind: string): string => `[masked:${kind}]`;
/** What a whole value of a masked column becomes when its type is text. */
export const MASKED_VALUE = '[masked]';

interface MaskedText {
  text: string;
  /** How many spans were replaced. */
  count: number;
}

/**
 * One compiled mask set: column-name globs (case-insensitive) and value detectors. Stateless
 * after construction, so one instance serves every session.
 */
export class Masker {
  readonly #columns: ((name: string) => boolean)[];
  readonly #detectors: Detector[];

  constructor(readonly name: string, set: MaskSetConfig) {
    // String comparisons, not RegExps: every key of every recorded Kubernetes object is tested
    // against each glob (`^.*token.*$` cost ~0.3 µs a key and glob, the most of a get's record).
    this.#columns = set.columns.map((g) => globTest(g, { ignoreCase: true }));
    this.#detectors = set.detectors.map(detector);
  }

  /** Whether the column's every value is masked. */
  masksColumn(name: string): boolean {
    return this.#columns.some((test) => test(name));
  }

  get hasColumnRules(): boolean {
    return this.#columns.length > 0;
  }

  /** Replaces every detected secret in `text`. */
  maskText(text: string): MaskedText {
    let count = 0;
    let out = text;
    for (const d of this.#detectors) {
      if (!d.hint(out)) continue;
      out = out.replace(d.pattern, (m) => {
        if (d.accept !== undefined && !d.accept(m)) return m;
        count += 1;
        return maskedSpan(d.name);
      });
    }
    return { text: out, count };
  }

  /**
   * Every value and every message masked: for a statement that can carry a masked column under
   * a name the column rules do not catch (see derived-columns.ts).
   */
  static whole(base: Masker): Masker {
    return new WholeMasker(base);
  }

  /** Both sets' rules: what the audit copy needs when the client set differs from the audit set. */
  static union(a: Masker, b: Masker | undefined): Masker {
    if (b === undefined || b === a) return a;
    return new UnionMasker(a, b);
  }
}

/** The rules of two mask sets together. */
class UnionMasker extends Masker {
  constructor(private readonly a: Masker, private readonly b: Masker) {
    super(`${a.name}+${b.name}`, { columns: [], detectors: [] });
  }

  override masksColumn(name: string): boolean {
    return this.a.masksColumn(name) || this.b.masksColumn(name);
  }

  override get hasColumnRules(): boolean {
    return this.a.hasColumnRules || this.b.hasColumnRules;
  }

  override maskText(text: string): MaskedText {
    const first = this.a.maskText(text);
    const second = this.b.maskText(first.text);
    return { text: second.text, count: first.count + second.count };
  }
}

/** Masks everything: every column is masked, every non-empty text is replaced whole. */
class WholeMasker extends Masker {
  constructor(base: Masker) {
    super(`${base.name}:whole`, { columns: [], detectors: [] });
  }

  override masksColumn(): boolean {
    return true;
  }

  override get hasColumnRules(): boolean {
    return true;
  }

  override maskText(text: string): MaskedText {
    return text === '' ? { text, count: 0 } : { text: MASKED_VALUE, count: 1 };
  }
}
