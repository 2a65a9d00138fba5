import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Admin } from '@platformatic/kafka';
import pg from 'pg';
import { ClickHouseStore } from '../../core/src/store/clickhouse.js';
import { startClickHouseHttpDouble, type ClickHouseHttpDouble } from '../harness/clickhouse-http-double.js';
import { startKafka, type KafkaBroker } from '../harness/kafka.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { findFreePort, startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startSchemaRegistry, type SchemaRegistryServer } from '../harness/schema-registry.js';
import { until } from '../harness/until.js';
import { cleanEnv, runCli } from './agate-process.js';
import { createSecretFile } from '../../core/src/secret-file.js';
import { generateSignerKey } from '../../services/ledger/src/note.js';
import { startRole, type RoleProcess } from './role-process.js';

/*
 * The distributed deployment: two proxy processes, one policy, one ledger and one query process
 * over a real Kafka broker with a real schema registry, a real PostgreSQL, and the store behind
 * the ClickHouse HTTP test double (one modern engine shared by the ledger and query processes).
 */
interface Env {
  pg: PostgresServer;
  issuer: OidcIssuer;
  broker: KafkaBroker;
  registry: SchemaRegistryServer;
  double: ClickHouseHttpDouble;
  store: ClickHouseStore;
  dir: string;
  configs: Record<'a' | 'b' | 'svc', string>;
  ports: { a: number; b: number; api: number };
  procs: Record<'proxyA' | 'proxyB' | 'policy' | 'ledger' | 'query', RoleProcess> & { proxyC?: RoleProcess };
  token: string;
}

const VERDICT_TIMEOUT_MS = 3000;

function config(env: Omit<Env, 'procs' | 'configs' | 'token' | 'store'>, instance: string, pgPort: number): string {
  const q = JSON.stringify;
  return `instance_id: ${instance}
data_dir: ${q(join(env.dir, instance))}
identity:
  issuers:
    - { issuer: ${q(env.issuer.issuer)}, audience: agate }
bus:
  kind: kafka
  brokers: [${q(env.broker.bootstrap)}]
  partitions: 3
  replication_factor: 1
  schema_registry: { url: ${q(env.registry.url)} }
store: { kind: clickhouse, url: ${q(env.double.url)} }
proxy:
  postgres: { listen: "127.0.0.1:${pgPort}" }
  verdict_timeout_ms: ${VERDICT_TIMEOUT_MS}
targets:
  - name: appdb
    protocol: postgres
    upstream: { host: 127.0.0.1, port: ${env.pg.port}, database: appdb, user: ${q(env.pg.users.scram.user)}, password: { value: ${q(env.pg.users.scram.password)} } }
policy:
  default: allow
  rules:
    - { id: no-drop, action: deny, message: DROP needs a human, match: { sql: { statements: [DropStmt] } } }
    - { id: truncate-held, action: hold, match: { sql: { statements: [TruncateStmt] } }, approval: { timeout_s: 180 } }
query:
  listen: "127.0.0.1:${env.ports.api}"
`;
}

const ready: Promise<Env> = (async () => {
  const [pgServer, issuer, broker, registry, double] = await Promise.all([startPostgres(), startOidcIssuer(), startKafka(), startSchemaRegistry(), startClickHouseHttpDouble()]);
  await pgServer.psql(`CREATE TABLE probe (marker text PRIMARY KEY); GRANT ALL ON probe TO ${pgServer.users.scram.user}`);
  await pgServer.psql(`CREATE TABLE held (x int); INSERT INTO held VALUES (1); GRANT ALL ON held TO ${pgServer.users.scram.user}`);
  const dir = mkdtempSync(join(tmpdir(), 'agate-dist-'));
  const ports = { a: await findFreePort(), b: await findFreePort(), api: await findFreePort() };
  const base = { pg: pgServer, issuer, broker, registry, double, dir, ports };
  const configs = { a: join(dir, 'a.yaml'), b: join(dir, 'b.yaml'), svc: join(dir, 'svc.yaml') };
  writeFileSync(configs.a, config(base, 'proxy-a', ports.a));
  writeFileSync(configs.b, config(base, 'proxy-b', ports.b));
  writeFileSync(configs.svc, config(base, 'services', ports.a));
  // The checkpoint key is made once (as `agate ledger-key` does): on Kafka a ledger generates none.
  createSecretFile(join(dir, 'services', 'ledger', 'checkpoint.key'), generateSignerKey('agate.local/ledger') + '\n');
  // The ledger first: it migrates the schema the query service reads.
  const ledger = await startRole('ledger', configs.svc);
  const [policy, query, proxyA, proxyB] = await Promise.all([startRole('policy', configs.svc), startRole('query', configs.svc), startRole('proxy', configs.a), startRole('proxy', configs.b)]);
  const store = new ClickHouseStore({ url: double.url, username: 'default', password: '' });
  return { ...base, configs, store, procs: { proxyA, proxyB, policy, ledger, query }, token: await issuer.mint({ sub: 'dist-agent', agate_role: 'auditor' }) };
})();

