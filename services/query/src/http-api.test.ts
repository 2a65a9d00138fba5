import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedAgate, type EmbeddedAgate } from '../../../test/harness/embedded-agate.js';
import { sqlEscapeCorpus } from '../../../test/harness/sql-escape-corpus.js';
import { until } from '../../../test/harness/until.js';
import { ocsfErrors } from '../../../test/harness/ocsf-validator.js';
import { run } from '../../../test/harness/proc.js';
import { packageRoot } from '../../../core/src/package-root.js';

/*
 * The query API against a store filled by the real pipeline: a real PostgreSQL, node-postgres
 * clients through Agate's proxy, tokens from a real JWKS issuer, the embedded engine.
 */
const api = suite('query API over the real pipeline');

interface Ctx extends EmbeddedAgate {
  analyst: string;
  approver: string;
  nobody: string;
  sessions: Record<'alice' | 'bob', string>;
}
const ctx = {} as Ctx;

async function runAs(sub: string, repo: string, statements: string[]): Promise<void> {
  const token = await ctx.issuer.mint({ sub, repository: repo });
  const client = new pg.Client({ host: '127.0.0.1', port: ctx.agate.postgres.port, database: 'appdb', user: 'agent', password: token });
  await client.connect();
  try {
    for (const s of statements) await client.query(s).catch(() => undefined); // refusals are expected
  } finally {
    await client.end();
  }
}

async function get(path: string, token = ctx.analyst, accept?: string): Promise<{ status: number; body: any; text: string; headers: Headers }> {
  const res = await fetch(ctx.base + path, { headers: { authorization: `Bearer ${token}`, ...(accept ? { accept } : {}) } });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text, headers: res.headers };
}

async function sql(text: string, token = ctx.analyst): Promise<{ status: number; body: any }> {
  const res = await fetch(ctx.base + '/v1/sql', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ sql: text }) });
  return { status: res.status, body: await res.json() };
}

