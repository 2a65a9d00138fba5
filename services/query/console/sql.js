// Analyst SQL: an editor over the analyst views (read-only ClickHouse SQL, run by POST /v1/sql),
// results as a table, CSV download, saved queries, and charts of recent activity.
// Saved queries live in this browser's localStorage, one list per signed-in identity: they are
// a person's scratch pad, not shared state, so the server keeps none of them.
import { post, postText } from './api.js';
import { bars, DECISION_COLOURS, stackedColumns } from './charts.js';
import { h, mount } from './dom.js';
import { download, table } from './table.js';

const VIEWS = ['activity', 'decisions', 'commands', 'sessions', 'verdicts', 'responses', 'table_access', 'approvals', 'approval_requests', 'auth_failures', 'checkpoints'];
const MAX_SHOWN = 1000;
/** Range → [span, bucket] in seconds; buckets are aligned to the epoch, as toStartOfInterval aligns them in UTC. */
const RANGES = { '24h': [86_400, 3600], '7d': [7 * 86_400, 6 * 3600], '30d': [30 * 86_400, 86_400] };

/** @param {HTMLElement} view @param {{ issuer: string, subject: string }} user */
export function showSql(view, user) {
  const saved = savedQueries(user);
  const editor = h('textarea', { id: 'sql-editor', class: 'code', rows: '8', spellcheck: 'false' },
    'SELECT subject, decision, count() AS commands\nFROM agate.decisions\nGROUP BY subject, decision\nORDER BY commands DESC\nLIMIT 50');
  const runButton = h('button', { type: 'button', id: 'run-sql' }, 'Run (Ctrl+Enter)');
  const csvButton = h('button', { type: 'button', id: 'download-csv' }, 'Download CSV');
  const name = h('input', { id: 'query-name', placeholder: 'name', size: '18' });
  const saveButton = h('button', { type: 'button', id: 'save-query' }, 'Save');
  const savedList = h('ul', { class: 'saved', id: 'saved-queries' });
  const result = h('div', { id: 'sql-result' });
  const charts = h('div', { class: 'charts', id: 'charts' });
  const range = h('select', { id: 'chart-range' }, ...Object.keys(RANGES).map((r) => h('option', { value: r, ...(r === '7d' ? { selected: true } : {}) }, `last ${r}`)));
  mount(view,
    h('h1', {}, 'Analyst SQL'),
    h('div', { class: 'title-row' }, h('h2', {}, 'Activity'), range), charts,
    h('h2', {}, 'Query'),
    h('p', { class: 'muted' }, 'Read-only SQL over the views: ', ...VIEWS.flatMap((v) => [h('button', { type: 'button', class: 'chip', onclick: () => { editor.value = `SELECT *\nFROM agate.${v}\nORDER BY time DESC\nLIMIT 100`; } }, `agate.${v}`), ' '])),
    editor,
    h('div', { class: 'buttons' }, runButton, csvButton, name, saveButton),
    h('h3', {}, 'Saved queries (this browser)'), savedList,
    result);

  const run = async () => {
    runButton.disabled = true;
    mount(result, h('p', { class: 'muted' }, 'Running…'));
    const started = performance.now();
    try {
      const { rows } = await post('/v1/sql?format=json', { sql: editor.value });
      const ms = Math.round(performance.now() - started);
      const columns = rows.length > 0 ? Object.keys(rows[0]) : [];
      mount(result,
        h('p', { class: 'muted', id: 'sql-summary' }, `${rows.length} row${rows.length === 1 ? '' : 's'} in ${ms} ms${rows.length > MAX_SHOWN ? ` (first ${MAX_SHOWN} shown; the CSV has all)` : ''}`),
        rows.length === 0 ? null : table(columns, rows.slice(0, MAX_SHOWN).map((r) => columns.map((c) => cell(r[c]))), 'sql-rows'));
    } catch (err) {
      mount(result, h('p', { class: 'error', id: 'sql-error' }, err.message));
    } finally {
      runButton.disabled = false;
    }
  };
  runButton.addEventListener('click', run);
  editor.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); void run(); } });
  csvButton.addEventListener('click', async () => {
    try {
      download('agate-query.csv', 'text/csv', await postText('/v1/sql?format=csv', { sql: editor.value }));
    } catch (err) {
      mount(result, h('p', { class: 'error' }, err.message));
    }
  });
  const renderSaved = () => mount(savedList, ...saved.list().map((q) => h('li', {},
    h('button', { type: 'button', class: 'link load', onclick: () => { editor.value = q.sql; name.value = q.name; } }, q.name), ' ',
    h('button', { type: 'button', class: 'link delete', title: 'Delete', onclick: () => { saved.remove(q.name); renderSaved(); } }, '×'))),
  saved.list().length === 0 ? h('li', { class: 'muted' }, 'none yet') : null);
  saveButton.addEventListener('click', () => {
    const n = name.value.trim() || `query ${saved.list().length + 1}`;
    saved.put(n, editor.value);
    name.value = n;
    renderSaved();
  });
  renderSaved();
  const draw = () => void drawCharts(charts, range.value);
  range.addEventListener('change', draw);
  draw();
}