async function client(env: Env, port: number): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port, database: 'appdb', user: 'agent', password: env.token });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** How long a wait on the running system may take on a loaded 2-core machine, and how often it looks (test/harness/until.ts). */
const SETTLE_MS = 60_000;
const POLL_MS = 250;

/** Every event once: no event id twice, and every chain verifies. */
async function assertLedgerExact(env: Env): Promise<void> {
  const [row] = await env.store.query<{ c: string; u: string }>('SELECT count() AS c, uniqExact(event_id) AS u FROM agate.ledger');
  assert.is(Number(row!.c), Number(row!.u), 'an event was stored twice');
  const verify = await runCli(['verify', '--config', env.configs.svc, '--token', env.token, '--url', `http://127.0.0.1:${env.ports.api}`]);
  assert.is(verify.code, 0, verify.stdout + verify.stderr);
  assert.match(verify.stdout, /chain agate\.events-\d: OK/);
}

/** Markers whose INSERT reached PostgreSQL must each be a recorded, allowed, completed command. */
async function assertEveryRunCommandRecorded(env: Env, prefix: string): Promise<number> {
  const inPg = (await env.pg.psql(`SELECT marker FROM probe WHERE marker LIKE '${prefix}%' ORDER BY 1`)).split('\n').filter(Boolean);
  const recorded = await env.store.query<{ marker: string; n: string }>(
    `SELECT extract(c.text, '${prefix}[0-9]+') AS marker, count() AS n FROM agate.commands c
     INNER JOIN (SELECT command_id FROM agate.responses WHERE status = 'ok') r ON r.command_id = c.command_id
     WHERE c.text LIKE {p:String} GROUP BY marker`,
    { p: `%${prefix}%` },
  );
  const byMarker = new Map(recorded.map((r) => [r.marker, Number(r.n)]));
  for (const m of inPg) assert.is(byMarker.get(m), 1, `${m} ran on PostgreSQL but is recorded ${byMarker.get(m) ?? 0} times`);
  return inPg.length;
}

const dist = suite('distributed: 2 proxies, policy, ledger, query over Kafka');
dist.after(async () => {
  const env = await ready.catch(() => undefined);
  if (env === undefined) return;
  for (const p of Object.values(env.procs)) await p.stop().catch(() => undefined);
  await env.store.close();
  await Promise.all([env.pg.stop(), env.issuer.close(), env.broker.destroy(), env.registry.close(), env.double.close()]);
  rmSync(env.dir, { recursive: true, force: true });
});

