// Replay of a SQL session, stepped statement by statement with its recorded timing. (SSH shells
// play in the asciicast player on their own page: shell-replay.js.)
import { h } from './dom.js';
import { highlight, revealNote } from './highlight.js';
import { decisionBadge } from './table.js';

/** Pauses longer than this play as this long (the record keeps the real times). */
const IDLE_CAP_S = 2;

/**
 * A SQL session stepped statement by statement: each with its offset from the session start, the
 * pause before it, its verdict and what came back; Play steps with the recorded pauses.
 * @param {string} openedAt store time of the session start
 * @param {object[]} events the session's timeline
 */
export function statementStepper(openedAt, events, parseTime) {
  const steps = [];
  const byCommand = new Map();
  for (const e of events) {
    if (e.kind === 'command') {
      const step = { time: parseTime(e.time).getTime(), text: e.text, verdicts: [], response: null };
      steps.push(step);
      byCommand.set(e.command_id, step);
    } else if (e.kind === 'verdict') byCommand.get(e.command_id)?.verdicts.push(e);
    else if (e.kind === 'response') { const s = byCommand.get(e.command_id); if (s && s.response === null) s.response = e; }
  }
  if (steps.length === 0) return null;
  const start = parseTime(openedAt).getTime();
  let i = 0;
  let timer;
  const position = h('span', { class: 'step-position' });
  const offset = h('span', { class: 'step-offset muted' });
  const note = h('div', { class: 'step-note' });
  const statement = h('pre', { class: 'command step-text' });
  const outcome = h('p', { class: 'step-outcome' });
  const prev = h('button', { type: 'button', class: 'step-prev' }, '◀ Previous');
  const next = h('button', { type: 'button', class: 'step-next' }, 'Next ▶');
  const play = h('button', { type: 'button', class: 'step-play' }, 'Play');
  const list = h('ol', { class: 'steps' }, ...steps.map((s, k) => h('li', { 'data-step': String(k) }, h('button', { type: 'button', class: 'link', onclick: () => go(k) }, s.text.length > 70 ? `${s.text.slice(0, 69)}…` : s.text))));
  const go = (k) => {
    i = Math.max(0, Math.min(steps.length - 1, k));
    const s = steps[i];
    position.textContent = `Statement ${i + 1} of ${steps.length}`;
    const gap = i === 0 ? s.time - start : s.time - steps[i - 1].time;
    offset.textContent = `+${((s.time - start) / 1000).toFixed(3)} s from the start · ${(gap / 1000).toFixed(3)} s after the ${i === 0 ? 'session opened' : 'previous statement'}`;
    note.replaceChildren(...[revealNote(s.text)].filter((n) => n !== null));
    statement.replaceChildren(highlight(s.text));
    const final = s.verdicts[s.verdicts.length - 1];
    const r = s.response;
    // The response's tag and error text come from the target (and so may quote the agent): built by h().
    outcome.replaceChildren(...(final ? [decisionBadge(final.decision), ' ', final.rule_id ?? '', ' '] : []),
      h('span', {}, r ? (r.status === 'ok' ? `${r.command_tag ?? 'ok'} · ${r.rows ?? 0} rows` : `${r.status}${r.reason ? `: ${r.reason}` : ''}`) : 'no response recorded'),
      r?.duration_us != null ? ` · ${(r.duration_us / 1000).toFixed(1)} ms` : '');
    for (const li of list.children) li.classList.toggle('current', li.dataset.step === String(i));
    prev.disabled = i === 0;
    next.disabled = i === steps.length - 1;
  };
  const stop = () => { clearTimeout(timer); timer = undefined; play.textContent = 'Play'; };
  const advance = () => {
    if (i >= steps.length - 1) return stop();
    const wait = Math.min(steps[i + 1].time - steps[i].time, IDLE_CAP_S * 1000);
    timer = setTimeout(() => { go(i + 1); advance(); }, wait);
  };
  prev.addEventListener('click', () => { stop(); go(i - 1); });
  next.addEventListener('click', () => { stop(); go(i + 1); });
  play.addEventListener('click', () => { if (timer !== undefined) return stop(); if (i >= steps.length - 1) go(0); play.textContent = 'Pause'; advance(); });
  go(0);
  return h('section', { class: 'stepper', id: 'stepper' },
    h('div', { class: 'player-controls' }, prev, play, next, position, offset), note, statement, outcome, list);
}
