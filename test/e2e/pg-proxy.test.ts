// End to end: the real `agate start` process in front of a real PostgreSQL 15, clients logging in
// with tokens from a real OIDC issuer (JWKS over HTTP), driven by the real psql binary and by
// node-postgres; the audit trail read back through the query API and the CLI; the ledger
// verified, tampered with, and verified again.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { EmbeddedStore } from '../../core/src/store/embedded.js';
import type { SessionRow } from '../../services/query/src/queries.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { run } from '../harness/proc.js';
import { agateConfig, cleanEnv, startAgateProcess, type AgateProcess, type CliResult } from './agate-process.js';
import { until } from '../harness/until.js';
import { connectAgent } from '../harness/agent-client.js';
import { teardownAll } from '../harness/teardown.js';

const PSQL = '/usr/bin/psql';

interface TimelineRow {
  command_id: string;
  sequence: number;
  text: string;
  decision: string | null;
  rule_id: string | null;
  reason: string | null;
  verdict_source: string | null;
  status: string | null;
  command_tag: string | null;
  rows: number | null;
  error_code: string | null;
  error_message: string | null;
}

interface AuthFailureRow {
  target: string;
  reason_code: string;
  message: string;
  claimed_issuer: string | null;
  claimed_subject: string | null;
}

interface Env {
  pg: PostgresServer;
  issuer: OidcIssuer;
  /** An issuer Agate does not trust (auth suite only). */
  other?: OidcIssuer;
  agate: AgateProcess;
  clients: pg.Client[];
}

/** Starts PostgreSQL, the issuer(s) and `agate start`, registering each in `into` as it comes up. */
async function setup(into: Partial<Env>, withOtherIssuer = false): Promise<Env> {
  into.clients = [];
  // Started in parallel; whatever did start is registered for teardown even if another failed.
  const [pgServer, issuer, other] = await Promise.allSettled([
    startPostgres(),
    startOidcIssuer({ audience: 'agate' }),
    withOtherIssuer ? startOidcIssuer({ audience: 'agate' }) : Promise.resolve(undefined),
  ]);
  if (pgServer.status === 'fulfilled') into.pg = pgServer.value;
  if (issuer.status === 'fulfilled') into.issuer = issuer.value;
  if (other.status === 'fulfilled') into.other = other.value;
  for (const r of [pgServer, issuer, other]) if (r.status === 'rejected') throw r.reason;
  // The refused-logins suite hands Agate the upstream password through the environment.
  const passwordEnv = withOtherIssuer ? 'AGATE_E2E_APPDB_PASSWORD' : undefined;
  into.agate = await startAgateProcess({
    configYaml: agateConfig({ pg: into.pg!, issuer: into.issuer!, passwordEnv }),
    env: passwordEnv === undefined ? {} : { [passwordEnv]: into.pg!.users.scram.password },
  });
  // Started where the config said.
  const config = readFileSync(into.agate.configPath, 'utf8');
  assert.match(config, `listen: "127.0.0.1:${into.agate.pgPort}"`);
  assert.match(config, `listen: "${into.agate.apiUrl.slice('http://'.length)}"`);
  assert.match(config, passwordEnv === undefined ? `password: { value: ` : `password: { env: "${passwordEnv}" }`);
  return into as Env;
}

async function teardown(env: Partial<Env>): Promise<void> {
  await teardownAll(env.clients, [() => env.agate?.dispose(), () => env.other?.close(), () => env.issuer?.close(), () => env.pg?.stop()]);
}

const conninfo = (agate: AgateProcess, dbname = 'appdb') => `host=127.0.0.1 port=${agate.pgPort} dbname=${dbname} user=agent sslmode=disable`;