dist('clients on both proxies get correct verdicts', async () => {
  const env = await ready;
  for (const port of [env.ports.a, env.ports.b]) {
    const c = await client(env, port);
    assert.is((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 3);
    await c.query(`INSERT INTO probe VALUES ('basic-${port}')`);
    try {
      await c.query('DROP TABLE items');
      assert.unreachable('DROP was allowed');
    } catch (err) {
      assert.is((err as { code: string }).code, '42501');
      assert.match((err as Error).message, 'no-drop');
    }
    await c.end();
  }
});

dist('every command and response of both proxies lands in the ledger exactly once', async () => {
  const env = await ready;
  const sessions = await until('both proxies\' sessions in the ledger', async () => {
    const res = await fetch(`http://127.0.0.1:${env.ports.api}/v1/sessions?subject=dist-agent`, { headers: { authorization: `Bearer ${env.token}` } });
    const body = (await res.json()) as { sessions: { proxy_id: string; commands: number; closed_at: string | null }[] };
    const closed = body.sessions.filter((s) => s.closed_at !== null);
    return closed.length >= 2 ? closed : undefined;
  }, { timeoutMs: SETTLE_MS, everyMs: POLL_MS, retryErrors: true });
  assert.equal(new Set(sessions.map((s) => s.proxy_id)), new Set(['proxy-a', 'proxy-b']));
  assert.ok(sessions.every((s) => s.commands === 3));
  const [{ n }] = (await env.store.query<{ n: string }>("SELECT count() AS n FROM agate.responses WHERE status IN ('ok', 'refused')")) as [{ n: string }];
  assert.is(Number(n), 6);
  await assertLedgerExact(env);
  assert.is(await assertEveryRunCommandRecorded(env, 'basic-'), 2);
});

dist('an admin ends a live session held by a proxy in another process: asked over the bus, answered once SessionClosed is recorded', async () => {
  const env = await ready;
  const api = `http://127.0.0.1:${env.ports.api}`;
  const admin = await env.issuer.mint({ sub: 'dist-admin', agate_role: 'admin' });
  const headers = { authorization: `Bearer ${admin}`, 'content-type': 'application/json' };
  const terminate = (id: string, reason: string) => fetch(`${api}/v1/sessions/${encodeURIComponent(id)}/terminate`, { method: 'POST', headers, body: JSON.stringify({ reason }) });
  // Nothing live by that id: 404 from the record, no request on the bus.
  assert.is((await terminate('no-such-session', 'test')).status, 404);
  const marker = `terminate-me-${Date.now()}`;
  const c = await client(env, env.ports.b);
  const ended = new Promise<Error & { code?: string }>((resolve) => c.on('error', resolve));
  await c.query(`SELECT '${marker}'`);
  const sessionId = await until('the session in the record', async () => {
    const res = await fetch(`${api}/v1/sessions?q=${marker}`, { headers });
    const rows = ((await res.json()) as { sessions: { session_id: string; proxy_id: string }[] }).sessions;
    return rows.find((r) => r.proxy_id === 'proxy-b')?.session_id;
  }, { timeoutMs: SETTLE_MS, everyMs: POLL_MS, retryErrors: true });
  const started = Date.now();
  const res = await terminate(sessionId, 'runaway query');
  const body = (await res.json()) as { terminated?: boolean; reason?: string };
  assert.is(res.status, 200, JSON.stringify(body));
  const expected = `terminated by administrator dist-admin (${env.issuer.issuer}): runaway query`;
  assert.is(body.reason, expected);
  console.log(`    terminate across processes answered in ${Date.now() - started} ms`);
  // The client got the protocol's own error, with who and why.
  const err = await Promise.race([ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), 10_000))]);
  assert.ok(err, 'the client was disconnected');
  assert.is(err!.code, '57P01');
  assert.match(err!.message, expected);
  // The record: the request with who asked, and the SessionClosed with the reason.
  const rows = await until('both events in the ledger', async () => {
    const r = await env.store.query<{ event_type: string; subject: string; body: string }>(
      "SELECT event_type, subject, body FROM agate.ledger WHERE session_id = {id:String} AND event_type IN ('SessionTerminationRequested', 'SessionClosed') ORDER BY seq", { id: sessionId });
    return r.length === 2 ? r : undefined;
  }, { timeoutMs: SETTLE_MS, everyMs: POLL_MS, retryErrors: true });
  assert.equal(rows.map((r) => r.event_type), ['SessionTerminationRequested', 'SessionClosed']);
  assert.is(rows[0]!.subject, 'dist-admin');
  assert.is((JSON.parse(rows[0]!.body) as { reason: string }).reason, 'runaway query');
  assert.is((JSON.parse(rows[1]!.body) as { reason: string }).reason, expected);
  // Ended: asking again is a 404 once the record has the end.
  await until('the end in the record', async () => ((await terminate(sessionId, 'again')).status === 404 ? true : undefined), { timeoutMs: SETTLE_MS, everyMs: POLL_MS, retryErrors: true });
});

