/**
 * Text an agent wrote, cut into pieces a person can see. A held command, a file name or an error
 * message can carry characters that show nothing or show something else: a bidi override that
 * reverses what follows (Trojan Source), a zero-width space, a carriage return or escape sequence
 * that rewrites a terminal line, a Cyrillic letter inside a Latin word, stacked combining marks,
 * or hundreds of blank lines pushing the tail out of view. Each such piece gets a `label` shown
 * in its place; plain pieces are shown as they are. The pieces cover the text exactly, in order.
 *
 * No imports and no DOM: the console serves the compiled file as-is (`/ui/assets/visible-text.js`)
 * and the CLI uses it for the terminal, so both show the same labels.
 */

type PieceKind = 'plain' | 'hidden' | 'mixed' | 'blank-lines' | 'spaces' | 'marks';

interface Piece {
  kind: PieceKind;
  /** Offsets into the text, end exclusive. */
  start: number;
  end: number;
  /** What is shown instead of (or, for `mixed`, beside) the text; absent for `plain`. */
  label?: string;
}

/** Lines holding only spaces or tabs, this many or more in a row, are shown as one label. */
const BLANK_LINES_RUN = 3;
/** Spaces or tabs in a row, this many or more, are shown as one label. */
const SPACES_RUN = 40;
/** Combining marks on one character, this many or more, are shown as one label. */
const MARKS_RUN = 4;

const NAMES: Record<number, string> = {
  0x00: 'NUL', 0x07: 'BEL', 0x08: 'BS', 0x0b: 'VT', 0x0c: 'FF', 0x0d: 'CR', 0x1b: 'ESC', 0x7f: 'DEL', 0x9b: 'CSI',
  0x9d: 'OSC', 0xa0: 'NBSP', 0xad: 'SHY', 0x34f: 'CGJ', 0x61c: 'ALM', 0x200b: 'ZWSP', 0x200c: 'ZWNJ', 0x200d: 'ZWJ',
  0x200e: 'LRM', 0x200f: 'RLM', 0x2028: 'LS', 0x2029: 'PS', 0x202a: 'LRE', 0x202b: 'RLE', 0x202c: 'PDF',
  0x202d: 'LRO', 0x202e: 'RLO', 0x2060: 'WJ', 0x2066: 'LRI', 0x2067: 'RLI', 0x2068: 'FSI', 0x2069: 'PDI', 0xfeff: 'BOM',
};

const SCRIPTS: [string, RegExp][] = [
  ['Cyrillic', /\p{Script=Cyrillic}/u], ['Greek', /\p{Script=Greek}/u], ['Armenian', /\p{Script=Armenian}/u],
  ['Cherokee', /\p{Script=Cherokee}/u], ['Coptic', /\p{Script=Coptic}/u], ['Georgian', /\p{Script=Georgian}/u],
];

// Alternatives in priority order: blank lines, long blank runs, an invisible or control
// character (every one but newline and tab), a stack of combining marks, a word.
const SCAN = new RegExp(
  `(\\n(?:[ \\t]*\\n){${BLANK_LINES_RUN},})|([ \\t]{${SPACES_RUN},})` +
    '|([\\p{Cc}\\p{Cf}\\p{Co}\\p{Cs}\\p{Cn}\\p{Zl}\\p{Zp}\\p{Default_Ignorable_Code_Point}\\u00a0\\u1680\\u2000-\\u200a\\u202f\\u205f\\u3000])' +
    // A word stops at an invisible letter or mark (a Hangul filler, a variation selector) and
    // before a run of marks that long, so each is a piece of its own.
    `|(\\p{M}{${MARKS_RUN},})|((?:(?!\\p{Default_Ignorable_Code_Point})(?:[\\p{L}\\p{N}_]|\\p{M}(?!\\p{M}{${MARKS_RUN - 1}})))+)`,
  'gu',
);
const PLAIN_CONTROL = /^[\n\t]$/;
const LATIN = /\p{Script=Latin}/u;
const OTHER_LETTER = /(?![\p{Script=Latin}\p{Script=Common}\p{Script=Inherited}])\p{L}/gu;

/** "U+202E" */
function codePoint(ch: string): string {
  return `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The pieces of `text`: plain ones, and labelled ones for what would not show as it is. */
export function revealText(text: string): Piece[] {
  const pieces: Piece[] = [];
  let at = 0;
  const special = (start: number, end: number, kind: PieceKind, label: string) => {
    if (start > at) pieces.push({ kind: 'plain', start: at, end: start });
    pieces.push({ kind, start, end, label });
    at = end;
  };
  for (const m of text.matchAll(SCAN)) {
    const [all, blank, spaces, hidden, marks, word] = m;
    const start = m.index;
    const end = start + all.length;
    if (blank !== undefined) special(start, end, 'blank-lines', `⟨${blank.split('\n').length - 2} blank lines⟩`);
    else if (spaces !== undefined) special(start, end, 'spaces', `⟨${spaces.length} ${spaces.includes('\t') ? 'spaces and tabs' : 'spaces'}⟩`);
    else if (hidden !== undefined && !PLAIN_CONTROL.test(hidden)) special(start, end, 'hidden', `⟨${nameOf(hidden)}⟩`);
    else if (marks !== undefined) special(start, end, 'marks', `⟨${[...marks].length} combining marks⟩`);
    else if (word !== undefined && LATIN.test(word)) {
      // A letter of another script inside a Latin word: a homoglyph (Cyrillic а for Latin a).
      for (const o of word.matchAll(OTHER_LETTER)) {
        special(start + o.index, start + o.index + o[0].length, 'mixed', `⟨${scriptOf(o[0])} ${codePoint(o[0])}⟩`);
      }
    }
  }
  if (at < text.length) pieces.push({ kind: 'plain', start: at, end: text.length });
  return pieces;
}

/**
 * The text with every labelled piece replaced by its label (a mixed-script letter kept, its
 * label after it; a run of blank lines as its label on a line of its own).
 */
export function visibleText(text: string): string {
  return revealText(text).map((p) => shown(text, p)).join('');
}

/** One piece as `visibleText` shows it. */
function shown(text: string, p: Piece): string {
  if (p.kind === 'plain') return text.slice(p.start, p.end);
  if (p.kind === 'mixed') return text.slice(p.start, p.end) + p.label;
  return p.kind === 'blank-lines' ? `\n${p.label}\n` : p.label!;
}

/** What the labelled pieces are, for a note beside the text: `["RLO U+202E ×2", "Cyrillic U+0430"]`; empty when there are none. */
export function revealSummary(text: string): string[] {
  const counts = new Map<string, number>();
  for (const p of revealText(text)) {
    if (p.kind === 'plain') continue;
    const what = p.label!.slice(1, -1).replace(/^\d+ /, 'runs of ');
    counts.set(what, (counts.get(what) ?? 0) + 1);
  }
  return [...counts].map(([what, n]) => (n === 1 ? what : `${what} ×${n}`));
}

/** Whether the text has letters written right to left (Hebrew, Arabic …), which a browser would reorder. */
export function hasRightToLeft(text: string): boolean {
  return /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}]/u.test(text);
}

function nameOf(ch: string): string {
  const name = NAMES[ch.codePointAt(0)!];
  return name === undefined ? codePoint(ch) : `${name} ${codePoint(ch)}`;
}

function scriptOf(ch: string): string {
  return SCRIPTS.find(([, re]) => re.test(ch))?.[0] ?? 'non-Latin';
}