/** The real psql through Agate, the token as password; -w: never prompt. */
async function psql(agate: AgateProcess, token: string, sql: string, dbname = 'appdb'): Promise<CliResult> {
  const args = ['-X', '-A', '-t', '-w', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose', conninfo(agate, dbname), '-c', sql];
  const r = await run(PSQL, args, { env: cleanEnv({ PGPASSWORD: token, PGCONNECT_TIMEOUT: '10' }), timeoutMs: 30_000 });
  if (r.timedOut) throw new Error(`psql -c ${JSON.stringify(sql)} timed out: ${r.stderr}`);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

const pgClient = (env: Env, token: string, database = 'appdb'): Promise<pg.Client> =>
  connectAgent({ port: env.agate.pgPort, token, database, connectionTimeoutMillis: 10_000, track: env.clients });

type PgError = Error & { code?: string };

async function rejection(p: Promise<unknown>, what: string): Promise<PgError> {
  try {
    await p;
  } catch (err) {
    return err as PgError;
  }
  assert.unreachable(`${what} should have failed`);
  throw new Error('unreachable');
}

async function api<T>(agate: AgateProcess, path: string, token: string | undefined): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const res = await fetch(agate.apiUrl + path, { headers, signal: AbortSignal.timeout(15_000) });
  return { status: res.status, body: (await res.json()) as T };
}

async function apiOk<T>(agate: AgateProcess, path: string, token: string): Promise<T> {
  const r = await api<T>(agate, path, token);
  assert.is(r.status, 200, `GET ${path}: ${JSON.stringify(r.body)}`);
  return r.body;
}

/** The ledger is written asynchronously, and a read may fail while it catches up: retried. */
const RECORDED = { retryErrors: true, everyMs: 150 };

async function itemsCount(env: Env): Promise<string> {
  return env.pg.psql('SELECT count(*) FROM items');
}

// =============================================================================================
// Statements through the proxy, the audit trail, the ledger
// =============================================================================================

const proxy = suite('agate start: psql and node-postgres through the proxy, audit trail, ledger');
const parts: Partial<Env> = {};
let ready: Promise<Env>;
const tokens = { psql: '', pg: '', auditor: '' };
const subjects = { psql: 'repo:acme/psql-agent:ref:refs/heads/main', pg: 'project_path:acme/pg-agent:ref_type:branch:ref:main', auditor: 'auditor@example.com' };
let pgSessionId = '';
let agentConnection: pg.Client | undefined;
/** The node-postgres session the statement tests share (opened by the first of them). */
const agentClient = (): pg.Client => {
  assert.ok(agentConnection, 'the node-postgres session was opened by the SELECT test');
  return agentConnection!;
};

proxy.before(() => {
  ready = (async () => {
    const env = await setup(parts);
    const { issuer } = env;
    tokens.psql = await issuer.mint(issuer.githubActionsClaims({ repository: 'acme/psql-agent' }));
    tokens.pg = await issuer.mint(issuer.gitlabCiClaims({ project_path: 'acme/pg-agent' }), { alg: 'ES256' });
    tokens.auditor = await issuer.mint({ sub: subjects.auditor, agate_role: 'auditor' });
    return env;
  })();
  ready.catch(() => {}); // reported by every test that awaits it: a failed start fails, never skips
});
proxy.after(() => teardown(parts));

proxy('psql: SELECT through Agate prints the rows', async () => {
  const env = await ready;
  const r = await psql(env.agate, tokens.psql, 'SELECT name FROM items ORDER BY id');
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'alpha\nbeta\ngamma\n');
});

proxy('psql: DROP TABLE is refused with 42501 by rule no-drop; the table survives', async () => {
  const env = await ready;
  const r = await psql(env.agate, tokens.psql, 'DROP TABLE items');
  assert.ok(r.code !== 0, `psql exited ${r.code}`);
  assert.match(r.stderr, 'ERROR:  42501: Agate refused the statement by rule "no-drop": DROP needs a human');
  assert.is(r.stdout, '');
  assert.is(await itemsCount(env), '3');
});

proxy('psql: the \\dt meta-command works through the proxy', async () => {
  const env = await ready;
  const r = await psql(env.agate, tokens.psql, '\\dt');
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout.trim(), `public|items|table|${env.pg.users.scram.user}`);
});