dist('policy down: statements are refused within the deadline, and the refusals are recorded', async () => {
  const env = await ready;
  await env.procs.policy.stop('SIGKILL');
  const c = await client(env, env.ports.a);
  const started = Date.now();
  try {
    await c.query("INSERT INTO probe VALUES ('no-policy')");
    assert.unreachable('ran without a verdict');
  } catch (err) {
    assert.is((err as { code: string }).code, '42501');
    assert.match((err as Error).message, `no verdict within ${VERDICT_TIMEOUT_MS} ms`);
  }
  const took = Date.now() - started;
  assert.ok(took >= VERDICT_TIMEOUT_MS - 50 && took < VERDICT_TIMEOUT_MS + 2000, `refused after ${took} ms`);
  assert.is(await env.pg.psql("SELECT count(*) FROM probe WHERE marker = 'no-policy'"), '0');
  await env.procs.policy.restart();
  await until('statements allowed again', async () => ((await c.query('SELECT 1 AS one')).rows[0].one === 1 ? true : undefined), { timeoutMs: 60_000, everyMs: POLL_MS, retryErrors: true });
  await c.end();
  await until('the deadline refusal in the ledger', async () => {
    const rows = await env.store.query<{ n: string }>(
      "SELECT count() AS n FROM agate.verdicts v INNER JOIN agate.commands c ON c.command_id = v.command_id WHERE v.source = 'deadline' AND v.rule_id = 'agate.verdict-deadline' AND c.text LIKE '%no-policy%'",
    );
    return Number(rows[0]?.n) === 1 ? true : undefined;
  }, { timeoutMs: SETTLE_MS, everyMs: POLL_MS, retryErrors: true });
});

dist('policy killed while a statement is held: after its restart an approval still releases the statement', async () => {
  const env = await ready;
  const c = await client(env, env.ports.a);
  const notices: string[] = [];
  c.on('notice', (n) => notices.push(n.message ?? ''));
  const truncated = c.query('TRUNCATE held');
  const id = await until('the hold notice', async () => /approval ([0-9a-f-]{36})/.exec(notices.join('\n'))?.[1], { timeoutMs: SETTLE_MS, everyMs: POLL_MS, retryErrors: true });
  // The request must be in the ledger before the crash: that record is what the restart reads.
  await until('the request in the ledger', async () => {
    const rows = await env.store.query<{ n: string }>("SELECT count() AS n FROM agate.ledger WHERE event_type = 'ApprovalRequested' AND JSONExtractString(body, 'approval_id') = {id:String}", { id });
    return Number(rows[0]?.n) === 1 ? true : undefined;
  }, { timeoutMs: SETTLE_MS, everyMs: POLL_MS, retryErrors: true });
  await env.procs.policy.stop('SIGKILL');
  await env.procs.policy.restart();
  assert.match(env.procs.policy.stderr(), /open approvals taken up from the ledger/);
  const approver = await env.issuer.mint({ sub: 'dist-approver', agate_role: 'approver' });
  const approved = await runCli(['approve', id, '--config', env.configs.svc, '--token', approver, '--url', `http://127.0.0.1:${env.ports.api}`]);
  assert.is(approved.code, 0, approved.stdout + approved.stderr);
  await truncated; // released: the statement ran
  assert.is(await env.pg.psql('SELECT count(*) FROM held'), '0');
  await c.end();
  await until('the release in the ledger', async () => {
    const rows = await env.store.query<{ decision: string; reason: string }>(
      "SELECT JSONExtractString(body, 'decision') AS decision, JSONExtractString(body, 'reason') AS reason FROM agate.ledger WHERE event_type = 'Verdict' AND JSONExtractString(body, 'approval_id') = {id:String} AND JSONExtractString(body, 'decision') = 'allow'",
      { id },
    );
    return rows[0]?.reason.includes('dist-approver') ? true : undefined;
  }, { timeoutMs: SETTLE_MS, everyMs: POLL_MS, retryErrors: true });
});

dist('ledger killed with SIGKILL mid-stream: the chain continues without gap or duplicate', async () => {
  const env = await ready;
  const c = await client(env, env.ports.b);
  for (let i = 0; i < 120; i++) {
    if (i === 40) await env.procs.ledger.stop('SIGKILL');
    if (i === 80) await env.procs.ledger.restart();
    await c.query(`INSERT INTO probe VALUES ('crash-${i}')`);
  }
  await c.end();
  await until('all 120 inserts in the ledger', async () => {
    const rows = await env.store.query<{ n: string }>("SELECT count() AS n FROM agate.commands WHERE text LIKE '%crash-%'");
    return Number(rows[0]?.n) >= 120 ? true : undefined;
  }, { timeoutMs: 90_000, everyMs: POLL_MS, retryErrors: true });
  await until('their responses too', async () => {
    const rows = await env.store.query<{ n: string }>("SELECT count() AS n FROM agate.responses r INNER JOIN agate.commands c ON c.command_id = r.command_id WHERE c.text LIKE '%crash-%'");
    return Number(rows[0]?.n) >= 120 ? true : undefined;
  }, { timeoutMs: 90_000, everyMs: POLL_MS, retryErrors: true });
  assert.is(await assertEveryRunCommandRecorded(env, 'crash-'), 120);
  await assertLedgerExact(env);
});

