// A hostile agent with a valid token, third pass (pg-hostile.test.ts and pg-hostile-2.test.ts have
// the first two): through the real `agate start` in front of a PostgreSQL 15 that logs every
// statement it executes (pgaudit). Corners tried here: CancelRequests with keys that are not the
// agent's own, portals suspended at a row limit and named objects reused around them, startup
// messages sent where the protocol has none, row and table locks taken by a read-only identity,
// and notifications from other sessions. Witnesses: pgaudit's log (what ran), the database read
// directly, a direct writer that a lock would block, and the replies on the wire.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { serialize } from 'pg-protocol';
import type { AgateEvent, AuthenticationFailed, Command, Notification, Response } from '../../schemas/src/events.js';
import { ErrorCode } from '../../core/src/errors.js';
import { cancelRequestPacket, type BackendKey } from '../../services/ingress-proxy/src/pg/cancel.js';
import { waitForEvents } from './agate-fixture.js';
import { auditAgent, startHostile, stopHostile, type HostileCtx } from './pg-hostile-fixture.js';
import { auditEntries } from './pgaudit-log.js';
import { RawClient, type Reply } from './raw-client.js';
import { until } from '../harness/until.js';

const hostile = suite<HostileCtx>('a hostile agent against the PostgreSQL proxy, third pass');

/** A masked column's values: no detector knows their shape, only the column rule masks them. */
const TOKEN = `tok${randomBytes(10).toString('hex')}`;
const TOKEN2 = `tok${randomBytes(10).toString('hex')}`;
/** A secret a detector knows (an AWS access key id), for what no column rule reaches. */
const AWS_KEY = `AKIA${randomBytes(8).toString('hex').toUpperCase()}`;
/** Failed logins (bad cancel keys included) before the address is refused for a while. */
const MAX_FAILURES = 8;

hostile.before(async (ctx) => {
  await startHostile(ctx, {
    tokens: [TOKEN, TOKEN2],
    // A policy of its own: deletes are held here, not denied.
    policyYaml: `policy:
  default: allow
  rules:
    - id: ledger-read-only
      action: deny
      match: { sql: { tables_written: [ledger] } }
    - id: read-only-agents
      action: deny
      match: { claims: { ro: "yes" }, sql: { effects: [write, destroy, ddl, admin] } }
    - id: no-admin-for-some
      action: deny
      match: { claims: { nocancel: "yes" }, sql: { effects: [admin] } }
    - id: scratch-deletes-need-a-human
      action: hold
      match: { sql: { statements: [DeleteStmt] } }
      approval: { approvers: { claims: { team: dba } }, timeout_s: 2 }
    - id: masked-agents
      action: allow
      mask_client: true
      match: { claims: { masked: "yes" } }
`,
    extraYaml: `logins:\n  throttle: { max_failures: ${MAX_FAILURES}, window_s: 600, block_s: 2, max_block_s: 2 }`,
    moreSql: "INSERT INTO public.scratch VALUES (1, 'kept'), (2, 'kept');",
  });
});

hostile.after(stopHostile);

/** Every way a masked value can show in what a client received. */
function leaks(seen: string): boolean {
  return [TOKEN, TOKEN2].some((t) => seen.includes(t) || seen.includes(t.slice(3, 15)));
}

function describe(r: Reply): unknown {
  const { name, length: _length, ...rest } = r as Reply & Record<string, unknown>;
  return { name, ...Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('latin1') : v])) };
}
const seen = (replies: Reply[]) => JSON.stringify(replies.map(describe));
const rows = (replies: Reply[]) => replies.filter((r) => r.name === 'dataRow').length;

async function login(ctx: HostileCtx, claims: Record<string, unknown> = {}): Promise<RawClient> {
  return RawClient.login(ctx.agate.host, ctx.agate.port, await ctx.agate.token(claims));
}