proxy('node-postgres: SELECT returns the 3 rows', async () => {
  const env = await ready;
  const client = (agentConnection = await pgClient(env, tokens.pg));
  const r = await client.query('SELECT id, name FROM items ORDER BY id');
  assert.is(r.rowCount, 3);
  assert.equal(r.rows, [{ id: 1, name: 'alpha' }, { id: 2, name: 'beta' }, { id: 3, name: 'gamma' }]);
  assert.is(r.command, 'SELECT');
});

proxy('node-postgres: DROP TABLE rejects with 42501 and the session stays usable', async () => {
  const env = await ready;
  const client = agentClient();
  const err = await rejection(client.query('DROP TABLE items'), 'DROP TABLE items');
  assert.is(err.code, '42501');
  assert.match(err.message, 'rule "no-drop": DROP needs a human');
  assert.is(await itemsCount(env), '3');
});

proxy('node-postgres: a multi-statement query with a denied statement is refused as a whole', async () => {
  const env = await ready;
  const client = agentClient();
  const err = await rejection(client.query('SELECT 1; DROP TABLE items'), 'SELECT 1; DROP TABLE items');
  assert.is(err.code, '42501');
  assert.match(err.message, 'no-drop');
  // The allowed statement of a refused query does not run either.
  const err2 = await rejection(client.query('CREATE TABLE t1(); DROP TABLE t1'), 'CREATE TABLE t1(); DROP TABLE t1');
  assert.is(err2.code, '42501');
  assert.is(await env.pg.psql("SELECT to_regclass('public.t1') IS NULL"), 't', 'CREATE TABLE t1 ran although its query was refused');
  assert.is(await itemsCount(env), '3');
  // Control: when every statement is allowed, the whole string runs.
  const both = (await client.query("INSERT INTO items VALUES (4, 'delta'); DELETE FROM items WHERE id = 4")) as unknown as pg.QueryResult[];
  assert.equal(both.map((r) => [r.command, r.rowCount]), [['INSERT', 1], ['DELETE', 1]]);
  assert.is(await itemsCount(env), '3');
});

proxy("node-postgres: a syntax error the server finds comes back as the server's own error (42601)", async () => {
  await ready;
  const client = agentClient();
  // Valid grammar (Agate's parser accepts it, policy allows it), rejected by PostgreSQL's analysis.
  const err = await rejection(client.query('SELECT DEFAULT'), 'SELECT DEFAULT');
  assert.is(err.code, '42601');
  assert.is(err.message, 'DEFAULT is not allowed in this context');
  assert.is((err as PgError & { routine?: string }).routine, 'transformExprRecurse', 'the error is the server\'s, relayed as is');
  const after = await client.query('SELECT count(*)::int AS n FROM items');
  assert.equal(after.rows, [{ n: 3 }]);
});

proxy('node-postgres: SQL Agate cannot parse is refused (agate.unparseable), never forwarded; the session stays usable', async () => {
  await ready;
  const client = agentClient();
  const err = await rejection(client.query('SELEC 1'), 'SELEC 1');
  assert.is(err.code, '42501');
  assert.match(err.message, 'rule "agate.unparseable"');
  assert.match(err.message, 'syntax error at or near "SELEC"');
  const after = await client.query('SELECT count(*)::int AS n FROM items');
  assert.equal(after.rows, [{ n: 3 }]);
  await client.end();
});