dist('broker stopped and restarted under load: nothing runs unaudited, outage commands are refused clearly', async () => {
  const env = await ready;
  const errors: string[] = [];
  let okAfterRestart = 0;
  let restarted = false;
  let attempted = 0;
  const load = (async () => {
    const c = await client(env, env.ports.a);
    for (let i = 0; okAfterRestart < 10 && i < 2000; i++) {
      attempted = i + 1;
      try {
        await c.query(`INSERT INTO probe VALUES ('outage-${i}')`);
        if (restarted) okAfterRestart += 1;
      } catch (err) {
        const e = err as { code?: string; message: string };
        errors.push(`${e.code}: ${e.message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await c.end();
  })();
  await new Promise((r) => setTimeout(r, 1500));
  await env.broker.stop();
  await new Promise((r) => setTimeout(r, 4000));
  await env.broker.restart();
  restarted = true;
  // A statement that never returns would hang the suite until run.sh's timeout; fail with the logs.
  const finished = await Promise.race([load.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 150_000).unref())]);
  if (!finished) {
    const tail = (name: Exclude<keyof Env['procs'], 'proxyC'>) => `--- ${name}:\n${env.procs[name].stderr().slice(-4000)}`;
    assert.unreachable(`a statement through proxy A got no answer within 150 s of the broker's restart (${okAfterRestart} ran after it; errors: ${errors.slice(-3).join(' | ')})\n${tail('proxyA')}\n${tail('policy')}\n${tail('ledger')}\nbroker:\n${env.broker.log().slice(-3000)}`);
  }
  assert.ok(okAfterRestart >= 10, `only ${okAfterRestart} statements ran after the broker came back; errors: ${errors.slice(-3).join(' | ')}`);
  assert.ok(errors.length > 0, 'no statement was refused during the outage');
  for (const e of errors) assert.match(e, /^(42501: Agate refused the statement: no verdict within|58000: Agate refused the statement: the audit log is unavailable)/);
  let counts = '';
  await until('the outage run fully recorded', async () => {
    const inPg = Number(await env.pg.psql("SELECT count(*) FROM probe WHERE marker LIKE 'outage-%'"));
    const rows = await env.store.query<{ n: string }>("SELECT count() AS n FROM agate.responses r INNER JOIN agate.commands c ON c.command_id = r.command_id WHERE c.text LIKE '%outage-%' AND r.status = 'ok'");
    counts = `${inPg} rows in PostgreSQL, ${rows[0]?.n} ok responses in the ledger`;
    return Number(rows[0]?.n) >= inPg ? true : undefined;
  }, { timeoutMs: 120_000, everyMs: POLL_MS, retryErrors: true }).catch((err: Error) => {
    // Say where the records stopped: the ledger's and the proxy's own account.
    const tail = (name: Exclude<keyof Env['procs'], 'proxyC'>) => `--- ${name}:\n${env.procs[name].stderr().slice(-4000)}`;
    assert.unreachable(`${err.message} (${counts})\n${tail('ledger')}\n${tail('proxyA')}`);
  });
  await assertEveryRunCommandRecorded(env, 'outage-');
  // Every attempt is in the record, the ones refused because the bus was away included.
  const attempts = await until('every attempted statement recorded', async () => {
    const rows = await env.store.query<{ n: string }>("SELECT uniqExact(text) AS n FROM agate.commands WHERE text LIKE 'INSERT INTO probe VALUES (''outage-%'");
    return Number(rows[0]?.n) >= attempted ? Number(rows[0]?.n) : undefined;
  }, { timeoutMs: 120_000, everyMs: POLL_MS, retryErrors: true }).catch(async () => Number((await env.store.query<{ n: string }>("SELECT uniqExact(text) AS n FROM agate.commands WHERE text LIKE 'INSERT INTO probe VALUES (''outage-%'"))[0]?.n));
  // A statement refused at the deadline while its Command was still being sent is recorded too,
  // once the broker is back (its send failed after the deadline: the proxy queues it again).
  assert.is(attempts, attempted, `${attempts} of ${attempted} attempted statements have their Command in the ledger (${errors.filter((e) => /no verdict within/.test(e)).length} were refused at the deadline)`);
  await assertLedgerExact(env);
});

dist('a proxy killed with SIGKILL: its lease expires, its open psql session is closed as such, its verdict group deleted', async () => {
  const env = await ready;
  const port = await findFreePort();
  const configC = join(env.dir, 'c.yaml');
  writeFileSync(configC, config(env, 'proxy-c', port));
  const proxyC = await startRole('proxy', configC);
  env.procs.proxyC = proxyC; // stopped by dist.after should anything below fail
  const psql = spawn('/usr/bin/psql', ['-X', '-A', '-t', '-h', '127.0.0.1', '-p', String(port), '-U', 'agent', '-d', 'appdb'], {
    env: cleanEnv({ PGPASSWORD: env.token, PGCONNECT_TIMEOUT: '10' }), stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  psql.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  psql.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise((r) => psql.once('exit', r));
  try {
    psql.stdin.write("SELECT 'lease-' || 'alive';\n");
    await until('psql\'s answer through proxy C', async () => (out.includes('lease-alive') ? true : undefined), { timeoutMs: 30_000, everyMs: POLL_MS, retryErrors: true });
    const [opened] = await until('the session in the ledger', async () => {
      const rows = await env.store.query<{ session_id: string; lease: string }>(
        "SELECT session_id, JSONExtractString(body, 'attributes', 'proxy_lease') AS lease FROM agate.ledger WHERE event_type = 'SessionOpened' AND JSONExtractString(body, 'proxy_id') = 'proxy-c'",
      );
      return rows.length === 1 ? rows : undefined;
    }, { timeoutMs: SETTLE_MS, everyMs: POLL_MS, retryErrors: true });
    assert.match(opened!.lease, /^agate\.verdicts\.proxy-c\./);
    const admin = new Admin({ clientId: 'dist-test', bootstrapBrokers: [env.broker.bootstrap] });
    try {
      const groups = async () => [...(await admin.listGroups()).keys()];
      assert.ok((await groups()).includes(opened!.lease), 'proxy C holds its lease (its verdict group)');
      await proxyC.stop('SIGKILL');
      const killed = Date.now();
      // The broker drops the dead member after its 10 s session timeout; the lease is then vacant
      // for bus.proxy_lease_ms (10 s), and the ledger looks every 5 s.
      const closed = await until('the session closed in the ledger', async () => {
        const rows = await env.store.query<{ reason: string; commands: string }>(
          "SELECT JSONExtractString(body, 'reason') AS reason, toString(JSONExtractInt(body, 'commands')) AS commands FROM agate.ledger WHERE event_type = 'SessionClosed' AND session_id = {s:String}",
          { s: opened!.session_id },
        );
        return rows.length > 0 ? rows : undefined;
      }, { timeoutMs: 60_000, everyMs: POLL_MS, retryErrors: true });
      const took = Date.now() - killed;
      const [recorded] = await env.store.query<{ n: string }>("SELECT toString(count()) AS n FROM agate.ledger WHERE event_type = 'Command' AND session_id = {s:String}", { s: opened!.session_id });
      assert.ok(Number(recorded!.n) >= 1);
      assert.equal(closed, [{ reason: 'proxy lease expired', commands: recorded!.n }]);
      assert.ok(took < 10_000 + 10_000 + 5_000 + 10_000, `closed ${took} ms after the kill`);
      await until('proxy C\'s verdict group deleted', async () => (!(await groups()).includes(opened!.lease) ? true : undefined), { timeoutMs: 30_000, everyMs: POLL_MS, retryErrors: true });
      // Proxies A and B hold their leases: none of their groups went, none of their sessions was closed so.
      const live = (await groups()).filter((g) => g.startsWith('agate.verdicts.'));
      assert.ok(live.some((g) => g.startsWith('agate.verdicts.proxy-a.')) && live.some((g) => g.startsWith('agate.verdicts.proxy-b.')), live.join(', '));
      const wrong = await env.store.query<{ n: string }>("SELECT count() AS n FROM agate.ledger WHERE event_type = 'SessionClosed' AND JSONExtractString(body, 'reason') = 'proxy lease expired'");
      assert.is(Number(wrong[0]!.n), 1);
    } finally {
      await admin.close();
    }
  } finally {
    psql.kill('SIGKILL');
    await exited;
  }
  await assertLedgerExact(env);
});

dist.run();
