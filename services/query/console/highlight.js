// Highlighting of a command's text for the approver: SQL keywords, strings, numbers and
// comments as spans (built as DOM nodes, never as HTML).
import { h } from './dom.js';

const KEYWORDS = new Set(('select from where insert into values update set delete drop truncate alter create table index view ' +
  'database schema grant revoke to on and or not null is in as join left right inner outer group by order having limit ' +
  'offset returning begin commit rollback cascade if exists with union all distinct case when then else end copy user role password ' +
  'function procedure do language execute rm sudo chmod chown kill git push force').split(' '));

const TOKEN = /(--[^\n]*|\/\*[\s\S]*?\*\/)|('(?:[^']|'')*'|"(?:[^"\\]|\\.)*")|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)|(\s+|.)/g;

/** The text as a <code> element with spans for keywords, strings, numbers and comments. */
export function highlight(text) {
  const code = h('code');
  for (const m of text.matchAll(TOKEN)) {
    const [tok, comment, str, num, word] = m;
    if (comment) code.append(h('span', { class: 'tok-comment' }, tok));
    else if (str) code.append(h('span', { class: 'tok-string' }, tok));
    else if (num) code.append(h('span', { class: 'tok-number' }, tok));
    else if (word && KEYWORDS.has(word.toLowerCase())) code.append(h('span', { class: 'tok-keyword' }, tok));
    else code.append(document.createTextNode(tok));
  }
  return code;
}