proxy('query API: GET /v1/sessions lists the sessions with the tokens\' subjects', async () => {
  const env = await ready;
  const { agate, issuer } = env;
  const psqlSessions = await until('the 3 closed psql sessions', async () => {
    const { sessions } = await apiOk<{ sessions: SessionRow[] }>(agate, `/v1/sessions?subject=${encodeURIComponent(subjects.psql)}`, tokens.auditor);
    return sessions.length === 3 && sessions.every((s) => s.closed_at !== null) ? sessions : undefined;
  }, RECORDED);
  for (const s of psqlSessions) {
    assert.is(s.subject, subjects.psql);
    assert.is(s.issuer, issuer.issuer);
    assert.is(s.target, 'appdb');
    assert.is(s.protocol, 'postgres');
    assert.is(s.proxy_id, 'e2e-agate');
    assert.match(s.client_address, /^127\.0\.0\.1:\d+$/);
  }
  // psql ran three times: SELECT, DROP (denied), \dt; each was one statement.
  assert.equal(psqlSessions.map((s) => s.commands), [1, 1, 1]);
  assert.equal(psqlSessions.map((s) => s.denied).sort(), [0, 0, 1]);

  const { sessions: all } = await apiOk<{ sessions: SessionRow[] }>(agate, '/v1/sessions', tokens.auditor);
  const pgSessions = all.filter((s) => s.subject === subjects.pg);
  assert.is(pgSessions.length, 1, JSON.stringify(all));
  assert.is(all.length, 4, 'no other sessions');
  pgSessionId = pgSessions[0]!.session_id;
  assert.is(pgSessions[0]!.issuer, issuer.issuer);
  // Newest first: the node-postgres session opened after every psql session.
  assert.is(all[0]!.session_id, pgSessionId);
});

proxy('query API: GET /v1/sessions/:id returns the commands in order with verdicts and results', async () => {
  const env = await ready;
  assert.ok(pgSessionId, 'the node-postgres session was found by the previous test');
  const expected = [
    ['SELECT id, name FROM items ORDER BY id', 'allow', null, 'ok', 'SELECT 3', 3, null],
    ['DROP TABLE items', 'deny', 'no-drop', 'refused', null, 0, '42501'],
    ['SELECT 1', 'allow', null, 'refused', null, 0, '42501'],
    ['DROP TABLE items', 'deny', 'no-drop', 'refused', null, 0, '42501'],
    ['CREATE TABLE t1()', 'allow', null, 'refused', null, 0, '42501'],
    ['DROP TABLE t1', 'deny', 'no-drop', 'refused', null, 0, '42501'],
    ["INSERT INTO items VALUES (4, 'delta')", 'allow', null, 'ok', 'INSERT 0 1', 1, null],
    ['DELETE FROM items WHERE id = 4', 'allow', null, 'ok', 'DELETE 1', 1, null],
    ['SELECT DEFAULT', 'allow', null, 'error', null, 0, '42601'],
    ['SELECT count(*)::int AS n FROM items', 'allow', null, 'ok', 'SELECT 1', 1, null],
    ['SELEC 1', 'deny', 'agate.unparseable', 'refused', null, 0, '42501'],
    ['SELECT count(*)::int AS n FROM items', 'allow', null, 'ok', 'SELECT 1', 1, null],
  ];
  const body = await until('the complete node-postgres session', async () => {
    const b = await apiOk<{ session: SessionRow; commands: TimelineRow[] }>(env.agate, `/v1/sessions/${pgSessionId}`, tokens.auditor);
    const complete = b.session.closed_at !== null && b.commands.length === expected.length && b.commands.every((c) => c.decision !== null && c.status !== null);
    return complete ? b : undefined;
  }, RECORDED);
  assert.is(body.session.session_id, pgSessionId);
  assert.is(body.session.subject, subjects.pg);
  assert.is(body.session.commands, expected.length);
  assert.is(body.session.denied, 4);
  assert.equal(body.commands.map((c) => c.sequence), expected.map((_, i) => i + 1));
  assert.equal(body.commands.map((c) => [c.text, c.decision, c.rule_id, c.status, c.command_tag, c.rows, c.error_code]), expected);
  for (const c of body.commands) assert.is(c.verdict_source, 'policy');
  const drop = body.commands[1]!;
  assert.is(drop.reason, 'DROP needs a human');
  assert.match(drop.error_message ?? '', 'DROP needs a human');
  assert.match(body.commands[2]!.error_message ?? '', 'not run: another statement in the same query was refused');
});

