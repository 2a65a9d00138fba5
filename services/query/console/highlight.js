// Highlighting of a command's text for the approver: SQL keywords, strings, numbers and
// comments as spans (built as DOM nodes, never as HTML; what would not show as itself is
// labelled by dom.js), and the note saying what the labels are.
import { h, textNodes } from './dom.js';
import { hasRightToLeft, revealSummary } from './visible-text.js';

const KEYWORDS = new Set(('select from where insert into values update set delete drop truncate alter create table index view ' +
  'database schema grant revoke to on and or not null is in as join left right inner outer group by order having limit ' +
  'offset returning begin commit rollback cascade if exists with union all distinct case when then else end copy user role password ' +
  'function procedure do language execute rm sudo chmod chown kill git push force').split(' '));

// Words of any script, so a look-alike letter inside a Latin word stays in that word's token.
const TOKEN = /(--[^\n]*|\/\*[\s\S]*?\*\/)|('(?:[^']|'')*'|"(?:[^"\\]|\\.)*")|(\b\d+(?:\.\d+)?\b)|([\p{L}_][\p{L}\p{M}\p{N}_]*)|(\s+|.)/gu;

/** The text as a <code> element with spans for keywords, strings, numbers and comments. */
export function highlight(text) {
  const code = h('code');
  for (const m of text.matchAll(TOKEN)) {
    const [tok, comment, str, num, word] = m;
    if (comment) code.append(h('span', { class: 'tok-comment' }, tok));
    else if (str) code.append(h('span', { class: 'tok-string' }, tok));
    else if (num) code.append(h('span', { class: 'tok-number' }, tok));
    else if (word && KEYWORDS.has(word.toLowerCase())) code.append(h('span', { class: 'tok-keyword' }, tok));
    else code.append(...textNodes(tok));
  }
  return code;
}

/**
 * What the labels in `text` stand for, as a note to show above it; null when the text shows as
 * itself. Right-to-left letters get a line too: the text is laid out left to right in the order
 * it was typed (CSS `.exact`), so a browser's bidi reordering cannot make it read otherwise.
 */
export function revealNote(text) {
  const found = revealSummary(text);
  const rtl = hasRightToLeft(text);
  if (found.length === 0 && !rtl) return null;
  return h('p', { class: 'reveal-note', role: 'note' },
    found.length > 0 ? `This text holds what would not show as itself, marked ⟨…⟩ in place: ${found.join(', ')}.` : null,
    found.length > 0 && rtl ? ' ' : null,
    rtl ? 'Its right-to-left letters are shown in the order they were typed, left to right.' : null);
}