/** node:http, because fetch refuses methods such as TRACE. */
function rawRequest(method: string, path: string): Promise<{ status: number; allow: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(ctx.base + path, { method, headers: { authorization: `Bearer ${ctx.analyst}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ status: res.statusCode ?? 0, allow: res.headers.allow, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

api.before(async () => {
  Object.assign(
    ctx,
    await startEmbeddedAgate({
      prefix: 'agate-query-',
      policyYaml: `
policy:
  default: allow
  rules:
    - { id: no-drop, action: deny, message: no dropping, match: { sql: { statements: [DropStmt, TruncateStmt] } } }
`,
      queryYaml: `
  roles: { claim: groups, analyst: [sec-analysts], approver: [approvers], admin: [platform-admins] }
  sql: { max_execution_time_s: 1, max_result_rows: 1000, max_memory_bytes: 268435456 }
`,
    }),
  );
  ctx.analyst = await ctx.issuer.mint({ sub: 'analyst-1', groups: ['staff', 'sec-analysts'] });
  ctx.approver = await ctx.issuer.mint({ sub: 'approver-1', groups: ['approvers'] });
  ctx.nobody = await ctx.issuer.mint({ sub: 'someone' });
  await runAs('alice', 'acme/app', ['SELECT * FROM items', 'INSERT INTO items VALUES (10, \'delta\')', 'DROP TABLE items']);
  await runAs('bob', 'acme/infra', ['SELECT name FROM items WHERE id = 2', 'SELECT count(*) FROM items']);
  const sessions = await until('both sessions and their responses recorded', async () => {
    const r = await get('/v1/sessions?limit=10');
    const rows = (r.body?.sessions ?? []) as { subject: string; session_id: string; commands: number }[];
    const a = rows.find((s) => s.subject === 'alice');
    const b = rows.find((s) => s.subject === 'bob');
    if (a?.commands !== 3 || b?.commands !== 2) return undefined;
    const t = await get(`/v1/sessions/${a.session_id}/timeline`);
    return t.body?.events?.filter((e: { kind: string }) => e.kind === 'response').length === 3 ? { alice: a.session_id, bob: b.session_id } : undefined;
  });
  ctx.sessions = sessions;
});

api.after(() => ctx.stop?.());

api('the OpenAPI document is served without a token and lists every route', async () => {
  const res = await fetch(ctx.base + '/openapi.json');
  assert.is(res.status, 200);
  const doc = (await res.json()) as { paths: Record<string, unknown> };
  for (const p of ['/v1/sessions', '/v1/sessions/{id}/timeline', '/v1/sessions/{id}/recordings', '/v1/commands', '/v1/commands/{id}', '/v1/stats/commands', '/v1/sql', '/v1/export/ocsf']) assert.ok(doc.paths[p], p);
});

api('sessions filter by identity, claims, resource, protocol, time and verdict', async () => {
  const bySubject = await get('/v1/sessions?subject=alice');
  assert.equal(bySubject.body.sessions.map((s: { subject: string }) => s.subject), ['alice']);
  const byClaim = await get('/v1/sessions?claim=' + encodeURIComponent('repository:acme/infra'));
  assert.equal(byClaim.body.sessions.map((s: { subject: string }) => s.subject), ['bob']);
  const byVerdict = await get('/v1/sessions?verdict=deny');
  assert.equal(byVerdict.body.sessions.map((s: { subject: string }) => s.subject), ['alice']);
  assert.is((await get('/v1/sessions?target=appdb&protocol=postgres')).body.sessions.length, 2);
  assert.is((await get('/v1/sessions?target=other')).body.sessions.length, 0);
  assert.is((await get('/v1/sessions?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z')).body.sessions.length, 0);
  const future = new Date(Date.now() + 86_400_000).toISOString();
  assert.is((await get(`/v1/sessions?from=2000-01-01T00:00:00Z&to=${future}`)).body.sessions.length, 2);
  assert.is((await get('/v1/sessions?from=yesterday')).status, 400);
  // Sessions by what they ran: case-insensitive text of any command.
  assert.equal((await get('/v1/sessions?q=drop%20table')).body.sessions.map((s: { subject: string }) => s.subject), ['alice']);
  assert.equal((await get('/v1/sessions?q=' + encodeURIComponent('WHERE id = 2'))).body.sessions.map((s: { subject: string }) => s.subject), ['bob']);
  assert.is((await get('/v1/sessions?q=no_such_text_anywhere')).body.sessions.length, 0);
});

api('sessions page with an opaque cursor, newest first, without repeats', async () => {
  const first = await get('/v1/sessions?limit=1');
  assert.is(first.body.sessions.length, 1);
  assert.type(first.body.next_cursor, 'string');
  assert.is(first.headers.get('x-next-cursor'), first.body.next_cursor);
  const second = await get(`/v1/sessions?limit=1&cursor=${first.body.next_cursor}`);
  assert.is(second.body.sessions.length, 1);
  assert.is.not(second.body.sessions[0].session_id, first.body.sessions[0].session_id);
  assert.ok(second.body.sessions[0].opened_at <= first.body.sessions[0].opened_at);
  const third = await get(`/v1/sessions?limit=1&cursor=${second.body.next_cursor}`);
  assert.is(third.body.sessions.length, 0);
  assert.is((await get('/v1/sessions?cursor=not-a-cursor!')).body.error.code, 'API_BAD_REQUEST');
});

api('sessions as NDJSON and CSV', async () => {
  const nd = await get('/v1/sessions?format=ndjson');
  assert.match(nd.headers.get('content-type') ?? '', /application\/x-ndjson/);
  const lines = nd.text.trim().split('\n').map((l) => JSON.parse(l));
  assert.is(lines.length, 2);
  const csv = await get('/v1/sessions', ctx.analyst, 'text/csv');
  assert.match(csv.headers.get('content-type') ?? '', /text\/csv/);
  const rows = csv.text.trim().split('\r\n');
  assert.is(rows[0]!.split(',')[0], 'session_id');
  assert.is(rows.length, 3);
});

api('a session timeline lists commands, verdicts and responses in ledger order', async () => {
  const t = await get(`/v1/sessions/${ctx.sessions.alice}/timeline`);
  const events = t.body.events as { kind: string; seq: number; command_id: string; decision: string | null; text: string | null; status: string | null }[];
  assert.equal(events.map((e) => e.kind), ['command', 'verdict', 'response', 'command', 'verdict', 'response', 'command', 'verdict', 'response']);
  assert.ok(events.every((e, i) => i === 0 || e.seq > events[i - 1]!.seq));
  assert.is(events[0]!.text, 'SELECT * FROM items');
  assert.is(events[7]!.decision, 'deny');
  assert.is(events[8]!.status, 'refused');
  const page = await get(`/v1/sessions/${ctx.sessions.alice}/timeline?limit=4`);
  assert.is(page.body.events.length, 4);
  const rest = await get(`/v1/sessions/${ctx.sessions.alice}/timeline?cursor=${page.body.next_cursor}`);
  assert.is(rest.body.events.length, 5);
  assert.is((await get('/v1/sessions/no-such-session/timeline')).status, 404);
  const detail = await get(`/v1/sessions/${ctx.sessions.alice}`);
  assert.is(detail.body.commands.length, 3);
  assert.is((await get(`/v1/sessions/${ctx.sessions.bob}/commands`)).body.commands.length, 2);
});

api('a command detail carries its verdict, response and ledger position', async () => {
  const search = await get('/v1/commands?q=drop%20table');
  assert.is(search.body.commands.length, 1);
  const id = search.body.commands[0].command_id;
  const d = await get(`/v1/commands/${id}`);
  assert.is(d.body.command.text, 'DROP TABLE items');
  assert.is(d.body.command.verdict.decision, 'deny');
  assert.is(d.body.command.verdict.rule_id, 'no-drop');
  assert.is(d.body.command.decision.decision, 'deny');
  assert.is(d.body.command.decision.decided_by, 'policy');
  assert.is(d.body.command.decision.hold, null);
  assert.equal(d.body.command.verdicts.map((v: { decision: string }) => v.decision), ['deny']);
  assert.is(d.body.command.response.status, 'refused');
  assert.type(d.body.command.seq, 'number');
  assert.equal(d.body.command.approvals, []);
  assert.is((await get('/v1/commands/nope')).status, 404);
});

api('text search is case-insensitive and filters by subject', async () => {
  assert.is((await get('/v1/commands?q=ITEMS')).body.commands.length, 5);
  assert.is((await get('/v1/commands?q=items&subject=bob')).body.commands.length, 2);
  assert.is((await get('/v1/commands?q=zzz-nothing')).body.commands.length, 0);
});

api('counts over time add up to every command and its verdict', async () => {
  const r = await get('/v1/stats/commands?interval=minute&from=' + new Date(Date.now() - 3_600_000).toISOString());
  const total = (r.body.buckets as { commands: number; denied: number }[]).reduce((a, b) => ({ commands: a.commands + b.commands, denied: a.denied + b.denied }), { commands: 0, denied: 0 });
  assert.equal(total, { commands: 5, denied: 1 });
  const buckets = r.body.buckets as { commands: number; allowed: number; denied: number; masked: number; pending: number }[];
  assert.is(buckets.reduce((n, b) => n + b.allowed + b.denied + b.masked + b.pending, 0), 5, 'each command once, by its final decision');
  // `from` alone runs to the last bucket one answer may hold (documented), rather than failing.
  const early = await get('/v1/stats/commands?interval=minute&from=2000-01-01T00:00:00Z');
  assert.is(early.status, 200);
  assert.is(early.body.to, '2000-01-02T01:00:00.000Z');
  const wide = await get('/v1/stats/commands?interval=minute&from=2000-01-01T00:00:00Z&to=2000-02-01T00:00:00Z');
  assert.is(wide.status, 400);
  assert.match(wide.body.error.message, /more than 1500 minutes/);
});

api('query API input: JSON bodies by Content-Type, empty cursors, unknown methods', async () => {
  const post = (body: string, contentType?: string) =>
    fetch(ctx.base + '/v1/sql', { method: 'POST', headers: { authorization: `Bearer ${ctx.analyst}`, ...(contentType ? { 'content-type': contentType } : {}) }, body });
  for (const body of ['[null, null]', '"SELECT 1"', '42', 'null', '{"sql": 1}', 'SELECT 1']) {
    const r = await post(body, 'application/json');
    assert.is(r.status, 400, body);
    assert.match(((await r.json()) as { error: { message: string } }).error.message, /JSON body must be an object \{"sql"/, body);
  }
  const plain = await post('SELECT 41 + 1 AS n', 'text/plain');
  assert.is(plain.status, 200);
  assert.equal(((await plain.json()) as { rows: unknown[] }).rows, [{ n: 42 }]);
  // curl -d sends a form type: a JSON object body still works, and so does bare SQL.
  assert.is((await post('{"sql": "SELECT 1 AS one"}', 'application/x-www-form-urlencoded')).status, 200);
  assert.is((await post('SELECT 1 AS one', 'application/x-www-form-urlencoded')).status, 200);
  assert.is((await get('/v1/sessions?cursor=')).status, 200);
  assert.is((await get('/v1/commands?cursor=')).status, 200);
  for (const method of ['TRACE', 'PUT', 'DELETE', 'PATCH']) {
    const r = await rawRequest(method, '/v1/sessions');
    assert.is(r.status, 405, method);
    assert.is(r.allow, 'GET', method);
    assert.is((JSON.parse(r.body) as { error: { code: string } }).error.code, 'API_METHOD_NOT_ALLOWED');
  }
  const sqlGet = await fetch(ctx.base + '/v1/sql', { headers: { authorization: `Bearer ${ctx.analyst}` } });
  assert.is(sqlGet.status, 405);
  assert.is(sqlGet.headers.get('allow'), 'POST');
  assert.is((await rawRequest('TRACE', '/healthz')).status, 405);
});

api('roles come from the configured claim, each granting its own routes', async () => {
  // Approvers see the held commands, not the trail.
  assert.is((await get('/v1/approvals', ctx.approver)).status, 200);
  assert.is((await get('/v1/sessions', ctx.approver)).body.error.code, 'API_FORBIDDEN');
  const refused = await sql('SELECT 1', ctx.approver);
  assert.is(refused.status, 403);
  assert.is(refused.body.error.code, 'API_FORBIDDEN');
  // Auditors read, export and verify, without SQL.
  const auditor = await ctx.issuer.mint({ sub: 'auditor-1', groups: ['auditor'] });
  assert.is((await get('/v1/sessions', auditor)).status, 200);
  assert.is((await get('/v1/ledger/verify', auditor)).status, 200);
  assert.is((await get('/v1/export/chains', auditor)).status, 200);
  assert.is((await sql('SELECT 1', auditor)).body.error.code, 'API_FORBIDDEN');
  // A token holding no role reads nothing, not even approvals or the ledger.
  for (const path of ['/v1/sessions', '/v1/commands', '/v1/approvals', '/v1/ledger/verify', '/v1/ledger/checkpoints', '/v1/export/chains', '/v1/auth-failures']) {
    assert.is((await get(path, ctx.nobody)).body.error.code, 'API_FORBIDDEN', path);
  }
  assert.is((await sql('SELECT 1', ctx.nobody)).body.error.code, 'API_FORBIDDEN');
  assert.is((await get('/v1/sessions', 'not-a-token')).status, 401);
});

api('analyst SQL reads the views', async () => {
  const r = await sql("SELECT subject, count() AS n FROM agate.commands GROUP BY subject ORDER BY subject");
  assert.is(r.status, 200);
  assert.equal(r.body.rows.map((x: { subject: string; n: string | number }) => [x.subject, Number(x.n)]), [['alice', 3], ['bob', 2]]);
  assert.is((await sql('SELECT count() FROM agate.approvals')).status, 200);
  assert.is((await sql('SELECT count() FROM agate.checkpoints')).status, 200);
});

api('writes, DDL and every escape in the corpus are refused before they run', async () => {
  const before = (await sql('SELECT count() AS n FROM agate.commands')).body.rows[0].n;
  for (const text of [
    'INSERT INTO agate.ledger SELECT * FROM agate.ledger',
    'ALTER TABLE agate.ledger DELETE WHERE 1',
    'DROP TABLE agate.ledger',
    'TRUNCATE TABLE agate.ledger',
    'CREATE TABLE agate.x (a UInt8) ENGINE = Memory',
    'SET readonly = 0',
    'KILL QUERY WHERE 1',
  ]) {
    const r = await sql(text);
    assert.is(r.status, 400, text);
    assert.is(r.body.error.code, 'SQL_REFUSED', text);
  }
  assert.is((await sql('SELECT 1; DROP TABLE agate.ledger')).body.error.code, 'SQL_INVALID');
  // The escape corpus through HTTP: each refused, naming what it used, with no secret in the answer.
  const secret = join(ctx.dir, 'canary-secret.txt');
  const canary = `canary-${process.pid}-${Date.now()}`;
  writeFileSync(secret, canary, { mode: 0o600 });
  for (const { family, sql: text, names } of sqlEscapeCorpus(secret)) {
    const res = await fetch(ctx.base + '/v1/sql', { method: 'POST', headers: { authorization: `Bearer ${ctx.analyst}`, 'content-type': 'application/json' }, body: JSON.stringify({ sql: text }) });
    const raw = await res.text();
    assert.not.ok(raw.includes(canary), family);
    assert.not.ok(raw.includes('AGATE_'), family);
    assert.is(res.status, 400, `${family}: ${raw}`);
    const body = JSON.parse(raw);
    assert.is(body.error.code, 'SQL_REFUSED', `${family}: ${raw}`);
    assert.ok(body.error.message.includes(names), `${family}: ${raw}`);
  }
  assert.is((await sql('SELECT count() AS n FROM agate.commands')).body.rows[0].n, before);
  // The shared session is still writable: the pipeline records a new session.
  await runAs('carol', 'acme/app', ['SELECT 1']);
  await until('carol recorded', async () => ((await get('/v1/sessions?subject=carol')).body.sessions.length === 1 ? true : undefined));
});

api('a query over its limits is stopped with a clear error', async () => {
  const slow = await sql('SELECT sum(cityHash64(number)) FROM numbers(100000000000)');
  assert.is(slow.status, 422);
  assert.is(slow.body.error.code, 'SQL_LIMIT_EXCEEDED');
  assert.match(slow.body.error.message, /max_execution_time = 1 s/);
  const many = await sql('SELECT number FROM numbers(5000)');
  assert.is(many.body.error.code, 'SQL_LIMIT_EXCEEDED');
  assert.match(many.body.error.message, /max_result_rows = 1000 rows/);
  // ~1 MB a row: the 256 MiB limit is reached in a few hundred rows, long before the time limit on a loaded machine.
  const big = await sql("SELECT groupArray(repeat('x', 1000000)) FROM numbers(100000)");
  assert.is(big.body.error.code, 'SQL_LIMIT_EXCEEDED', big.body.error.message);
  assert.match(big.body.error.message, /max_memory_usage/);
  assert.is((await sql('SELEC 1')).body.error.code, 'SQL_INVALID');
});

api('OCSF export is valid OCSF 1.3.0 and carries the final decision, the rule and the ledger position', async () => {
  const r = await get('/v1/export/ocsf?chain=embedded&after=0&limit=100');
  assert.is(r.status, 200);
  const events = r.text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
  assert.ok(events.length >= 8);
  assert.equal(await ocsfErrors(events), {}, 'valid OCSF 1.3.0');
  const drop = events.find((e) => e.query_info?.query_string === 'DROP TABLE items')!;
  assert.is(drop.class_uid, 6005);
  assert.is(drop.activity_id, 7);
  assert.is(drop.unmapped.agate.decision.decision, 'deny');
  assert.is(drop.unmapped.agate.decision.decided_by, 'policy');
  assert.is(drop.unmapped.agate.decision.rule_id, 'no-drop');
  assert.is(drop.disposition_id, 2);
  assert.is(drop.metadata.sequence, drop.unmapped.agate.ledger.seq);
  assert.ok(events.some((e) => e.class_uid === 3002 && e.user.name === 'alice'));
  const after = await get(`/v1/export/ocsf?after=${drop.metadata.sequence}`);
  assert.ok(after.text.trim().split('\n').filter(Boolean).every((l) => JSON.parse(l).metadata.sequence > drop.metadata.sequence));
});

async function postJson(path: string, body: unknown, token = ctx.analyst): Promise<{ status: number; body: any }> {
  const res = await fetch(ctx.base + path, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

api('policy: the rules in force, one command tried, and a backtest of a candidate over the record (API and CLI)', async () => {
  const inForce = await get('/v1/policy');
  assert.is(inForce.status, 200);
  assert.equal([inForce.body.default, inForce.body.rules.map((r: { id: string }) => r.id), inForce.body.reload_error], ['allow', ['no-drop'], null]);
  assert.is((await get('/v1/policy', ctx.approver)).status, 403);
  const tried = await postJson('/v1/policy/test', { text: 'TRUNCATE items', claims: { repository: 'acme/app' } });
  assert.equal([tried.body.decision, tried.body.rule_id, tried.body.reason], ['deny', 'no-drop', 'no dropping']);
  // A candidate that also refuses acme/infra's reads: bob's two SELECTs change, nothing else.
  const candidate = `policy:
  default: allow
  rules:
    - { id: no-drop, action: deny, message: no dropping, match: { sql: { statements: [DropStmt, TruncateStmt] } } }
    - { id: infra-no-reads, action: deny, match: { claims: { repository: acme/infra }, sql: { statements: [SelectStmt] } } }
`;
  const r = await postJson('/v1/policy/backtest', { candidate, since: '1h' });
  assert.is(r.status, 200, JSON.stringify(r.body));
  const recorded = await sql('SELECT count() AS n FROM agate.commands');
  assert.is(r.body.examined, Number(recorded.body.rows[0].n));
  assert.equal([r.body.changed, r.body.transitions, r.body.unanswered, r.body.truncated], [2, { 'allow→deny': 2 }, 0, false]);
  assert.equal(r.body.changes.map((c: { subject: string; text: string; candidate: { rule_id: string } }) => [c.subject, c.text, c.candidate.rule_id]), [
    ['bob', 'SELECT name FROM items WHERE id = 2', 'infra-no-reads'], ['bob', 'SELECT count(*) FROM items', 'infra-no-reads'],
  ]);
  assert.is(r.body.changes[0].session_id, ctx.sessions.bob);
  // The period bounds the record read: an hour that ended before anything ran holds nothing.
  const before = await postJson('/v1/policy/backtest', { candidate, since: '2000-01-01T00:00:00Z', until: '2000-01-01T01:00:00Z' });
  assert.equal([before.body.examined, before.body.changed], [0, 0]);
  const limited = await postJson('/v1/policy/backtest', { candidate, since: '1h', max_commands: 2 });
  assert.equal([limited.body.examined, limited.body.truncated], [2, true]);
  const bad = await postJson('/v1/policy/backtest', { candidate: 'rules:\n  - { id: x, action: hodl }\n', source: 'mine.yaml', since: '1h' });
  assert.is(bad.status, 400);
  assert.match(bad.body.error.message, /mine\.yaml:2: rules\[0\]\.action/);
  assert.is((await postJson('/v1/policy/backtest', { candidate, since: 'last week' })).status, 400);
  assert.is((await postJson('/v1/policy/backtest', { candidate, since: '1h' }, ctx.approver)).status, 403);
  // The CLI through the running API (not --offline): same answer, exit 3 because verdicts change.
  const cfg = join(ctx.dir, 'cli.yaml');
  writeFileSync(cfg, 'identity: { dev_issuer: { enabled: true } }\n');
  const candidateFile = join(ctx.dir, 'candidate.yaml');
  writeFileSync(candidateFile, candidate);
  const cli = await run(process.execPath, [join(packageRoot(), 'bin/agate.js'), 'policy', 'backtest', '--config', cfg, '--candidate', candidateFile, '--since', '1h', '--json', '--url', ctx.base, '--token', ctx.analyst], { timeoutMs: 30_000 });
  assert.is(cli.code, 3, cli.stderr);
  assert.equal((JSON.parse(cli.stdout) as { changes: { command_id: string }[] }).changes.map((c) => c.command_id), r.body.changes.map((c: { command_id: string }) => c.command_id));
});

api('an admin terminates a live session: the client gets the reason, other roles may not', async () => {
  const admin = await ctx.issuer.mint({ sub: 'admin-1', groups: ['platform-admins'] });
  const client = new pg.Client({ host: '127.0.0.1', port: ctx.agate.postgres.port, database: 'appdb', user: 'agent', password: await ctx.issuer.mint({ sub: 'terminated-agent' }) });
  const failure = new Promise<Error & { code?: string }>((resolve) => client.on('error', resolve));
  await client.connect();
  try {
    await client.query('SELECT 1');
    // A subject of its own: an earlier test's ended session of another subject must not be picked.
    const id = await until('the live session recorded', async () => ((await get('/v1/sessions?subject=terminated-agent')).body?.sessions ?? [])[0]?.session_id as string | undefined);
    assert.is((await postJson(`/v1/sessions/${id}/terminate`, { reason: 'x' }, ctx.analyst)).status, 403);
    assert.is((await postJson(`/v1/sessions/${id}/terminate`, { reason: '  ' }, admin)).status, 400);
    assert.is((await postJson('/v1/sessions/00000000-0000-4000-8000-000000000000/terminate', { reason: 'x' }, admin)).status, 404);
    const r = await postJson(`/v1/sessions/${id}/terminate`, { reason: 'leaked\ncredentials' }, admin);
    assert.is(r.status, 200, JSON.stringify(r.body));
    const expected = `terminated by administrator admin-1 (${ctx.issuer.issuer}): leaked credentials`;
    assert.equal(r.body, { session_id: id, terminated: true, reason: expected });
    const err = await failure;
    assert.equal([err.code, err.message], ['57P01', expected]);
    await until('the session recorded as closed', async () => ((await get(`/v1/sessions/${id}`)).body?.session?.closed_at ?? undefined) as string | undefined);
  } finally {
    await client.end().catch(() => undefined);
  }
});

api.run();