proxy('query API: the psql sessions show the SELECT (ok, SELECT 3, 3 rows) and the refused DROP', async () => {
  const env = await ready;
  const { sessions } = await apiOk<{ sessions: SessionRow[] }>(env.agate, `/v1/sessions?subject=${encodeURIComponent(subjects.psql)}`, tokens.auditor);
  const timelines = await Promise.all(
    sessions.map((s) => until(`session ${s.session_id}`, async () => {
      const b = await apiOk<{ commands: TimelineRow[] }>(env.agate, `/v1/sessions/${s.session_id}`, tokens.auditor);
      return b.commands.length === 1 && b.commands[0]!.status !== null ? b.commands[0]! : undefined;
    }, RECORDED)),
  );
  const select = timelines.find((c) => c.text === 'SELECT name FROM items ORDER BY id');
  const drop = timelines.find((c) => c.text === 'DROP TABLE items');
  assert.ok(select && drop, JSON.stringify(timelines));
  assert.equal([select!.decision, select!.rule_id, select!.status, select!.command_tag, select!.rows], ['allow', null, 'ok', 'SELECT 3', 3]);
  assert.equal([drop!.decision, drop!.rule_id, drop!.status, drop!.error_code], ['deny', 'no-drop', 'refused', '42501']);
});

proxy('query API: no token, or a token the proxy would refuse, gets 401', async () => {
  const env = await ready;
  const none = await api<{ error: { code: string } }>(env.agate, '/v1/sessions', undefined);
  assert.is(none.status, 401);
  assert.is(none.body.error.code, 'API_UNAUTHORIZED');
  const expired = await api<{ error: { code: string } }>(env.agate, '/v1/sessions', await env.issuer.mintExpired({ sub: subjects.auditor, agate_role: 'auditor' }));
  assert.is(expired.status, 401);
  assert.is(expired.body.error.code, 'AUTH_TOKEN_EXPIRED');
});

proxy('CLI: agate session prints the commands; agate sessions lists the session', async () => {
  const env = await ready;
  const { agate } = env;
  const shown = await agate.cli(['session', pgSessionId, '--config', agate.configPath, '--token', tokens.auditor]);
  assert.is(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, `session ${pgSessionId}  postgres://appdb  subject=${subjects.pg}`);
  const lines = shown.stdout.split('\n');
  const header = lines.findIndex((l) => l.startsWith('SEQUENCE'));
  assert.ok(header > 0, shown.stdout);
  const rows = lines.slice(header + 1).filter((l) => l.trim() !== '');
  assert.is(rows.length, 12, shown.stdout);
  // The deciding party, then bytes and a shortened digest of what came back.
  assert.match(rows[0]!, /^1\s.*\ballow\s+policy\s+-\s+ok\s+SELECT 3\s+3\s+[1-9]\d*\s+sha256:[0-9a-f]{12}…\s+SELECT id, name FROM items ORDER BY id$/);
  assert.match(rows[1]!, /^2\s.*\bdeny\s+policy\s+no-drop\s+refused\s+-\s+0\s+0\s+-\s+DROP TABLE items$/);

  const json = await agate.cli(['session', pgSessionId, '--json', '--config', agate.configPath, '--token', tokens.auditor]);
  assert.is(json.code, 0, json.stderr);
  const fromApi = await apiOk<unknown>(agate, `/v1/sessions/${pgSessionId}`, tokens.auditor);
  assert.equal(JSON.parse(json.stdout), fromApi, 'agate session --json is the API answer');

  const listed = await agate.cli(['sessions', '--config', agate.configPath, '--token', tokens.auditor]);
  assert.is(listed.code, 0, listed.stderr);
  const sessionLine = listed.stdout.split('\n').find((l) => l.startsWith(pgSessionId));
  assert.ok(sessionLine, listed.stdout);
  assert.match(sessionLine!, subjects.pg);
  assert.match(sessionLine!, /\b12\s+4\s/);
  const filtered = await agate.cli(['sessions', '--subject', subjects.psql, '--json', '--config', agate.configPath, '--token', tokens.auditor]);
  assert.is(filtered.code, 0, filtered.stderr);
  assert.equal((JSON.parse(filtered.stdout) as SessionRow[]).map((s) => s.subject), [subjects.psql, subjects.psql, subjects.psql]);

  const noToken = await agate.cli(['sessions', '--config', agate.configPath]);
  assert.is(noToken.code, 2, 'a missing token is a usage error');
  assert.match(noToken.stderr, 'needs a token');
});

