// OCSF conformance from live traffic: PostgreSQL statements (allowed, denied, held then approved,
// held then denied, held until timeout) and ssh commands (allowed, denied, held then approved, a
// refused -L tunnel) through the real proxy, logins good and bad; the export is validated against
// the official OCSF 1.3.0 schema with pydantic-ocsf (an independent validator), each event is
// proven in the ledger by its metadata.uid, and each held command exports its final decision.
// (Kubernetes API Activity is validated the same way in k8s.test.ts.)
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { ocsfErrors } from '../harness/ocsf-validator.js';
import { findFreePort, startPostgres } from '../harness/postgres.js';
import { startOidcIssuer } from '../harness/oidc-issuer.js';
import { EventCodec } from '../../schemas/src/codec.js';
import { agateConfig, startAgateProcess, type AgateProcess } from './agate-process.js';
import { busLogBytes, logEvents } from './bus-log.js';
import { startAgateWithSsh, type AgateFixture } from './agate-fixture.js';
import { askpassEnv, sshArgs } from './openssh-client.js';
import { until } from '../harness/until.js';
import { connectAgent } from '../harness/agent-client.js';

type Json = Record<string, any>;
interface Ctx { sshd?: SshServer; agate?: AgateFixture; api?: string }
const test = suite<Ctx>('e2e/ocsf: every class Agate emits validates against OCSF 1.3.0');

test.after(async (ctx) => {
  await ctx.agate?.cleanup();
  await ctx.sshd?.stop();
});

/** The export and the ledger proofs come from the store, a few seconds behind the proxies. */
const SLOW = { timeoutMs: 30_000, everyMs: 150 };

/** Answers a pending approval whose text contains `text` through the query API. */
async function answer(ctx: Ctx, text: string, decision: 'approve' | 'deny', approver: string): Promise<void> {
  const tok = await ctx.agate!.oidc.mint({ sub: approver, agate_role: 'approver' });
  const headers = { authorization: `Bearer ${tok}`, 'content-type': 'application/json' };
  const id = await until(`the approval of ${text}`, async () => {
    const body = (await (await fetch(`${ctx.api}/v1/approvals?status=pending`, { headers })).json()) as { approvals: { approval_id: string; text: string }[] };
    return body.approvals.find((a) => a.text.includes(text))?.approval_id;
  }, SLOW);
  const res = await fetch(`${ctx.api}/v1/approvals/${id}/${decision}`, { method: 'POST', headers, body: '{}' });
  assert.is(res.status, 200, await res.text());
}

/** Runs `command` on the ssh target through Agate with a token password; resolves with its exit code. */
function ssh(ctx: Ctx, command: string, extra: string[] = []): Promise<number | null> {
  const agate = ctx.agate!;
  return agate.oidc.mint({ sub: 'repo:acme/app:ref:refs/heads/main', repository: 'acme/app' }, { alg: 'ES256' }).then((token) => {
    const child = spawn('/usr/bin/ssh', sshArgs(agate.ssh!.port, ...extra, `box@${agate.ssh!.host}`, command), { env: askpassEnv(agate.dir, token), stdio: ['ignore', 'ignore', 'ignore'] });
    return new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  });
}