/** The process id of the PostgreSQL backend behind a session, as the agent can learn it. */
async function backendPid(raw: RawClient): Promise<number> {
  raw.send(serialize.query('SELECT pg_backend_pid()::text AS pid'));
  const replies = await raw.readyCount(1);
  return Number((replies.find((r) => r.name === 'dataRow') as Reply & { fields: string[] }).fields[0]);
}

/** Sends one CancelRequest on a connection of its own, as libpq does, and waits for Agate to close it. */
async function cancel(ctx: HostileCtx, key: BackendKey): Promise<void> {
  await new Promise<void>((resolve) => {
    const s = connect({ host: ctx.agate.host, port: ctx.agate.port }, () => s.end(cancelRequestPacket(key)));
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });
}

/** Everything Agate answers to `bytes` sent on a fresh connection, until it closes it. */
async function answerTo(ctx: HostileCtx, bytes: Buffer): Promise<Buffer> {
  return new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    const s = connect({ host: ctx.agate.host, port: ctx.agate.port }, () => s.write(bytes));
    s.on('data', (c) => chunks.push(c));
    s.on('error', () => undefined);
    s.on('close', () => resolve(Buffer.concat(chunks)));
    setTimeout(() => s.destroy(), 10_000).unref();
  });
}

/** A production writer updating ledger directly, given up on after 2 s waiting for a lock: `100` when nothing blocked it. */
const directWrite = (ctx: HostileCtx) => ctx.agate.pg.psql("SET lock_timeout = '2s'; UPDATE ledger SET amount = amount WHERE id = 1 RETURNING amount");

const commands = (events: AgateEvent[], is: (c: Command) => boolean) => events.filter((e): e is Command => e.type === 'Command' && is(e));
const responseTo = (events: AgateEvent[], c: Command) => events.find((e): e is Response => e.type === 'Response' && e.command_id === c.event_id);

hostile('portals suspended at a row limit: every row masked, one decision per statement, continued across Sync in a transaction', async (ctx) => {
  const raw = await login(ctx, { masked: 'yes' });
  try {
    // The unnamed portal, fetched a row at a time; the masked column under its own name and an alias.
    for (const text of ['SELECT id, api_token FROM vault ORDER BY id', 'SELECT api_token AS x, id FROM vault ORDER BY id', 'SELECT v FROM vault v ORDER BY id']) {
      raw.send(serialize.parse({ text }), serialize.bind({}), serialize.execute({ rows: 1 }), serialize.execute({ rows: 1 }), serialize.execute({ rows: 1 }), serialize.sync());
      const replies = await raw.readyCount(1);
      assert.is(rows(replies), 2, `${text}: ${seen(replies)}`);
      assert.is(replies.filter((r) => r.name === 'portalSuspended').length, 2, `${text}: ${seen(replies)}`);
      assert.not.ok(leaks(seen(replies)), `${text}: ${seen(replies)}`);
    }
    // A named portal in a transaction outlives Sync; its statement is closed and its name
    // re-parsed with other text meanwhile: the portal still runs (and is masked as) the old one.
    raw.send(serialize.query('BEGIN'));
    await raw.readyCount(1);
    raw.send(serialize.parse({ name: 's1', text: 'SELECT api_token FROM vault ORDER BY id' }), serialize.bind({ statement: 's1', portal: 'p' }), serialize.execute({ portal: 'p', rows: 1 }), serialize.sync());
    let replies = await raw.readyCount(1);
    assert.equal([rows(replies), leaks(seen(replies))], [1, false], seen(replies));
    raw.send(serialize.close({ type: 'S', name: 's1' }), serialize.parse({ name: 's1', text: "SELECT 'harmless' AS api" }), serialize.describe({ type: 'P', name: 'p' }), serialize.execute({ portal: 'p', rows: 5 }), serialize.sync());
    replies = await raw.readyCount(1);
    assert.equal([rows(replies), leaks(seen(replies))], [1, false], seen(replies));
    raw.send(serialize.close({ type: 'P', name: 'p' }), serialize.bind({ statement: 's1', portal: 'p' }), serialize.execute({ portal: 'p' }), serialize.sync(), serialize.query('COMMIT'));
    replies = await raw.readyCount(2);
    assert.match(seen(replies), /harmless/);
  } finally {
    raw.close();
  }
  const events = await waitForEvents(ctx.agate, (ev) => commands(ev, (c) => c.text === 'SELECT api_token FROM vault ORDER BY id').some((c) => responseTo(ev, c) !== undefined));
  // Decided once, at its first Execute; the later fetches are recorded in the same Response.
  const portalRun = commands(events, (c) => c.text === 'SELECT api_token FROM vault ORDER BY id');
  assert.is(portalRun.length, 1);
  assert.is(portalRun[0]!.attributes.portal, 'p');
  // Executes pipelined behind the first (sent before its PortalSuspended came back) are each
  // decided and recorded; together their Responses hold every row delivered.
  const unnamed = commands(events, (c) => c.text === 'SELECT id, api_token FROM vault ORDER BY id');
  assert.ok(unnamed.length >= 1);
  for (const c of unnamed) {
    assert.ok(events.some((e) => e.type === 'Verdict' && e.command_id === c.event_id && e.decision !== 'deny'), 'an Execute ran undecided');
    assert.is(events.filter((e) => e.type === 'Response' && e.command_id === c.event_id).length, 1, 'an Execute answered other than once');
  }
  assert.is(unnamed.map((c) => responseTo(events, c)?.rows ?? 0).reduce((a, b) => a + b, 0), 2);
  assert.not.ok(leaks(ctx.agate.busLog().toString('latin1')), 'the record carries a masked value');
});