let verifiedRecords = 0;

proxy('ledger: agate verify (through the API) exits 0 and prints OK', async () => {
  const env = await ready;
  const { agate } = env;
  const r = await agate.cli(['verify', '--config', agate.configPath, '--token', tokens.auditor]);
  assert.is(r.code, 0, `${r.stdout}${r.stderr}`);
  const m = /^chain embedded: OK, records 1\.\.\d+ verified \((\d+)\); (?:matches signed checkpoint \d+; )?head [0-9a-f]{64}, root [0-9a-f]{64}$/m.exec(r.stdout);
  assert.ok(m, r.stdout);
  assert.match(r.stdout, /^session tables: OK, \d+ sessions match the ledger$/m);
  verifiedRecords = Number(m![1]);
  assert.ok(verifiedRecords > 20, `only ${verifiedRecords} records`);
});

proxy('ledger: verify --offline while Agate runs is refused, saying the store is in use', async () => {
  const env = await ready;
  const r = await env.agate.cli(['verify', '--config', env.agate.configPath, '--offline']);
  assert.is(r.code, 1, `${r.stdout}${r.stderr}`);
  assert.is(r.stdout, '');
  assert.ok(env.agate.running, 'the running Agate is not disturbed');
  // core/src/store/embedded.ts promises this message for a store held by another process.
  assert.match(r.stderr, /is in use by process \d+ \(is Agate running\? use its query API instead\)/);
});

proxy('SIGTERM: agate stops cleanly (exit 0) and ends an open session with 57P01', async () => {
  const env = await ready;
  const { agate } = env;
  const idle = await pgClient(env, await env.issuer.mint({ sub: 'idle-agent' }));
  const ended = new Promise<PgError>((resolve) => idle.on('error', (e: PgError) => resolve(e)));
  assert.equal((await idle.query('SELECT 1 AS one')).rows, [{ one: 1 }]);

  const stopped = await agate.stop();
  assert.equal(stopped, { code: 0, signal: null }, `agate did not stop cleanly:\n${agate.stderr()}`);
  assert.not.ok(agate.running);
  const msgs = agate.logs().map((l) => l.msg);
  assert.ok(msgs.indexOf('stopping') >= 0 && msgs.indexOf('stopping') < msgs.indexOf('stopped'), JSON.stringify(msgs));
  assert.not.ok(agate.logs().some((l) => l.level === 'error'), agate.stderr());
  const err = await ended;
  assert.is(err.code, '57P01');
  assert.is(err.message, 'Agate is shutting down');
});

proxy('ledger (offline): after a graceful stop the ledger holds the session open at shutdown, with its end', async () => {
  const env = await ready;
  assert.not.ok(env.agate.running, 'the previous test stopped Agate');
  const store = EmbeddedStore.open(join(env.agate.dataDir, 'store'));
  try {
    const sessions = await store.query<{ session_id: string; closed_at: string | null; commands: string }>(
      "SELECT session_id, closed_at, commands FROM agate.sessions WHERE subject = 'idle-agent'",
    );
    assert.is(sessions.length, 1, 'the idle session was recorded');
    assert.is(Number(sessions[0]!.commands), 1);
    // embedded.ts: stop() is "disconnect clients, record their session ends, drain the bus, close the store".
    const closed = await store.query<{ reason: string }>(
      "SELECT JSONExtractString(body, 'reason') AS reason FROM agate.ledger WHERE event_type = 'SessionClosed' AND session_id = {id:String}",
      { id: sessions[0]!.session_id },
    );
    assert.equal(closed, [{ reason: 'Agate is shutting down' }], 'the SessionClosed published during the graceful stop reached the ledger');
  } finally {
    await store.close();
  }
});

