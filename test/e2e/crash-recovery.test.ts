// SIGKILL under load, again and again, against a real `agate start` in front of a real PostgreSQL
// that logs every statement it executes (pgaudit). After each kill Agate starts again on the same
// data_dir. A checker then joins three accounts: what the clients were told, what PostgreSQL ran
// (its rows and its pgaudit log), and the record (the embedded log). Nothing PostgreSQL ran may
// lack an allow verdict in the record; every command ends with a response (the outcome-unknown
// or not-forwarded one Agate writes at start for what the kill cut); every session is closed.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { EmbeddedStore } from '../../core/src/store/embedded.js';
import { EventCodec } from '../../schemas/src/codec.js';
import type { AgateEvent, Command, Response, Verdict } from '../../schemas/src/events.js';
import { CUT_SESSION_REASON } from '../../services/ingress-proxy/src/cut-work.js';
import type { AgateProcess } from './agate-process.js';
import { RestartableAgate } from './restartable-agate.js';
import { busLogBytes, logEvents } from './bus-log.js';
import { auditEntries } from './pgaudit-log.js';
import { connectAgent } from '../harness/agent-client.js';

const KILLS = 6;
const WORKERS = 6;

const env = new RestartableAgate({ prefix: 'agate-crash-', pgaudit: true });
const test = suite('SIGKILL under load, real agate start and PostgreSQL with pgaudit');

test.before(async () => {
  await env.setUp();
  await env.pg.psql(`CREATE TABLE crash_t (k text PRIMARY KEY); GRANT ALL ON crash_t TO ${env.pg.users.scram.user}`);
});
test.after(() => env.tearDown());

const dataDir = () => env.dataDir;
const start = (dir?: string) => env.start('', dir);

/** What one client was told about one statement. */
interface Outcome {
  key: string;
  acked: boolean;
}

/** One client inserting distinct keys until its connection fails (the kill). */
async function worker(agate: AgateProcess, token: string, prefix: string, out: Outcome[]): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port: agate.pgPort, database: 'appdb', user: 'agent', password: token });
  client.on('error', () => undefined); // the kill: the query in flight rejects too
  try {
    await client.connect();
  } catch {
    return;
  }
  for (let i = 0; ; i++) {
    const key = `${prefix}-${i}`;
    const o: Outcome = { key, acked: false };
    out.push(o);
    try {
      const r = await client.query(`INSERT INTO crash_t (k) VALUES ('${key}')`);
      o.acked = r.rowCount === 1;
    } catch {
      break;
    }
  }
  await client.end().catch(() => undefined);
}

const keyOf = (text: string) => /VALUES \('([^']+)'\)/.exec(text)?.[1];

