// Tables and small helpers shared by the console's pages.
import { h } from './dom.js';

/** A table with a header row; cells are nodes or text. */
export function table(headers, rows, id) {
  return h('table', { class: 'grid', ...(id ? { id } : {}) },
    h('thead', {}, h('tr', {}, ...headers.map((t) => h('th', {}, t)))),
    h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c ?? ''))))));
}

/** A decision as a coloured badge. */
export function decisionBadge(decision) {
  return h('span', { class: `badge decision-${decision}` }, decision);
}

/** Saves `text` as a file the browser downloads (no server round trip, no inline script). */
export function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