proxy('ledger (offline): verify --offline passes; after an edit to a stored Command it exits 1 naming the record', async () => {
  const env = await ready;
  const { agate } = env;
  assert.not.ok(agate.running, 'Agate was stopped');

  const intact = await agate.cli(['verify', '--config', agate.configPath, '--offline']);
  assert.is(intact.code, 0, `${intact.stdout}${intact.stderr}`);
  const m = /^chain embedded: OK, records 1\.\.\d+ verified \((\d+)\)/m.exec(intact.stdout);
  assert.ok(m, intact.stdout);
  assert.ok(Number(m![1]) >= verifiedRecords, 'the ledger only grew');

  let seq: number;
  const store = EmbeddedStore.open(join(agate.dataDir, 'store'));
  try {
    await store.exec(
      "ALTER TABLE agate.ledger UPDATE body = replaceOne(body, 'items', 'itemz') WHERE event_type = 'Command' AND seq = (SELECT min(seq) FROM agate.ledger WHERE event_type = 'Command') SETTINGS mutations_sync = 2",
    );
    const [row] = await store.query<{ seq: string; body: string }>(
      "SELECT seq, body FROM agate.ledger WHERE event_type = 'Command' ORDER BY seq LIMIT 1",
    );
    assert.ok(row, 'a Command record in the ledger');
    seq = Number(row!.seq);
    const body = JSON.parse(row!.body) as { text: string };
    assert.is(body.text, 'SELECT name FROM itemz ORDER BY id', 'the edit was applied');
  } finally {
    await store.close();
  }

  const broken = await agate.cli(['verify', '--config', agate.configPath, '--offline']);
  assert.is(broken.code, 1, `${broken.stdout}${broken.stderr}`);
  assert.match(broken.stdout, `chain embedded: BROKEN at record ${seq} `);
  assert.match(broken.stdout, '[altered]');
});

proxy.run();

// =============================================================================================
// Refused logins
// =============================================================================================

const auth = suite('agate start: refused logins (28P01) and the auth-failure record');
const authParts: Partial<Env> = {};
let authReady: Promise<Env>;
let auditor = '';

auth.before(() => {
  authReady = (async () => {
    const env = await setup(authParts, true);
    auditor = await env.issuer.mint({ sub: 'auditor@example.com', agate_role: 'auditor' });
    return env;
  })();
  authReady.catch(() => {});
});
auth.after(() => teardown(authParts));

interface BadCredential {
  name: string;
  token: (env: Env) => Promise<string> | string;
  message: RegExp;
  reason: string;
  /** The `sub` inside the token, as recorded (unverified) with the refusal. */
  claimedSubject: string | null;
}

const BAD: BadCredential[] = [
  { name: 'an expired token', token: (e) => e.issuer.mintExpired({ sub: 'expired-agent' }), message: /the token has expired/, reason: 'AUTH_TOKEN_EXPIRED', claimedSubject: 'expired-agent' },
  { name: 'a token from an issuer that is not configured', token: (e) => e.other!.mint({ sub: 'foreign-issuer-agent' }), message: /tokens from issuer "http:\/\/127\.0\.0\.1:\d+" are not trusted/, reason: 'AUTH_ISSUER_UNTRUSTED', claimedSubject: 'foreign-issuer-agent' },
  { name: 'an alg:none token', token: (e) => e.issuer.mintUnsigned({ sub: 'unsigned-agent' }), message: /token algorithm "none" is not allowed/, reason: 'AUTH_ALGORITHM_REFUSED', claimedSubject: 'unsigned-agent' },
  { name: 'a token signed with a foreign key', token: (e) => e.issuer.mintWithForeignKey({ sub: 'forged-agent' }), message: /signature does not verify/, reason: 'AUTH_SIGNATURE_INVALID', claimedSubject: 'forged-agent' },
  { name: 'a password that is not a JWT (hunter2)', token: () => 'hunter2', message: /not a JWT/, reason: 'AUTH_TOKEN_MALFORMED', claimedSubject: null },
  { name: 'a token for another audience', token: (e) => e.issuer.mint({ sub: 'wrong-audience-agent' }, { audience: 'someone-else' }), message: /issued for another audience/, reason: 'AUTH_AUDIENCE_MISMATCH', claimedSubject: 'wrong-audience-agent' },
];

