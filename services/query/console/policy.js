// Policy: the rules in force, a command tried against them (what `agate policy test` does), and a
// backtest: a candidate policy decides the recorded commands of a period, and every verdict it
// would change is listed.
import { get, post } from './api.js';
import { h, mount } from './dom.js';
import { highlight } from './highlight.js';
import { decisionBadge, table } from './table.js';

/** @param {HTMLElement} view */
export async function showPolicy(view) {
  const rules = h('div', { id: 'policy-rules' }, h('p', { class: 'muted' }, 'Loading…'));
  const tryBox = tryForm();
  const backtest = backtestForm();
  mount(view, h('h1', {}, 'Policy'), rules, h('h2', {}, 'Try a command'), tryBox.el, h('h2', {}, 'Backtest a candidate policy'), backtest.el);
  try {
    const p = await get('/v1/policy');
    mount(rules,
      h('p', {}, 'Revision ', h('code', { id: 'policy-revision' }, p.revision), ' · default ', decisionBadge(p.default), ` · ${p.rules.length} rules`),
      p.reload_error ? h('p', { class: 'error' }, `The config file's latest edit was refused; the policy below stays in force: ${p.reload_error}`) : null,
      table(['#', 'Rule', 'Action', 'Matches', 'Message'], p.rules.map((r, i) => [
        i + 1, h('code', {}, r.id), decisionBadge(r.action), h('pre', { class: 'inline' }, describeMatch(r)), r.message ?? '',
      ]), 'rules'));
    // JSON is YAML: the rules in force, ready to edit into a candidate.
    backtest.setCandidate(JSON.stringify({ policy: { default: p.default, rules: p.rules } }, null, 2));
  } catch (err) {
    mount(rules, h('p', { class: 'error' }, err.message));
  }
}

/** A rule's match section, one condition per line. */
function describeMatch(rule) {
  const lines = Object.entries(rule.match ?? {}).map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
  if (rule.approval) lines.push(`approval: ${rule.approval.required} of ${JSON.stringify(rule.approval.approvers.claims)}, ${rule.approval.timeout_s} s`);
  return lines.join('\n') || 'every command';
}

function tryForm() {
  const text = h('textarea', { name: 'text', rows: '2', required: true, placeholder: 'DROP TABLE users' });
  const protocol = h('select', { name: 'protocol' }, ...['postgres', 'ssh', 'kubernetes'].map((p) => h('option', { value: p }, p)));
  const target = h('input', { name: 'target', placeholder: 'target name' });
  const claims = h('input', { name: 'claims', placeholder: 'repository=acme/app ref=refs/heads/main' });
  const out = h('div', { id: 'try-result' });
  const form = h('form', { class: 'stack', id: 'try-form' },
    h('label', {}, 'Command', text),
    h('div', { class: 'filters' }, h('label', {}, 'Protocol', protocol), h('label', {}, 'Target', target), h('label', { class: 'wide' }, 'Claims (name=value …)', claims),
      h('button', { type: 'submit' }, 'Decide')),
    out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const pairs = {};
    for (const word of claims.value.split(/\s+/).filter(Boolean)) {
      const i = word.indexOf('=');
      if (i > 0) pairs[word.slice(0, i)] = word.slice(i + 1);
    }
    try {
      const r = await post('/v1/policy/test', { text: text.value, protocol: protocol.value, ...(target.value ? { target: target.value } : {}), claims: pairs });
      mount(out, h('p', {}, decisionBadge(r.decision), ' ', h('strong', { class: 'rule' }, r.rule_id ?? '(policy default)'), ' — ', h('span', { class: 'reason' }, r.reason)),
        r.approval ? h('p', { class: 'muted' }, `Needs ${r.approval.required} approval(s) within ${r.approval.timeout_s} s`) : null,
        r.shell_commands ? h('p', { class: 'muted' }, `Commands read: ${r.shell_commands.map((c) => c.program).join(', ') || 'none'}`) : null);
    } catch (err) {
      mount(out, h('p', { class: 'error' }, err.message));
    }
  });
  return { el: form };
}

function backtestForm() {
  const candidate = h('textarea', { name: 'candidate', rows: '14', class: 'code', spellcheck: 'false' });
  const since = h('input', { name: 'since', value: '30d', size: '12' });
  const until = h('input', { name: 'until', placeholder: 'now', size: '22' });
  const run = h('button', { type: 'submit', id: 'run-backtest' }, 'Run backtest');
  const out = h('div', { id: 'backtest-result' });
  const form = h('form', { class: 'stack', id: 'backtest-form' },
    h('p', { class: 'muted' }, 'A policy section (or a whole agate.yaml), YAML or JSON. It decides every command recorded in the period; each verdict that would change is listed. Nothing is put in force.'),
    candidate,
    h('div', { class: 'filters' }, h('label', {}, 'Since (30d, 12h or a time)', since), h('label', {}, 'Until', until), run),
    out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    run.disabled = true;
    mount(out, h('p', { class: 'muted' }, 'Deciding the recorded commands…'));
    try {
      const r = await post('/v1/policy/backtest', { candidate: candidate.value, since: since.value, ...(until.value ? { until: until.value } : {}) });
      mount(out, ...report(r));
    } catch (err) {
      mount(out, h('p', { class: 'error', id: 'backtest-error' }, err.message));
    } finally {
      run.disabled = false;
    }
  });
  return { el: form, setCandidate: (text) => { if (candidate.value === '') candidate.value = text; } };
}

function report(r) {
  const summary = h('p', { id: 'backtest-summary' },
    h('strong', {}, `${r.changed} of ${r.examined}`), ` recorded commands would get another verdict (${r.since} – ${r.until})`,
    r.truncated ? ` — stopped at ${r.examined_until}` : '', r.unanswered ? ` · ${r.unanswered} without a policy verdict not compared` : '');
  const transitions = h('p', { id: 'backtest-transitions' }, ...Object.entries(r.transitions).flatMap(([k, n]) => {
    const [from, to] = k.split('→');
    return [h('span', { class: 'transition' }, decisionBadge(from), ' → ', decisionBadge(to), ` ${n}`), ' '];
  }));
  if (r.changes.length === 0) return [summary, h('p', { class: 'muted' }, 'No verdict would change.')];
  return [summary, transitions,
    table(['Time', 'Identity', 'Target', 'Command', 'Recorded', 'Candidate', 'Why'], r.changes.map((c) => [
      c.time.replace('T', ' ').replace('Z', ''), c.subject, c.target, h('pre', { class: 'inline' }, c.protocol === 'postgres' ? highlight(c.text) : c.text),
      h('span', {}, decisionBadge(c.recorded.decision), ' ', c.recorded.rule_id ?? 'default'),
      h('span', {}, decisionBadge(c.candidate.decision), ' ', c.candidate.rule_id ?? 'default'), c.candidate.reason,
    ]), 'backtest-changes'),
    r.changes_truncated ? h('p', { class: 'muted' }, `The first ${r.changes.length} of ${r.changed} are listed.`) : null];
}