hostile('a refused or held statement at a row limit: nothing runs, later Executes of it do not either', async (ctx) => {
  const raw = await login(ctx);
  try {
    // Refused: the Executes after it up to Sync are discarded, as the server discards them after
    // an error. Bound in an open transaction, it locks no row: a writer goes on.
    raw.send(serialize.query('BEGIN'), serialize.parse({ text: 'SELECT * FROM ledger FOR UPDATE' }), serialize.bind({}), serialize.execute({ rows: 1 }), serialize.execute({ rows: 1 }), serialize.sync());
    let replies = await raw.readyCount(2);
    assert.is(rows(replies), 0, seen(replies));
    assert.ok(replies.some((r) => r.name === 'error' && /rule "ledger-read-only"/.test(r.message ?? '')), seen(replies));
    assert.is(await directWrite(ctx), '100', 'the refused portal blocked a writer');
    raw.send(serialize.query('ROLLBACK'));
    await raw.readyCount(1);
    // The portal is gone after Sync: an Execute of it alone is refused as the server would.
    raw.send(serialize.execute({ rows: 1 }), serialize.sync());
    replies = await raw.readyCount(1);
    assert.ok(replies.some((r) => r.name === 'error' && r.code === '34000'), seen(replies));
    // Described after its refusal: metadata only, no row, no statement run.
    raw.send(serialize.parse({ name: 'bad', text: 'SELECT * FROM ledger FOR NO KEY UPDATE' }), serialize.describe({ type: 'S', name: 'bad' }), serialize.sync());
    replies = await raw.readyCount(1);
    assert.ok(replies.some((r) => r.name === 'rowDescription'), seen(replies));
    raw.send(serialize.bind({ statement: 'bad', portal: 'q' }), serialize.describe({ type: 'P', name: 'q' }), serialize.execute({ portal: 'q', rows: 1 }), serialize.sync());
    replies = await raw.readyCount(1);
    assert.ok(replies.some((r) => r.name === 'error' && /rule "ledger-read-only"/.test(r.message ?? '')) && rows(replies) === 0, seen(replies));
    // Held, then refused when no approver answers: the suspended fetches never run either.
    raw.send(serialize.parse({ text: 'DELETE FROM scratch RETURNING id' }), serialize.bind({}), serialize.execute({ rows: 1 }), serialize.execute({ rows: 1 }), serialize.sync());
    replies = await raw.readyCount(1);
    assert.ok(replies.some((r) => r.name === 'notice'), `a hold notice: ${seen(replies)}`);
    assert.ok(replies.some((r) => r.name === 'error' && r.code === '42501'), seen(replies));
    assert.is(rows(replies), 0, seen(replies));
  } finally {
    raw.close();
  }
  assert.is(await ctx.agate.pg.psql('SELECT count(*) FROM scratch'), '2');
});