auth('control: a valid token logs in', async () => {
  const env = await authReady;
  const client = await pgClient(env, await env.issuer.mint({ sub: 'good-agent' }));
  assert.equal((await client.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
  await client.end();
});

for (const bad of BAD) {
  auth(`${bad.name} is refused with 28P01 (node-postgres and psql)`, async () => {
    const env = await authReady;
    const token = await bad.token(env);
    const err = await rejection(pgClient(env, token), `login with ${bad.name}`);
    assert.is(err.code, '28P01', err.message);
    assert.match(err.message, /^Agate authentication failed: /);
    assert.match(err.message, bad.message);
    assert.is((err as PgError & { severity?: string }).severity, 'FATAL');

    const r = await psql(env.agate, token, 'SELECT 1');
    assert.is(r.code, 2, `psql exit code: ${r.stderr}`);
    assert.match(r.stderr, /FATAL: {2}Agate authentication failed: /);
    assert.match(r.stderr, bad.message);
    assert.is(r.stdout, '');
  });
}

auth('an unknown target (dbname=nope) is refused with 3D000', async () => {
  const env = await authReady;
  const token = await env.issuer.mint({ sub: 'lost-agent' });
  const err = await rejection(pgClient(env, token, 'nope'), 'login to target nope');
  assert.is(err.code, '3D000', err.message);
  assert.match(err.message, 'Agate has no target named "nope"');
  const r = await psql(env.agate, token, 'SELECT 1', 'nope');
  assert.is(r.code, 2);
  assert.match(r.stderr, 'Agate has no target named "nope"');
});

auth('GET /v1/auth-failures records each refusal with its reason code', async () => {
  const env = await authReady;
  // Two attempts per bad credential (node-postgres + psql), two for the unknown target.
  const expectedTotal = BAD.length * 2 + 2;
  const failures = await until(`${expectedTotal} auth failures`, async () => {
    const { auth_failures } = await apiOk<{ auth_failures: AuthFailureRow[] }>(env.agate, '/v1/auth-failures', auditor);
    return auth_failures.length >= expectedTotal ? auth_failures : undefined;
  }, RECORDED);
  assert.is(failures.length, expectedTotal, JSON.stringify(failures, null, 1));
  for (const bad of BAD) {
    const rows = failures.filter((f) => f.claimed_subject === bad.claimedSubject && f.reason_code !== 'TARGET_UNKNOWN');
    assert.is(rows.length, 2, `${bad.name}: ${JSON.stringify(rows)}`);
    for (const row of rows) {
      assert.is(row.reason_code, bad.reason, bad.name);
      assert.match(row.message, bad.message);
      assert.is(row.target, 'appdb');
    }
  }
  const foreign = failures.find((f) => f.claimed_subject === 'foreign-issuer-agent')!;
  assert.is(foreign.claimed_issuer, env.other!.issuer);
  const unknown = failures.filter((f) => f.reason_code === 'TARGET_UNKNOWN');
  assert.is(unknown.length, 2);
  for (const u of unknown) {
    assert.is(u.target, 'nope');
    assert.is(u.claimed_subject, 'lost-agent');
  }
});

auth('refused logins open no session; only the control session is listed', async () => {
  const env = await authReady;
  const { sessions } = await until('the control session', async () => {
    const b = await apiOk<{ sessions: SessionRow[] }>(env.agate, '/v1/sessions', auditor);
    return b.sessions.length > 0 ? b : undefined;
  }, RECORDED);
  assert.equal(sessions.map((s) => s.subject), ['good-agent']);
});

auth('the query API refuses the same bad credentials with 401', async () => {
  const env = await authReady;
  for (const bad of BAD) {
    const r = await api<{ error: { code: string; message: string } }>(env.agate, '/v1/auth-failures', await bad.token(env));
    assert.is(r.status, 401, bad.name);
    assert.is(r.body.error.code, bad.reason, bad.name);
  }
});

auth.run();
