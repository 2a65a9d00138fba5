// A tiny DOM builder. Text always goes in as text nodes, never as HTML, so nothing the audit
// trail holds (command text, claims, comments) can become markup or script; and what would not
// show as itself (a bidi override, a zero-width space, a control character, a Cyrillic letter in
// a Latin word, a run of blank lines) is shown as a marked label in its place (visible-text.js).
import { revealText } from './visible-text.js';

/**
 * @param {string} tag
 * @param {Record<string, string | boolean | ((e: Event) => void)>} [attrs]
 * @param {...(Node | string | number | null | undefined | false)} children
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) el.setAttribute(k, '');
    else if (v !== false) el.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (typeof c === 'object') el.append(c);
    else el.append(...textNodes(String(c)));
  }
  return el;
}

/**
 * `text` as nodes: plain runs as text nodes, each labelled piece as a `span.reveal` showing its
 * label, with what it stands for in its title.
 * @param {string} text
 * @returns {Node[]}
 */
export function textNodes(text) {
  return revealText(text).flatMap((p) => {
    if (p.kind === 'plain') return [document.createTextNode(text.slice(p.start, p.end))];
    const label = document.createElement('span');
    label.className = `reveal reveal-${p.kind}`;
    label.title = TITLES[p.kind];
    if (p.kind === 'mixed') {
      label.append(text.slice(p.start, p.end), Object.assign(document.createElement('small'), { textContent: p.label }));
      return [label];
    }
    label.textContent = p.label;
    // A run of blank lines keeps a line of its own (as visibleText shows it).
    return p.kind === 'blank-lines' ? [document.createTextNode('\n'), label, document.createTextNode('\n')] : [label];
  });
}

const TITLES = {
  hidden: 'An invisible, control or formatting character of the recorded text, shown by its code point',
  mixed: 'A letter of another script inside a Latin word (a look-alike)',
  'blank-lines': 'Blank lines of the recorded text, counted',
  spaces: 'Spaces of the recorded text, counted',
  marks: 'Combining marks stacked on one character, counted',
};

/** Replaces everything inside `el`. */
export function mount(el, ...children) {
  el.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false));
}

/** "3 s ago", "2 min ago" … from a duration in ms. */
export function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

/** m:ss left, or "expired". */
export function timeLeft(ms) {
  if (ms <= 0) return 'expired';
  const s = Math.ceil(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')} left`;
}

/** A store time ("2026-01-02 03:04:05.123456", UTC) or ISO string as a Date. */
export function parseTime(t) {
  return new Date(/Z$|[+-]\d\d:\d\d$/.test(t) ? t : t.replace(' ', 'T') + 'Z');
}