hostile('startup messages after login, and messages before it, end the connection; nothing after them is forwarded', async (ctx) => {
  const gss = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]);
  const startupAgain = serialize.startup({ user: 'agent', database: 'appdb' });
  const attempts: [string, (raw: RawClient) => Buffer][] = [
    ['GSSENCRequest', () => gss],
    ['CancelRequest', (raw) => cancelRequestPacket(raw.key!)],
    ['StartupMessage', () => startupAgain],
    ['PasswordMessage', () => serialize.password('again')],
  ];
  for (const [what, frame] of attempts) {
    const raw = await login(ctx);
    raw.send(frame(raw), serialize.query(`SELECT 'after-${what}'`));
    const replies = await raw.until((r) => r.name === 'error');
    assert.ok(replies.some((r) => r.name === 'error' && r.code === '08P01'), `${what}: ${seen(replies)}`);
    assert.is(rows(replies), 0, `${what}: ${seen(replies)}`);
    raw.close();
  }
  // Before login: a Query where the startup packet belongs, and a Query before the password.
  for (const [what, bytes] of [['Query first', serialize.query("SELECT 'after-query-first'")], ['Query before password', Buffer.concat([serialize.startup({ user: 'agent', database: 'appdb' }), serialize.query("SELECT 'after-query-before-password'")])]] as const) {
    const answer = await answerTo(ctx, bytes);
    assert.ok(answer.includes(Buffer.from('C08P01\0')), `${what}: ${answer.toString('latin1')}`);
  }
  const events = ctx.agate.events();
  assert.equal(commands(events, (c) => c.text.includes('after-')).map((c) => c.text), []);
});

