// Approvals through the real proxy: a `hold` rule keeps a DROP TABLE waiting while node-postgres
// sees a notice naming the approval; refused attempts (no approver role, self-approval) change
// nothing; an approver's `agate approve` releases it; a second held statement times out and is
// refused; the query API shows every step from the ledger. psql shows the notice too.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DEFAULT_PG_BIN, startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { agateConfig, cleanEnv, startAgateProcess, type AgateProcess, type CliResult } from './agate-process.js';
import { ocsfErrors } from '../harness/ocsf-validator.js';
import { until } from '../harness/until.js';

const POLICY = `policy:
  default: allow
  rules:
    - id: drop-needs-dba
      action: hold
      match: { sql: { statements: [DropStmt] } }
      approval: { approvers: { claims: { team: dba } }, required: 1, timeout_s: 60 }
    - id: truncate-needs-dba
      action: hold
      match: { sql: { statements: [TruncateStmt] } }
      approval: { approvers: { claims: { team: dba } }, timeout_s: 3 }
`;

interface Ctx { pg: PostgresServer; oidc: OidcIssuer; agate: AgateProcess; agentSub: string }
/** The fields of a NoticeResponse this test reads (node-postgres emits them on 'notice'). */
type Notice = { message?: string; hint?: string };
const approvals = suite<Ctx>('approvals: held statements released by a human');

approvals.before(async (ctx) => {
  ctx.pg = await startPostgres();
  ctx.oidc = await startOidcIssuer();
  ctx.agate = await startAgateProcess({ configYaml: agateConfig({ pg: ctx.pg, issuer: ctx.oidc, policy: POLICY }) });
  ctx.agentSub = String(ctx.oidc.githubActionsClaims().sub);
});

approvals.after(async (ctx) => {
  await ctx.agate?.dispose();
  await ctx.oidc?.close();
  await ctx.pg?.stop();
});

const agentClient = async (ctx: Ctx, notices: Notice[]): Promise<pg.Client> => {
  const c = new pg.Client({ host: '127.0.0.1', port: ctx.agate.pgPort, database: 'appdb', user: 'agent', password: await ctx.oidc.mint(ctx.oidc.githubActionsClaims()) });
  c.on('notice', (n) => notices.push(n));
  await c.connect();
  return c;
};

const agentToken = (ctx: Ctx) => ctx.oidc.mint(ctx.oidc.githubActionsClaims());
const token = (ctx: Ctx, claims: Record<string, unknown>) => ctx.oidc.mint(claims);
const cli = (ctx: Ctx, args: string[], tok: string): Promise<CliResult> => ctx.agate.cli([...args, '--config', ctx.agate.configPath, '--token', tok]);