function cell(v) {
  if (v === null || v === undefined) return h('span', { class: 'muted' }, 'NULL');
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** The signed-in identity's saved queries in localStorage. */
function savedQueries(user) {
  const key = `agate.console.saved-queries:${user.issuer} ${user.subject}`;
  const read = () => {
    try {
      const v = JSON.parse(localStorage.getItem(key) ?? '[]');
      return Array.isArray(v) ? v : [];
    } catch {
      return [];
    }
  };
  const write = (list) => localStorage.setItem(key, JSON.stringify(list));
  return {
    list: read,
    put: (name, sql) => write([...read().filter((q) => q.name !== name), { name, sql }].sort((a, b) => a.name.localeCompare(b.name))),
    remove: (name) => write(read().filter((q) => q.name !== name)),
  };
}

/** Three charts over the range: commands by decision over time, top identities, top denied rules. */
async function drawCharts(el, rangeKey) {
  const [span, step] = RANGES[rangeKey];
  const since = `time >= now() - INTERVAL ${span} SECOND`;
  const panel = (id, title, body) => h('figure', { class: 'chart-panel', id }, h('figcaption', {}, title), body);
  mount(el, h('p', { class: 'muted' }, 'Loading charts…'));
  try {
    const [byDecision, identities, denied] = await Promise.all([
      post('/v1/sql', { sql: `SELECT toUnixTimestamp(toStartOfInterval(time, INTERVAL ${step} SECOND, 'UTC')) AS bucket, decision, count() AS n FROM agate.decisions WHERE ${since} AND decision != '' GROUP BY bucket, decision ORDER BY bucket` }),
      post('/v1/sql', { sql: `SELECT subject, count() AS n FROM agate.commands WHERE ${since} GROUP BY subject ORDER BY n DESC, subject LIMIT 8` }),
      post('/v1/sql', { sql: `SELECT ifNull(rule_id, '(policy default)') AS rule, count() AS n FROM agate.decisions WHERE ${since} AND decision = 'deny' GROUP BY rule ORDER BY n DESC, rule LIMIT 8` }),
    ]);
    // Every bucket of the range, empty ones too, so the time axis is the range asked for.
    const buckets = new Map();
    const now = Math.floor(Date.now() / 1000);
    for (let t = Math.floor((now - span) / step + 1) * step; t <= now; t += step) {
      buckets.set(t, { bucket: new Date(t * 1000).toISOString().slice(5, 16).replace('T', ' '), values: {} });
    }
    for (const r of byDecision.rows) {
      const b = buckets.get(Number(r.bucket));
      if (b !== undefined) b.values[r.decision] = Number(r.n);
    }
    const empty = (rows, what) => rows.length === 0 ? h('p', { class: 'muted' }, `No ${what} in the last ${rangeKey}.`) : null;
    mount(el,
      panel('chart-decisions', 'Commands by decision', empty(byDecision.rows, 'commands') ?? stackedColumns([...buckets.values()], ['allow', 'mask', 'hold', 'deny'], DECISION_COLOURS, { label: 'commands by decision over time' })),
      panel('chart-identities', 'Top identities', empty(identities.rows, 'commands') ?? bars(identities.rows.map((r) => ({ label: r.subject, value: Number(r.n) })), { label: 'commands per identity' })),
      panel('chart-denied', 'Top denied rules', empty(denied.rows, 'denied commands') ?? bars(denied.rows.map((r) => ({ label: r.rule, value: Number(r.n) })), { colour: DECISION_COLOURS.deny, label: 'denials per rule' })));
  } catch (err) {
    mount(el, h('p', { class: 'error' }, `Charts need the analyst role: ${err.message}`));
  }
}