hostile('row and table locks that block writers count as writes of the table', async (ctx) => {
  const raw = await login(ctx);
  const ro = await login(ctx, { ro: 'yes' });
  const pids = [await backendPid(raw), await backendPid(ro)];
  try {
    for (const lock of ['FOR UPDATE', 'FOR NO KEY UPDATE', 'FOR SHARE', 'FOR KEY SHARE', 'FOR UPDATE SKIP LOCKED']) {
      for (const sql of [`SELECT * FROM ledger ${lock}`, `SELECT * FROM people p JOIN ledger l USING (id) ${lock.replace(' SKIP LOCKED', '')} OF p`, `SELECT * FROM (SELECT * FROM ledger) s ${lock}`, `WITH x AS (SELECT * FROM ledger ${lock}) SELECT * FROM x`]) {
        // Held open in a transaction, as an agent would to block the writer below.
        raw.send(serialize.query('BEGIN'), serialize.query(sql));
        const replies = await raw.readyCount(2);
        assert.ok(replies.some((r) => r.name === 'error' && /rule "ledger-read-only"/.test(r.message ?? '')), `${sql}: ${seen(replies)}`);
        // The witness: a writer in production is not blocked while the agent's transaction is open.
        assert.is(await directWrite(ctx), '100', `${sql} blocked a writer`);
        raw.send(serialize.query('ROLLBACK'));
        await raw.readyCount(1);
      }
    }
    for (const mode of ['ROW EXCLUSIVE', 'SHARE', 'SHARE ROW EXCLUSIVE', 'EXCLUSIVE', 'ACCESS EXCLUSIVE', 'SHARE UPDATE EXCLUSIVE']) {
      raw.send(serialize.query('BEGIN'), serialize.query(`LOCK TABLE ledger IN ${mode} MODE`));
      const replies = await raw.readyCount(2);
      assert.ok(replies.some((r) => r.name === 'error' && /rule "ledger-read-only"/.test(r.message ?? '')), `${mode}: ${seen(replies)}`);
      assert.is(await directWrite(ctx), '100', `LOCK ${mode} blocked a writer`);
      raw.send(serialize.query('ROLLBACK'));
      await raw.readyCount(1);
    }
    // What reads take (pg_dump's ACCESS SHARE, ROW SHARE) blocks no writer, and still runs.
    raw.send(serialize.query('BEGIN'), serialize.query('LOCK TABLE ledger IN ACCESS SHARE MODE'), serialize.query('LOCK TABLE ledger IN ROW SHARE MODE'), serialize.query('SELECT * FROM ledger'));
    let replies = await raw.readyCount(4);
    assert.not.ok(replies.some((r) => r.name === 'error'), seen(replies));
    assert.is(await directWrite(ctx), '100');
    raw.send(serialize.query('COMMIT'));
    await raw.readyCount(1);
    // A read-only identity (`effects: [write]`): a row lock on any table is a write.
    ro.send(serialize.query('SELECT name FROM people WHERE id = 1'), serialize.query('SELECT name FROM people WHERE id = 1 FOR UPDATE'));
    replies = await ro.readyCount(2);
    assert.is(rows(replies), 1, seen(replies));
    assert.ok(replies.some((r) => r.name === 'error' && /rule "read-only-agents"/.test(r.message ?? '')), seen(replies));
  } finally {
    raw.close();
    ro.close();
  }
  const entries = auditEntries(readFileSync(ctx.agate.pg.logFile, 'utf8'));
  const locks = entries.filter((e) => pids.includes(e.pid) && (/\bFOR (UPDATE|SHARE|NO KEY|KEY SHARE)\b/i.test(e.statement) || (/^LOCK\b/i.test(e.statement) && !/(ACCESS|ROW) SHARE MODE/i.test(e.statement))));
  assert.equal(locks.map((e) => e.statement), []);
});