test('live PostgreSQL and ssh traffic exports valid, provable OCSF with final decisions', async (ctx) => {
  const sshd = (ctx.sshd = await startSshd());
  const agate = (ctx.agate = await startAgateWithSsh(sshd, `    - { id: no-truncate, action: deny, match: { sql: { statements: [TruncateStmt] } } }
    - { id: drop-needs-dba, action: hold, match: { sql: { statements: [DropStmt] } }, approval: { timeout_s: 4 } }
    - { id: no-rm, action: deny, match: { protocols: [ssh], shell: { commands: [rm] } } }
    - { id: touch-needs-approval, action: hold, match: { protocols: [ssh], shell: { commands: [touch] } }, approval: { timeout_s: 60 } }
`));
  ctx.api = agate.apiUrl;

  const client = await agate.client();
  await client.query('CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE TABLE c (id int)');
  await client.query('SELECT 1');
  await client.query('TRUNCATE a').catch(() => undefined);
  const approved = client.query('DROP TABLE a');
  await answer(ctx, 'DROP TABLE a', 'approve', 'alice');
  await approved;
  const denied = client.query('DROP TABLE b').catch((e: Error) => e);
  await answer(ctx, 'DROP TABLE b', 'deny', 'bob');
  assert.match(String(await denied), /denied by approver bob/);
  assert.match(String(await client.query('DROP TABLE c').catch((e: Error) => e)), /no approval within/);
  await client.end();
  const bad = new pg.Client({ host: agate.host, port: agate.port, database: 'appdb', user: 'agent', password: 'not-a-token' });
  bad.on('error', () => undefined);
  await bad.connect().catch(() => undefined);

  assert.is(await ssh(ctx, 'echo ok'), 0);
  assert.not.equal(await ssh(ctx, 'rm -f /tmp/agate-ocsf-nothing'), 0);
  const held = ssh(ctx, `touch /tmp/agate-ocsf-${process.pid}`);
  await answer(ctx, 'touch /tmp/agate-ocsf-', 'approve', 'carol');
  assert.is(await held, 0);
  const local = await findFreePort();
  // -L is decided when a connection comes through it: connect once the client listens.
  const tunnelled = ssh(ctx, 'sleep 3', ['-L', `${local}:127.0.0.1:${sshd.port}`]);
  await until('the -L listener', () => new Promise<true | undefined>((resolve) => {
    const s = connect(local, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(undefined));
  }), SLOW);
  await tunnelled;

  const analyst = await agate.oidc.mint({ sub: 'auditor', agate_role: 'analyst' });
  const headers = { authorization: `Bearer ${analyst}` };
  const wanted = ['DROP TABLE a', 'DROP TABLE b', 'DROP TABLE c', 'TRUNCATE a', 'echo ok', 'rm -f', 'touch /tmp/agate-ocsf-', 'direct-tcpip'];
  const events = await until('every command in the export', async () => {
    const text = await (await fetch(`${ctx.api}/v1/export/ocsf?after=0&limit=5000`, { headers })).text();
    const all = text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Json);
    const texts = all.map((e) => String(e.query_info?.query_string ?? e.process?.cmd_line ?? ''));
    return wanted.every((w) => texts.some((t) => t.startsWith(w))) && all.some((e) => e.class_uid === 3002 && e.status_id === 2) ? all : undefined;
  }, SLOW);
  assert.equal(await ocsfErrors(events), {}, 'every exported event is valid OCSF 1.3.0');
  const classes = new Set(events.map((e) => e.class_uid));
  for (const c of [6005, 1007, 3002]) assert.ok(classes.has(c), `class ${c} exported`);

  const byText = (t: string) => events.find((e) => String(e.query_info?.query_string ?? e.process?.cmd_line ?? '').startsWith(t))!;
  const final = (t: string) => byText(t).unmapped.agate.decision;
  assert.equal([final('DROP TABLE a').decision, final('DROP TABLE a').decided_by, final('DROP TABLE a').approvers[0].approver_subject], ['allow', 'approver', 'alice']);
  assert.equal([final('DROP TABLE b').decision, final('DROP TABLE b').decided_by, final('DROP TABLE b').approvers[0].approver_subject], ['deny', 'approver', 'bob']);
  assert.equal([final('DROP TABLE c').decision, final('DROP TABLE c').decided_by], ['deny', 'timeout']);
  assert.is(byText('DROP TABLE b').action, 'Denied');
  assert.is(byText('DROP TABLE a').activity_id, 7);
  assert.equal([final('touch /tmp/agate-ocsf-').decided_by, byText('touch /tmp/agate-ocsf-').action], ['approver', 'Allowed']);
  assert.is(byText('rm -f').action, 'Denied');
  const tunnel = events.find((e) => String(e.process?.cmd_line ?? '').startsWith('direct-tcpip'));
  assert.ok(tunnel, 'the refused tunnel is exported');
  assert.equal([tunnel!.action, tunnel!.unmapped.agate.decision.rule_id], ['Denied', 'agate.forwarding-needs-rule']);

  // Every exported event can be proven by its metadata.uid.
  for (const e of events) {
    await until(`a ledger proof for ${e.class_uid} ${e.metadata.uid}`, async () =>
      (await fetch(`${ctx.api}/v1/ledger/proof/${e.metadata.uid}`, { headers })).status === 200 ? true : undefined, SLOW);
  }
});

test('a statement cut by a crash (SIGKILL while PostgreSQL runs it) exports status Unknown, valid OCSF', async () => {
  const work = mkdtempSync(join(tmpdir(), 'agate-ocsf-cut-'));
  const [p, i] = await Promise.allSettled([startPostgres(), startOidcIssuer({ audience: 'agate' })]);
  const pgServer = p.status === 'fulfilled' ? p.value : undefined;
  const issuer = i.status === 'fulfilled' ? i.value : undefined;
  const started: AgateProcess[] = [];
  try {
    for (const r of [p, i]) if (r.status === 'rejected') throw r.reason;
    const base = agateConfig({ pg: pgServer!, issuer: issuer! });
    const start = async () => {
      const a = await startAgateProcess({ configYaml: (pl) => base(pl).replace(/^data_dir: .*$/m, `data_dir: ${JSON.stringify(join(work, 'data'))}`) });
      started.push(a);
      return a;
    };
    const first = await start();
    const client = await connectAgent({ port: first.pgPort, token: await issuer!.mint({ sub: 'ci-bot' }) });
    const running = client.query('SELECT pg_sleep(60)').catch(() => undefined);
    // Forwarded: its command and allow verdict are on disk, and PostgreSQL is running it.
    await until('pg_sleep running in PostgreSQL', async () => {
      const events = logEvents(busLogBytes(join(work, 'data', 'bus')), new EventCodec());
      const c = events.find((e) => e.type === 'Command' && e.text.startsWith('SELECT pg_sleep'));
      if (c === undefined || !events.some((e) => e.type === 'Verdict' && e.command_id === c.event_id && e.decision === 'allow')) return undefined;
      const out = await pgServer!.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'");
      return out.trim() === '1' ? true : undefined;
    }, SLOW);
    process.kill(first.pid, 'SIGKILL');
    await running;
    assert.is((await first.stop()).signal, 'SIGKILL');
    const second = await start(); // closes the cut command with outcome unknown
    const headers = { authorization: `Bearer ${await issuer!.mint({ sub: 'auditor', agate_role: 'analyst' })}` };
    const cut = await until('the cut statement in the export', async () => {
      const text = await (await fetch(`${second.apiUrl}/v1/export/ocsf?after=0&limit=5000`, { headers })).text();
      return text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Json).find((e) => String(e.query_info?.query_string ?? '').startsWith('SELECT pg_sleep'));
    }, SLOW);
    assert.equal([cut.status_id, cut.status, cut.unmapped.agate.outcome, cut.action], [0, 'Unknown', 'unknown', 'Allowed']);
    assert.match(cut.status_detail, /^outcome unknown: Agate stopped after forwarding/);
    assert.equal(await ocsfErrors([cut]), {}, 'the cut statement is valid OCSF 1.3.0');
  } finally {
    for (const a of started) await a.dispose();
    await pgServer?.stop();
    await issuer?.close();
    rmSync(work, { recursive: true, force: true });
  }
});

test.run();