test('six SIGKILLs at random moments under load: every statement PostgreSQL ran has an allow verdict; every cut command and session is closed at the next start', async () => {
  const outcomes: Outcome[] = [];
  const token = await env.issuer.mint({ sub: 'ci-bot', repository: 'acme/app' });
  for (let round = 0; round < KILLS; round++) {
    const agate = await start();
    const before = outcomes.length;
    const load = Array.from({ length: WORKERS }, (_, w) => worker(agate, token, `r${round}w${w}`, outcomes));
    // Under load: once the clients are logged in and statements flow (however busy the machine), a random moment.
    const flowing = Date.now() + 30_000;
    while (outcomes.slice(before).filter((o) => o.acked).length < 2 * WORKERS && Date.now() < flowing) await new Promise((r) => setTimeout(r, 10));
    assert.ok(outcomes.slice(before).some((o) => o.acked), `round ${round}: statements ran before the kill`);
    await new Promise((r) => setTimeout(r, Math.random() * 800));
    process.kill(agate.pid, 'SIGKILL');
    await Promise.all(load);
    const exit = await agate.stop();
    assert.is(exit.signal, 'SIGKILL', `round ${round}: killed, not exited`);
  }
  // The last start closes what the last kill cut; then a clean stop.
  const last = await start();
  assert.equal(await last.stop(), { code: 0, signal: null }, `the last start stops cleanly\n${last.stderr()}`);

  const events = logEvents(busLogBytes(join(dataDir(), 'bus')), new EventCodec());
  const commands = new Map<string, Command>();
  const byKey = new Map<string, Command>();
  const verdicts = new Map<string, Verdict[]>();
  const responses = new Map<string, Response[]>();
  const opened = new Set<string>();
  const closed = new Map<string, string>();
  for (const e of events as AgateEvent[]) {
    if (e.type === 'Command') {
      commands.set(e.event_id, e);
      const k = keyOf(e.text);
      if (k !== undefined) byKey.set(k, e);
    } else if (e.type === 'Verdict') verdicts.set(e.command_id, [...(verdicts.get(e.command_id) ?? []), e]);
    else if (e.type === 'Response') responses.set(e.command_id, [...(responses.get(e.command_id) ?? []), e]);
    else if (e.type === 'SessionOpened') opened.add(e.session_id);
    else if (e.type === 'SessionClosed') closed.set(e.session_id, e.reason);
  }
  const allowed = (c: Command | undefined) => c !== undefined && (verdicts.get(c.event_id) ?? []).some((v) => v.decision === 'allow');
  const notForwarded = (c: Command) => (responses.get(c.event_id) ?? []).some((r) => r.outcome === 'not_forwarded');

  // What PostgreSQL ran: its rows, and every INSERT pgaudit logged (committed or not).
  const rows = (await env.pg.psql('SELECT k FROM crash_t')).split('\n').filter((l) => l !== '');
  const audited = auditEntries(readFileSync(env.pg.logFile, 'utf8')).map((a) => keyOf(a.statement)).filter((k): k is string => k !== undefined);
  assert.ok(rows.length > 0 && audited.length >= rows.length, `PostgreSQL ran the load (${rows.length} rows, ${audited.length} audited)`);
  for (const k of new Set([...rows, ...audited])) {
    const c = byKey.get(k);
    assert.ok(allowed(c), `PostgreSQL ran ${k}: the record holds its command with an allow verdict`);
    assert.not.ok(notForwarded(c!), `${k} ran, and is not recorded as not forwarded`);
  }
  // What the clients were told: an acknowledged insert ran, under a recorded allow.
  const acked = outcomes.filter((o) => o.acked);
  assert.ok(acked.length > 0);
  for (const o of acked) {
    assert.ok(rows.includes(o.key), `${o.key} acknowledged, and in the table`);
    assert.ok(allowed(byKey.get(o.key)), `${o.key} acknowledged: its allow verdict is recorded`);
  }

  // Every command has a response; the ones the kills cut say what is known of them.
  let unknown = 0;
  let notSent = 0;
  for (const c of commands.values()) {
    const rs = responses.get(c.event_id) ?? [];
    assert.ok(rs.length > 0, `command ${c.event_id} (${c.text.slice(0, 60)}) has a response`);
    for (const r of rs.filter((r) => r.outcome !== 'observed')) {
      if (allowed(c)) {
        assert.is(r.outcome, 'unknown', `${c.text}: forwarded under an allow verdict, so its outcome is unknown`);
        assert.match(r.error_message ?? '', /^outcome unknown: Agate stopped after forwarding/);
        unknown += 1;
      } else {
        assert.is(r.outcome, 'not_forwarded');
        const k = keyOf(c.text);
        assert.ok(k === undefined || (!rows.includes(k) && !audited.includes(k)), `${k} was not forwarded, and PostgreSQL never ran it`);
        notSent += 1;
      }
    }
  }
  // Every session is closed: the ones the kills cut, by the next start.
  const cut = [...opened].filter((s) => closed.get(s) === CUT_SESSION_REASON).length;
  for (const s of opened) assert.ok(closed.has(s), `session ${s} has its SessionClosed`);
  assert.ok(cut >= KILLS, `the kills cut sessions under load (${cut})`);
  // The ledger holds the same closing records: the analysts' view names the outcome.
  const expected = { ...(unknown > 0 ? { unknown } : {}), ...(notSent > 0 ? { not_forwarded: notSent } : {}) };
  const storedOutcomes = async () => {
    const s = EmbeddedStore.open(join(dataDir(), 'store'));
    try {
      const counts = await s.query<{ outcome: string; n: string }>("SELECT outcome, toString(count()) AS n FROM agate.responses WHERE outcome != 'observed' GROUP BY outcome");
      return Object.fromEntries(counts.map((c) => [c.outcome, Number(c.n)]));
    } finally {
      await s.close();
    }
  };
  // Right after the clean stop: a store trailing the log fails here (test/e2e/clean-stop.test.ts).
  assert.equal(await storedOutcomes(), expected);
  const store = EmbeddedStore.open(join(dataDir(), 'store'));
  try {
    const [sessions] = await store.query<{ n: string }>(`SELECT toString(count()) AS n FROM agate.ledger WHERE event_type = 'SessionClosed' AND JSONExtractString(body, 'reason') = '${CUT_SESSION_REASON}'`);
    assert.is(Number(sessions!.n), cut);
  } finally {
    await store.close();
  }
  console.log(`crash-recovery: ${KILLS} kills, ${outcomes.length} statements sent, ${acked.length} acknowledged, ${rows.length} rows, ${audited.length} pgaudit INSERTs, ${commands.size} commands recorded; ${opened.size} sessions; closed at restart: ${unknown} outcome unknown, ${notSent} not forwarded, ${cut} sessions`);
});