hostile('a notification from another session reaches a masked client masked, and each delivery is recorded as a Notification', async (ctx) => {
  const masked = await login(ctx, { masked: 'yes' });
  const plain = await login(ctx);
  const sessionOf = async (c: RawClient) => {
    c.send(serialize.query('SELECT 1 AS notify_probe'));
    await c.readyCount(1);
    const events = await waitForEvents(ctx.agate, (es) => es.some((e) => e.type === 'Command' && e.text === 'SELECT 1 AS notify_probe' && !seenSessions.has(e.session_id)));
    const id = events.find((e): e is Command => e.type === 'Command' && e.text === 'SELECT 1 AS notify_probe' && !seenSessions.has(e.session_id))!.session_id;
    seenSessions.add(id);
    return id;
  };
  const seenSessions = new Set<string>();
  try {
    const sessions = [await sessionOf(masked), await sessionOf(plain)];
    for (const c of [masked, plain]) {
      c.send(serialize.query('LISTEN jobs'));
      await c.readyCount(1);
    }
    // A production writer (not through Agate) notifies a detectable secret.
    const sent = `deploy key ${AWS_KEY}`;
    const senderPid = Number(await ctx.agate.pg.psql(`SELECT pg_backend_pid(), pg_notify('jobs', '${sent}')`).then((out) => out.split('|')[0]));
    for (const c of [masked, plain]) c.send(serialize.query('SELECT 1'));
    const got = await Promise.all([masked, plain].map(async (c) => {
      await c.until((r) => r.name === 'notification');
      return c.readyCount(1);
    }));
    const [toMasked, toPlain] = got.map((replies) => replies.find((r) => r.name === 'notification') as Reply & { payload?: string; channel?: string; processId?: number });
    assert.is(toMasked!.channel, 'jobs');
    assert.match(toMasked!.payload ?? '', /^deploy key /);
    assert.not.ok((toMasked!.payload ?? '').includes(AWS_KEY), `the masked client got ${toMasked!.payload}`);
    // An unmasked client gets it as sent; the record masks it all the same (the audit set).
    assert.is(toPlain!.payload, sent);

    // The record, as the query service reads it back from the ledger.
    const token = await ctx.agate.token({ agate_role: 'auditor' });
    const timeline = (id: string) => until(`a notification in session ${id}'s timeline`, async () => {
      const res = await fetch(`${ctx.agate.apiUrl}/v1/sessions/${id}/timeline`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(15_000) });
      if (res.status !== 200) throw new Error(`timeline: ${res.status} ${await res.text()}`);
      const body = (await res.json()) as { events: { kind: string; event_id: string; command_id: string; text: string | null; channel: string | null }[] };
      return body.events.find((e) => e.kind === 'notification');
    }, { retryErrors: true, everyMs: 150 });
    const recorded = await Promise.all(sessions.map(timeline));
    const byId = new Map(ctx.agate.events().filter((e): e is Notification => e.type === 'Notification').map((e) => [e.event_id, e]));
    for (const [i, delivered] of [toMasked!, toPlain!].entries()) {
      const row = recorded[i]!;
      assert.is(row.channel, 'jobs');
      assert.is(row.command_id, '');
      assert.match(row.text ?? '', /^deploy key /);
      assert.not.ok((row.text ?? '').includes(AWS_KEY), `recorded ${row.text}`);
      const event = byId.get(row.event_id);
      assert.ok(event !== undefined, 'the timeline row is the Notification the proxy published');
      assert.is(event!.session_id, sessions[i]);
      assert.is(event!.sender_pid, senderPid);
      assert.is(event!.payload, row.text);
      const bytes = Buffer.from(delivered.payload!, 'utf8');
      assert.is(event!.payload_bytes, bytes.length);
      assert.is(event!.digest, `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
      assert.is(event!.masked_values, i === 0 ? 1 : 0, 'values masked in what the client received');
    }
    // The masked client received fewer bytes than were sent; the plain one exactly what was sent.
    assert.ok(byId.get(recorded[0]!.event_id)!.payload_bytes !== Buffer.byteLength(sent));
    assert.is(byId.get(recorded[1]!.event_id)!.payload_bytes, Buffer.byteLength(sent));
    assert.not.ok(ctx.agate.busLog().toString('latin1').includes(AWS_KEY), 'the bus log carries the secret');
  } finally {
    masked.close();
    plain.close();
  }
});

hostile('CancelRequests: a guessed key or the real backend pid cancels nothing and is recorded; policy decides a real one; guessing is throttled', async (ctx) => {
  const victim = await login(ctx);
  const realPid = await backendPid(victim);
  const key = victim.key!;
  // Agate's key is its own: no backend has its process id.
  const pids = (await ctx.agate.pg.psql('SELECT string_agg(pid::text, \',\') FROM pg_stat_activity')).split(',').map(Number);
  assert.ok(!pids.includes(key.processId), `Agate handed out a real backend pid ${key.processId}`);
  const guesses: BackendKey[] = [
    { processId: realPid, secretKey: key.secretKey },
    { processId: realPid, secretKey: 0 },
    { processId: key.processId, secretKey: key.secretKey ^ 1 },
    { processId: key.processId + 1, secretKey: key.secretKey },
  ];
  try {
    victim.send(serialize.query('SELECT pg_sleep(2) AS slept'));
    await new Promise((r) => setTimeout(r, 300));
    for (const g of guesses) await cancel(ctx, g);
    const replies = await victim.readyCount(1);
    assert.is(rows(replies), 1, `the statement was cancelled: ${seen(replies)}`);
    assert.not.ok(replies.some((r) => r.name === 'error'), seen(replies));
  } finally {
    victim.close();
  }
  let events = await waitForEvents(ctx.agate, (ev) => ev.filter((e) => e.type === 'AuthenticationFailed' && e.reason_code === ErrorCode.AUTH_CANCEL_KEY_UNKNOWN).length >= guesses.length);
  const failures = events.filter((e): e is AuthenticationFailed => e.type === 'AuthenticationFailed' && e.reason_code === ErrorCode.AUTH_CANCEL_KEY_UNKNOWN);
  assert.is(failures.length, guesses.length);
  assert.match(failures[0]!.client_address, /^127\.0\.0\.1:\d+$/);
  assert.equal(commands(events, (c) => c.attributes.message === 'CancelRequest'), [], 'no guess was a cancel of anyone');
  // The victim's key dies with its session.
  await new Promise((r) => setTimeout(r, 300));
  await cancel(ctx, key);
  events = await waitForEvents(ctx.agate, (ev) => ev.filter((e) => e.type === 'AuthenticationFailed' && e.reason_code === ErrorCode.AUTH_CANCEL_KEY_UNKNOWN).length === guesses.length + 1);

  // A right key whose cancel policy refuses: recorded in the target session, not forwarded.
  const guarded = await login(ctx, { nocancel: 'yes' });
  try {
    guarded.send(serialize.query('SELECT pg_sleep(1.5) AS slept'));
    await new Promise((r) => setTimeout(r, 300));
    await cancel(ctx, guarded.key!);
    const replies = await guarded.readyCount(1);
    assert.is(rows(replies), 1, `a refused cancel was forwarded: ${seen(replies)}`);
  } finally {
    guarded.close();
  }
  events = await waitForEvents(ctx.agate, (ev) => commands(ev, (c) => c.attributes.message === 'CancelRequest').some((c) => responseTo(ev, c) !== undefined));
  const refusedCancel = commands(events, (c) => c.attributes.message === 'CancelRequest')[0]!;
  assert.is(responseTo(events, refusedCancel)!.status, 'refused');

  // Guessing is throttled like passwords: past the limit the address is refused at connect.
  for (let i = guesses.length + 1; i < MAX_FAILURES; i++) await cancel(ctx, { processId: i, secretKey: i });
  await new Promise((r) => setTimeout(r, 300));
  const blocked = await answerTo(ctx, serialize.startup({ user: 'agent', database: 'appdb' }));
  assert.ok(blocked.includes(Buffer.from('C08004\0')), `a throttled address logged in: ${blocked.toString('latin1')}`);
  events = await waitForEvents(ctx.agate, (ev) => ev.some((e) => e.type === 'AuthenticationFailed' && e.reason_code === ErrorCode.AUTH_THROTTLED));
  // The block lapses (block_s 2): later tests log in again.
  await new Promise((r) => setTimeout(r, 2_500));
});

hostile('pgaudit: everything PostgreSQL executed was recorded as allowed; nothing refused ran', async (ctx) => {
  const { entries, checked, report } = await auditAgent(ctx);
  assert.ok(report.checked > 10, `pgaudit logged the attempts (${report.checked})`);
  assert.equal(report.unexplained, []);
  // A SELECT's portal is started at Bind (PortalStart), where pgaudit logs it; its rows, and so
  // its row locks, come only with an Execute, which Agate refused (the writer above went on).
  const boundOnly = ['SELECT * FROM ledger FOR UPDATE ran 1×, allowed 0×', 'SELECT * FROM ledger FOR NO KEY UPDATE ran 1×, allowed 0×'];
  assert.equal(report.overrun, boundOnly);
  assert.equal(entries.filter((e) => checked(e) && /after-|DELETE FROM scratch/.test(e.statement)).map((e) => e.statement), []);
});

hostile.run();