async function api<T>(ctx: Ctx, path: string, tok: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(ctx.agate.apiUrl + path, { ...init, headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' } });
  return { status: res.status, body: (await res.json()) as T };
}

const approvalIdOf = (n: Notice | undefined): string => /approval ([0-9a-f-]{36})/.exec(n?.message ?? '')?.[1] ?? '';

interface ApprovalRow { approval_id: string; status: string; approvals: number; command_id: string; final_reason: string | null; requester_subject: string }

/** `refused`: every refused attempt; `refusedBeforeOutcome`: those recorded before the response, which the exported event (complete at its response) carries. */
interface Expected { decision: 'allow' | 'deny'; decided_by: 'approver' | 'timeout'; approvers: string[]; refused: string[]; refusedBeforeOutcome?: string[] }
type Json = Record<string, any>;

/**
 * The same final decision, with who made it, through every interface: GET /v1/commands/{id},
 * GET /v1/sessions/{id}, `agate session`, and the OCSF export (which must also validate against
 * OCSF 1.3.0 and be provable by its metadata.uid).
 */
async function assertFinalEverywhere(ctx: Ctx, commandId: string, want: Expected): Promise<void> {
  const analyst = await token(ctx, { sub: 'auditor', agate_role: 'analyst' });
  const detail = await until('the command with its response', async () => {
    const r = await api<{ command: Json }>(ctx, `/v1/commands/${commandId}`, analyst);
    // The ledger takes in events asynchronously: wait until the response and every attempt are there.
    const c = r.body.command;
    return c?.response != null && c.decision?.decided_by !== 'pending' && c.decision?.hold?.refusals.length === want.refused.length ? c : undefined;
  });
  assert.is(detail.decision.decision, want.decision, JSON.stringify(detail.decision));
  assert.is(detail.decision.decided_by, want.decided_by);
  assert.equal(detail.decision.approvers.map((a: Json) => a.approver_subject), want.approvers);
  assert.is(detail.verdict.decision, want.decision, 'the verdict shown is the one that settled it');
  assert.equal(detail.verdicts.map((v: Json) => v.decision), ['hold', want.decision]);
  // Refused attempts are recorded as refusals, never listed as answers.
  assert.equal(detail.approvals.map((a: Json) => a.approver_subject), want.approvers);
  assert.equal(detail.decision.hold.refusals.map((a: Json) => a.approver_subject), want.refused);
  assert.ok(detail.decision.hold.refusals.every((a: Json) => typeof a.refused_reason === 'string' && a.refused_reason.length > 0));

  const session = await api<{ commands: Json[] }>(ctx, `/v1/sessions/${detail.session_id}`, analyst);
  const row = session.body.commands.find((c) => c.command_id === commandId)!;
  assert.is(row.decision, want.decision);
  assert.is(row.decided_by, want.decided_by);
  assert.equal(row.approvers, want.approvers);

  // The analyst view answers the same: decision, who decided, which approvers.
  const viewed = await api<{ rows: Json[] }>(ctx, '/v1/sql', analyst, {
    method: 'POST', body: JSON.stringify({ sql: `SELECT decision, decided_by, approvers, held FROM agate.decisions WHERE command_id = '${commandId}'` }),
  });
  assert.equal(viewed.body.rows, [{ decision: want.decision, decided_by: want.decided_by, approvers: want.approvers, held: true }], JSON.stringify(viewed.body));

  const shown = await cli(ctx, ['session', detail.session_id], analyst);
  assert.is(shown.code, 0, shown.stderr);
  const line = shown.stdout.split('\n').find((l) => l.includes(detail.text))!;
  const by = want.decided_by === 'approver' ? `approver ${want.approvers.join(', ')}` : want.decided_by;
  assert.match(line, new RegExp(`\\b${want.decision}\\s+${by}\\b`), line);

  // The replay shows refused attempts as refusals, and only counted answers as approvals.
  const replay = await cli(ctx, ['replay', detail.session_id], analyst);
  assert.is(replay.code, 0, replay.stderr);
  for (const who of want.refused) assert.match(replay.stdout, new RegExp(`refused attempt to (approve|deny) by ${who.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .+`));
  const answered = [...replay.stdout.matchAll(/ approval: \w+ by (\S+)/g)].map((m) => m[1]);
  for (const who of want.refused) assert.not.ok(answered.includes(who), `${who} is not listed as an answer`);

  const exported = await until('the command in the OCSF export', async () => {
    const res = await fetch(`${ctx.agate.apiUrl}/v1/export/ocsf?after=0&limit=5000`, { headers: { authorization: `Bearer ${analyst}` } });
    const events = (await res.text()).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Json);
    const e = events.find((x) => x.unmapped?.agate?.command_id === commandId);
    return e === undefined ? undefined : { e, events };
  });
  const e = exported.e;
  assert.equal(await ocsfErrors(exported.events), {}, 'every exported event is valid OCSF 1.3.0');
  assert.is(e.action, want.decision === 'allow' ? 'Allowed' : 'Denied');
  assert.is(e.disposition, want.decision === 'allow' ? 'Allowed' : 'Blocked');
  assert.is(e.unmapped.agate.decision.decided_by, want.decided_by);
  assert.equal(e.unmapped.agate.decision.approvers.map((a: Json) => a.approver_subject), want.approvers);
  assert.equal(e.unmapped.agate.decision.hold.refusals.map((a: Json) => a.approver_subject), want.refusedBeforeOutcome ?? want.refused);
  assert.ok(e.start_time < e.time, 'start_time is when the statement was issued, before the hold settled');
  // Every exported event can be proven: its metadata.uid is a ledger event id.
  for (const x of exported.events) {
    const proof = await until(`a proof for ${x.class_uid} ${x.metadata.uid}`, async () => {
      const r = await fetch(`${ctx.agate.apiUrl}/v1/ledger/proof/${x.metadata.uid}`, { headers: { authorization: `Bearer ${analyst}` } });
      return r.status === 200 ? ((await r.json()) as Json) : undefined;
    });
    assert.ok(proof, `proof for ${x.metadata.uid}`);
  }
}

approvals('a held DROP TABLE waits, refused attempts change nothing, an approver releases it via the CLI', async (ctx) => {
  const notices: Notice[] = [];
  const agent = await agentClient(ctx, notices);
  try {
    await agent.query('CREATE TABLE doomed (id int)');
    let settled = false;
    const drop = agent.query('DROP TABLE doomed').finally(() => (settled = true));
    drop.catch(() => undefined);

    const notice = await until('the hold notice', async () => notices.find((n) => /holding this statement/.test(n.message ?? '')));
    const id = approvalIdOf(notice);
    assert.ok(id, `the notice names the approval: ${notice.message}`);
    assert.match(notice.hint ?? '', `agate approve ${id}`);

    const alice = await token(ctx, { sub: 'alice', agate_role: 'approver', team: 'dba' });
    const pending = await until('the pending approval in the API', async () => {
      const r = await api<{ approvals: ApprovalRow[] }>(ctx, '/v1/approvals?status=pending', alice);
      return r.body.approvals.find((a) => a.approval_id === id);
    });
    assert.is(pending.requester_subject, ctx.agentSub);

    // An identity without the approver role (it holds no role at all) is refused, and the attempt recorded.
    const bob = await cli(ctx, ['approve', id], await token(ctx, { sub: 'bob', team: 'dba' }));
    assert.is(bob.code, 1, bob.stdout + bob.stderr);
    assert.match(bob.stderr, /403.*approver role/, bob.stderr);
    // The agent itself, even holding the role and the claims, may not approve its own statement.
    const self = await cli(ctx, ['approve', id], await token(ctx, { ...ctx.oidc.githubActionsClaims(), agate_role: 'approver', team: 'dba' }));
    assert.is(self.code, 1, self.stdout + self.stderr);
    assert.match(self.stderr, /self-approval/);
    // An approver without the rule's claims is refused too.
    const carol = await cli(ctx, ['approve', id], await token(ctx, { sub: 'carol', agate_role: 'approver', team: 'web' }));
    assert.is(carol.code, 1);
    assert.match(carol.stderr, /lacks claim team/);
    await new Promise((r) => setTimeout(r, 300));
    assert.not.ok(settled, 'the DROP still waits after refused attempts');

    const listed = await cli(ctx, ['approvals'], alice);
    assert.is(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, id);

    const ok = await cli(ctx, ['approve', id, '--comment', 'checked the backup'], alice);
    assert.is(ok.code, 0, ok.stdout + ok.stderr);
    await drop;
    const gone = await agent.query("SELECT to_regclass('public.doomed') AS t");
    assert.is(gone.rows[0].t, null, 'the table was dropped');

    const done = await until('the approved state in the API', async () => {
      const r = await api<{ approval: ApprovalRow; decisions: { approver_subject: string }[]; refusals: { approver_subject: string; refused_reason: string }[] }>(ctx, `/v1/approvals/${id}`, alice);
      return r.body.approval?.status === 'approved' && r.body.refusals.length === 3 ? r.body : undefined;
    });
    // Answers are the approvers' decisions; refused attempts are listed apart, each with its reason.
    assert.equal(done.decisions.map((d) => d.approver_subject), ['alice']);
    assert.equal(done.refusals.map((d) => d.approver_subject), ['bob', ctx.agentSub, 'carol']);
    assert.ok(done.refusals.every((d) => d.refused_reason.length > 0));
    // The analyst views keep them apart too.
    const viewer = await token(ctx, { sub: 'auditor', agate_role: 'analyst' });
    const viewed = async (view: string) => (await api<{ rows: { approver_subject: string }[] }>(ctx, '/v1/sql', viewer, {
      method: 'POST', body: JSON.stringify({ sql: `SELECT approver_subject FROM agate.${view} WHERE approval_id = '${id}' ORDER BY seq` }),
    })).body.rows.map((r) => r.approver_subject);
    assert.equal(await viewed('approvals'), ['alice']);
    assert.equal(await viewed('approval_refusals'), ['bob', ctx.agentSub, 'carol']);
    const expiry = await api<{ rows: { t: string; same: number }[] }>(ctx, '/v1/sql', viewer, {
      method: 'POST', body: JSON.stringify({ sql: `SELECT toTypeName(expires_at) AS t, toUnixTimestamp64Micro(expires_at) = expires_at_us AS same FROM agate.approval_requests WHERE approval_id = '${id}'` }),
    });
    assert.equal(expiry.body.rows, [{ t: "DateTime64(6, 'UTC')", same: 1 }], 'the expiry is a DateTime like every other time');
    assert.is(done.approval.approvals, 1);

    // The verdicts in the ledger: the hold, then the final allow naming the approver.
    const analyst = await token(ctx, { sub: 'auditor', agate_role: 'analyst' });
    const verdicts = await until('both verdicts in the ledger', async () => {
      const r = await api<{ rows: { decision: string; reason: string }[] }>(ctx, '/v1/sql', analyst, {
        method: 'POST', body: JSON.stringify({ sql: `SELECT decision, reason FROM agate.verdicts WHERE command_id = '${done.approval.command_id}' ORDER BY seq` }),
      });
      if (r.status !== 200) throw new Error(JSON.stringify(r.body));
      return r.body.rows?.length === 2 ? r.body.rows : undefined;
    });
    assert.equal(verdicts.map((v) => v.decision), ['hold', 'allow']);
    assert.match(verdicts[1]!.reason, /approved by alice/);
    await assertFinalEverywhere(ctx, done.approval.command_id, { decision: 'allow', decided_by: 'approver', approvers: ['alice'], refused: ['bob', ctx.agentSub, 'carol'] });
  } finally {
    await agent.end();
  }
});

approvals('a held statement nobody approves is refused at its timeout, and recorded', async (ctx) => {
  const notices: Notice[] = [];
  const agent = await agentClient(ctx, notices);
  try {
    await agent.query('CREATE TABLE kept (id int)');
    await agent.query('INSERT INTO kept VALUES (1)');
    const started = Date.now();
    const err = await agent.query('TRUNCATE kept').then(() => undefined, (e: Error & { code?: string }) => e);
    const waited = Date.now() - started;
    assert.ok(err, 'TRUNCATE was refused');
    assert.is(err!.code, '42501');
    assert.match(err!.message, /no approval within 3 s/);
    assert.ok(waited >= 2500, `it waited for the approval (${waited} ms)`);
    const id = approvalIdOf(notices[0]);
    assert.ok(id);
    const rows = await agent.query('SELECT count(*)::int AS n FROM kept');
    assert.is(rows.rows[0].n, 1, 'nothing was truncated');

    const alice = await token(ctx, { sub: 'alice', agate_role: 'approver', team: 'dba' });
    const expired = await until('the expired state in the API', async () => {
      const r = await api<{ approvals: ApprovalRow[] }>(ctx, '/v1/approvals?status=expired', alice);
      return r.body.approvals.find((a) => a.approval_id === id && a.final_reason !== null);
    });
    assert.match(expired.final_reason ?? '', /no approval within/);
    // Too late: an approval after the timeout is refused.
    const late = await cli(ctx, ['approve', id], alice);
    assert.is(late.code, 1);
    assert.match(late.stderr, /409/);
    await assertFinalEverywhere(ctx, expired.command_id, { decision: 'deny', decided_by: 'timeout', approvers: [], refused: ['alice'], refusedBeforeOutcome: [] });
  } finally {
    await agent.end();
  }
});

approvals('a held statement an approver denies is refused, and every interface says denied by that approver', async (ctx) => {
  const notices: Notice[] = [];
  const agent = await agentClient(ctx, notices);
  try {
    await agent.query('CREATE TABLE spared (id int)');
    const drop = agent.query('DROP TABLE spared').then(() => undefined, (e: Error & { code?: string }) => e);
    const notice = await until('the hold notice', async () => notices.find((n) => /holding this statement/.test(n.message ?? '')));
    const id = approvalIdOf(notice);
    const dave = await token(ctx, { sub: 'dave', agate_role: 'approver', team: 'dba' });
    await until('the pending approval', async () => ((await api<{ approvals: ApprovalRow[] }>(ctx, '/v1/approvals?status=pending', dave)).body.approvals.some((a) => a.approval_id === id) ? true : undefined));
    // The agent's own attempt to approve (it holds no approver role) is refused with 403 first.
    const self = await api<{ error: { code: string } }>(ctx, `/v1/approvals/${id}/approve`, await agentToken(ctx), { method: 'POST', body: '{}' });
    assert.is(self.status, 403);
    const no = await cli(ctx, ['deny', id, '--comment', 'not today'], dave);
    assert.is(no.code, 0, no.stdout + no.stderr);
    const err = await drop;
    assert.ok(err, 'the DROP was refused');
    assert.is(err!.code, '42501');
    assert.match(err!.message, /denied by approver dave/);
    const still = await agent.query("SELECT to_regclass('public.spared') AS t");
    assert.is(still.rows[0].t, 'spared', 'the table is still there');
    const [row] = (await api<{ approvals: ApprovalRow[] }>(ctx, `/v1/approvals?limit=1000`, dave)).body.approvals.filter((a) => a.approval_id === id);
    await assertFinalEverywhere(ctx, row!.command_id, { decision: 'deny', decided_by: 'approver', approvers: ['dave'], refused: [ctx.agentSub] });

    // Stats count each command once, by its final decision (a held command has two verdicts).
    const analyst = await token(ctx, { sub: 'auditor', agate_role: 'analyst' });
    const stats = await api<{ buckets: { commands: number; allowed: number; denied: number; masked: number; pending: number; held: number }[] }>(
      ctx, `/v1/stats/commands?interval=minute&from=${new Date(Date.now() - 3_600_000).toISOString()}`, analyst);
    const sum = (k: 'commands' | 'allowed' | 'denied' | 'masked' | 'pending' | 'held') => stats.body.buckets.reduce((n, b) => n + b[k], 0);
    const counted = await api<{ rows: { commands: string; held: string }[] }>(ctx, '/v1/sql', analyst, {
      method: 'POST', body: JSON.stringify({ sql: "SELECT count() AS commands, (SELECT uniqExact(command_id) FROM agate.verdicts WHERE decision = 'hold') AS held FROM agate.commands" }),
    });
    assert.is(sum('commands'), Number(counted.body.rows[0]!.commands));
    assert.is(sum('allowed') + sum('denied') + sum('masked') + sum('pending'), sum('commands'));
    assert.is(sum('held'), Number(counted.body.rows[0]!.held));
  } finally {
    await agent.end();
  }
});

approvals('psql shows the hold notice and runs the statement once approved via the API', async (ctx) => {
  const setup = await agentClient(ctx, []);
  await setup.query('CREATE TABLE psql_doomed (id int)');
  await setup.end();
  const env = cleanEnv({
    PGHOST: '127.0.0.1', PGPORT: String(ctx.agate.pgPort), PGDATABASE: 'appdb', PGUSER: 'agent', PGSSLMODE: 'disable',
    PGPASSWORD: await ctx.oidc.mint(ctx.oidc.githubActionsClaims()),
  });
  const psql = spawn(join(process.env.AGATE_PG_BIN ?? DEFAULT_PG_BIN, 'psql'), ['-X', '-v', 'ON_ERROR_STOP=1', '-c', 'DROP TABLE psql_doomed'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  psql.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  psql.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  const exited = new Promise<number | null>((resolve) => psql.on('close', resolve));
  try {
    await until('the NOTICE in psql', async () => (/NOTICE: {2}Agate is holding this statement for approval/.test(stderr) ? true : undefined));
    const id = /approval ([0-9a-f-]{36})/.exec(stderr)![1]!;
    assert.match(stderr, `HINT:  An approver runs: agate approve ${id}`);
    const alice = await token(ctx, { sub: 'alice', agate_role: 'approver', team: 'dba' });
    await until('the pending approval', async () => ((await api<{ approvals: ApprovalRow[] }>(ctx, '/v1/approvals?status=pending', alice)).body.approvals.some((a) => a.approval_id === id) ? true : undefined));
    const r = await api<{ recorded: boolean }>(ctx, `/v1/approvals/${id}/approve`, alice, { method: 'POST', body: JSON.stringify({ comment: 'via the API' }) });
    assert.is(r.status, 200);
    assert.is(await exited, 0, stderr);
    assert.match(stdout, /DROP TABLE/);
  } finally {
    psql.kill();
  }
});

approvals.run();