test('SIGKILL right after forwarding: the running statement\'s Command and its allow Verdict are already in the log, written together, and no Response yet', async () => {
  const dir = join(env.work, 'forwarded');
  const agate = await start(dir);
  const token = await env.issuer.mint({ sub: 'ci-bot', repository: 'acme/app' });
  // PostgreSQL's own view of what it is running: the statement has been forwarded once it is there.
  const watcher = new pg.Client({ host: env.pg.host, port: env.pg.port, database: env.pg.database, user: env.pg.users.scram.user, password: env.pg.users.scram.password });
  await watcher.connect();
  const clients: pg.Client[] = [];
  try {
    const markers = Array.from({ length: 4 }, (_, i) => `fwd-${process.pid}-${i}`);
    for (const marker of markers) {
      const client = await connectAgent({ port: agate.pgPort, token }); // its session dies with the kill
      clients.push(client);
      void client.query(`SELECT pg_sleep(60), '${marker}' AS m`).catch(() => undefined);
    }
    // Killed as soon as PostgreSQL runs the first of them: nothing later can have written for it.
    let running: string[] = [];
    for (const until = Date.now() + 30_000; running.length === 0 && Date.now() < until; ) {
      const r = await watcher.query<{ query: string }>("SELECT query FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(60), %'");
      running = r.rows.map((row) => /'(fwd-[^']+)'/.exec(row.query)?.[1]).filter((m): m is string => m !== undefined);
    }
    process.kill(agate.pid, 'SIGKILL');
    assert.ok(running.length > 0, 'PostgreSQL was running a forwarded statement at the kill');
    const exit = await agate.stop();
    assert.is(exit.signal, 'SIGKILL');

    // The log as the killed process left it, before any start repairs it.
    const events = logEvents(busLogBytes(join(dir, 'bus')), new EventCodec()) as AgateEvent[];
    for (const marker of running) {
      const at = events.findIndex((e) => e.type === 'Command' && e.text.includes(marker));
      assert.ok(at >= 0, `${marker} ran in PostgreSQL: its Command is in the log`);
      const command = events[at] as Command;
      const verdict = events[at + 1];
      assert.ok(verdict?.type === 'Verdict' && verdict.command_id === command.event_id && verdict.decision === 'allow', `${marker}: its allow Verdict is the very next record (one write with the Command)`);
      assert.not.ok(events.some((e) => e.type === 'Response' && e.command_id === command.event_id), `${marker} was still running: no Response can be recorded yet`);
    }
    // The next start closes it as forwarded with an unknown outcome, under that verdict.
    const again = await start(dir);
    assert.equal(await again.stop(), { code: 0, signal: null }, `a clean stop\n${again.stderr()}`);
    const after = logEvents(busLogBytes(join(dir, 'bus')), new EventCodec()) as AgateEvent[];
    for (const marker of running) {
      const command = after.find((e): e is Command => e.type === 'Command' && e.text.includes(marker))!;
      const responses = after.filter((e): e is Response => e.type === 'Response' && e.command_id === command.event_id);
      assert.equal(responses.map((r) => r.outcome), ['unknown'], `${marker}: recorded at the next start as forwarded, outcome unknown`);
    }
  } finally {
    for (const c of clients) await c.end().catch(() => undefined);
    await watcher.end();
  }
});

test.run();
