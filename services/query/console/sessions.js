// Sessions: a filtered list, and one session's timeline (commands, verdicts, approvals and
// responses in ledger order), all through the query API's own routes.
import { get, post } from './api.js';
import { h, mount, parseTime } from './dom.js';
import { statementStepper } from './replay.js';
import { highlight } from './highlight.js';
import { table } from './table.js';

const FILTERS = [['subject', 'Identity'], ['target', 'Target'], ['q', 'Command text']];
/** Opened from / before: the page's local time in the inputs, UTC (ISO 8601) in the location and the API. */
const TIMES = [['from', 'Opened from'], ['to', 'Opened before']];

const toLocalInput = (iso) => {
  const d = new Date(iso ?? '');
  return Number.isNaN(d.getTime()) ? '' : new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};

/** @param {HTMLElement} view @param {URLSearchParams} params */
export async function showSessions(view, params) {
  const form = h('form', { class: 'filters', id: 'session-filters' },
    ...FILTERS.map(([name, label]) => h('label', {}, label, h('input', { name, value: params.get(name) ?? '' }))),
    h('label', {}, 'Protocol', select('protocol', ['', 'postgres', 'ssh', 'kubernetes'], params.get('protocol'))),
    h('label', {}, 'Decision', select('verdict', ['', 'allow', 'deny', 'hold', 'mask'], params.get('verdict'))),
    ...TIMES.map(([name, label]) => h('label', {}, label, h('input', { name, type: 'datetime-local', value: toLocalInput(params.get(name)) }))),
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v !== '') q.set(k, TIMES.some(([t]) => t === k) ? new Date(String(v)).toISOString() : String(v));
    location.hash = `#/sessions?${q}`;
  });
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  mount(view, h('h1', {}, 'Sessions'), form, body);
  const q = new URLSearchParams({ limit: '100' });
  for (const k of ['subject', 'target', 'protocol', 'verdict', 'q', 'from', 'to']) if (params.get(k)) q.set(k, params.get(k));
  try {
    const { sessions } = await get(`/v1/sessions?${q}`);
    if (sessions.length === 0) return mount(body, h('p', { class: 'muted' }, 'No sessions match.'));
    mount(body, table(['Opened', 'Protocol', 'Target', 'Identity', 'Commands', 'Denied', 'Closed'], sessions.map((s) => [
      h('a', { href: `#/sessions/${encodeURIComponent(s.session_id)}` }, s.opened_at),
      s.protocol, s.target, s.subject, s.commands, s.denied, s.closed_at ?? 'open',
    ]), 'sessions'));
  } catch (err) {
    mount(body, h('p', { class: 'error' }, err.message));
  }
}

/** @param {HTMLElement} view @param {string} id @param {{ roles: string[] }} user */
export async function showSession(view, id, user) {
  mount(view, h('p', { class: 'muted' }, 'Loading…'));
  try {
    const [{ session }, { events }] = await Promise.all([get(`/v1/sessions/${encodeURIComponent(id)}`), get(`/v1/sessions/${encodeURIComponent(id)}/timeline`)]);
    const facts = h('dl', { class: 'facts' });
    for (const [k, v] of [['Identity', session.subject], ['Issuer', session.issuer], ['Target', session.target], ['Protocol', session.protocol],
      ['Opened', session.opened_at], ['Closed', session.closed_at ?? 'open'], ['Client', session.client_address], ['Commands', session.commands], ['Denied', session.denied]]) {
      facts.append(h('dt', {}, k), h('dd', {}, String(v)));
    }
    const replay = h('div', { id: 'replay' });
    mount(view,
      h('p', {}, h('a', { href: '#/sessions' }, '← Sessions')),
      h('h1', {}, `Session ${id}`), facts,
      session.closed_at === null && user.roles.includes('admin') ? terminateForm(id) : null,
      h('h2', {}, 'Replay'), replay,
      h('h2', {}, 'Timeline'),
      table(['#', 'Time', 'Kind', 'Text', 'Decision', 'Rule', 'Status', 'Rows', 'Duration', 'By'], events.map((e) => [
        e.seq, e.time, e.kind, e.text ? h('pre', { class: 'inline' }, e.kind === 'command' ? highlight(e.text) : e.text) : '', // an approval's text is its comment
        e.decision ? h('span', { class: `badge decision-${e.decision}` }, e.decision) : '', e.rule_id ?? '', e.status ?? e.error_code ?? '',
        e.rows ?? '', e.duration_us == null ? '' : `${(e.duration_us / 1000).toFixed(1)} ms`, e.approver ?? '',
      ]), 'timeline'));
    await showReplay(replay, id, session, events);
  } catch (err) {
    mount(view, h('p', { class: 'error' }, err.message));
  }
}

/**
 * SSH shells: a link to the replay page, where the asciicast player runs (its WebAssembly
 * terminal needs a CSP this page does not grant); SQL statements one step at a time, here.
 */
async function showReplay(el, id, session, events) {
  if (session.protocol === 'ssh') {
    const shells = events.filter((e) => e.kind === 'command' && e.text === 'shell').length;
    if (shells === 0) return mount(el, h('p', { class: 'muted' }, 'No interactive shell was recorded in this session (exec commands are in the timeline).'));
    return mount(el, h('p', {}, h('a', { class: 'button', id: 'play-shells', href: `/ui/replay#${encodeURIComponent(id)}` }, `Play ${shells === 1 ? 'the shell' : `the ${shells} shells`} in the asciicast player`)));
  }
  mount(el, statementStepper(session.opened_at, events, parseTime) ?? h('p', { class: 'muted' }, 'No statements to step through.'));
}

/** An admin ends a live session: the proxy closes the client's connection and records who and why. */
function terminateForm(id) {
  const reason = h('input', { name: 'reason', size: '50', maxlength: '500', placeholder: 'Reason (required, recorded and shown to the client)' });
  const button = h('button', { type: 'submit', class: 'deny', id: 'terminate' }, 'Terminate session');
  const out = h('p', { role: 'status', id: 'terminate-result' });
  const form = h('form', { class: 'filters terminate', id: 'terminate-form', novalidate: true }, reason, button, out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (reason.value.trim() === '') {
      out.className = 'error';
      out.textContent = 'Write a reason first.';
      return;
    }
    button.disabled = true;
    try {
      const r = await post(`/v1/sessions/${encodeURIComponent(id)}/terminate`, { reason: reason.value });
      out.className = 'ok';
      out.textContent = `Terminated; recorded as “${r.reason}”.`;
      reason.disabled = true;
    } catch (err) {
      out.className = 'error';
      out.textContent = err.message;
      button.disabled = false;
    }
  });
  return form;
}

function select(name, options, value) {
  return h('select', { name }, ...options.map((o) => h('option', { value: o, ...(o === (value ?? '') ? { selected: true } : {}) }, o || 'any')));
}
