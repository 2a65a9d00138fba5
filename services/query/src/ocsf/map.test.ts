import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { initSqlParser } from '../../../../core/src/sql/analyze.js';
import type { ApprovalDecision, ApprovalRequested, Verdict } from '../../../../schemas/src/events.js';
import { ocsfErrors } from '../../../../test/harness/ocsf-validator.js';
import { finalDecision } from '../final-decision.js';
import { toOcsf, type CommandRecord, type LoginRecord } from './map.js';
import { sqlActivity } from './sql-activity.js';

const T0 = Date.UTC(2026, 2, 1, 12, 0, 0) * 1000;
const verdict = (decision: Verdict['decision'], extra: Partial<Verdict> = {}): Verdict => ({
  type: 'Verdict', event_id: `v-${decision}-${extra.time ?? T0}`, time: T0, session_id: 's-1', command_id: 'c-1', decision,
  rule_id: decision === 'allow' ? null : 'no-drop', reason: 'r', source: 'policy', policy_revision: 'x', mask_set: null, approval_id: null, hold_expires_at: null, ...extra,
});
const command = (protocol: string, text: string, verdicts: Verdict[] = [verdict('allow')], answers: ApprovalDecision[] = [], requests: ApprovalRequested[] = []): CommandRecord => {
  const final = finalDecision({ verdicts, answers, requests }) ?? null;
  return {
    kind: 'command', chain_id: 'embedded', seq: 42, event_id: 'r-1', session_id: 's-1', time: '2026-03-01 12:00:23.123456', command_time: '2026-03-01 12:00:00.000000',
    command_id: 'c-1', protocol, target: 'appdb', issuer: 'https://issuer.example', subject: 'repo:acme/app', claims: { repository: 'acme/app', workflow: 'ci', ref: 'refs/heads/main' },
    client_address: '127.0.0.1:50000', text, attributes: {}, final,
    status: final?.decision === 'deny' ? 'refused' : 'ok', command_tag: 'SELECT 1', rows: 1, bytes: 17, duration_us: 1500, error_code: final?.decision === 'deny' ? '42501' : null,
    error_message: final?.decision === 'deny' ? 'Agate refused the statement' : null, outcome: 'observed',
  };
};
/** A command Agate forwarded and then stopped: closed at the next start with outcome unknown (cut-work.ts). */
const cut = (protocol: string, text: string): CommandRecord => ({
  ...command(protocol, text), status: 'error', command_tag: null, rows: 0, bytes: 0, duration_us: 0, error_code: null, outcome: 'unknown',
  error_message: 'outcome unknown: Agate stopped after forwarding the command under its recorded allow verdict; whether the target ran it is not known',
});
const login = (outcome: 'success' | 'failure'): LoginRecord => ({
  kind: 'login', outcome, chain_id: 'embedded', seq: 7, event_id: 'e-1', session_id: 's-1', time: '2026-03-01 12:00:00.000000',
  protocol: 'postgres', target: 'appdb', issuer: null, subject: outcome === 'success' ? 'alice' : 'mallory', claims: {}, client_address: '[::1]:5000',
  reason_code: outcome === 'failure' ? 'AUTH_BAD_SIGNATURE' : null, message: outcome === 'failure' ? 'the token signature does not verify' : null,
});
const held = (final: Verdict | undefined): Verdict[] => [
  verdict('hold', { approval_id: 'a-1', hold_expires_at: T0 + 60e6, rule_id: 'drop-needs-dba' }),
  ...(final === undefined ? [] : [{ ...final, approval_id: 'a-1', rule_id: 'drop-needs-dba' }]),
];
const answer = (subject: string, decision: 'approve' | 'deny', atSeconds: number, refused: string | null = null): ApprovalDecision => ({
  type: 'ApprovalDecision', event_id: `d-${subject}-${atSeconds}`, time: T0 + atSeconds * 1e6, session_id: 's-1', approval_id: 'a-1', command_id: 'c-1', decision,
  approver_issuer: 'https://issuer.example', approver_subject: subject, approver_claims: { team: 'dba' }, comment: null, refused_reason: refused,
});

const classes = suite('toOcsf: one class per kind of activity, valid OCSF 1.3.0');
classes.before(() => initSqlParser());

classes('SQL is Datastore Activity, shell is Process Activity, Kubernetes is API Activity, logins are Authentication', () => {
  assert.is(toOcsf(command('postgres', 'SELECT 1')).class_uid, 6005);
  assert.is(toOcsf(command('ssh', 'rm -rf /tmp/x')).class_uid, 1007);
  assert.is(toOcsf(command('kubernetes', 'delete namespaces/prod')).class_uid, 6003);
  assert.is(toOcsf(login('success')).class_uid, 3002);
  assert.is(toOcsf(login('failure')).status_id, 2);
});

classes('every mapped event validates against OCSF 1.3.0 (pydantic-ocsf), holds and answers included', async () => {
  const all = [
    command('postgres', 'DROP TABLE x', [verdict('deny')]), command('postgres', 'SELECT 1'), command('ssh', 'ls'), command('ssh', 'rm x', [verdict('deny')]),
    command('kubernetes', 'get pods'), command('kubernetes', 'delete pods/x', [verdict('deny')]),
    command('postgres', 'DROP TABLE x', held(verdict('allow', { time: T0 + 5e6 })), [answer('alice', 'approve', 3)]),
    command('postgres', 'DROP TABLE x', held(verdict('deny', { time: T0 + 5e6 })), [answer('bob', 'deny', 3)]),
    command('postgres', 'DROP TABLE x', held(verdict('deny', { time: T0 + 61e6 }))),
    command('ssh', 'rm -rf /srv', held(verdict('deny', { time: T0 + 5e6 })), [answer('bob', 'deny', 3)]),
    cut('postgres', 'INSERT INTO t VALUES (1)'), cut('ssh', 'make deploy'), cut('kubernetes', 'delete pods/x'),
    login('success'), login('failure'),
  ].map(toOcsf);
  assert.equal(await ocsfErrors(all), {});
});

classes('the validator is not a rubber stamp: the pre-fix shapes are refused', async () => {
  const e = toOcsf(command('postgres', 'SELECT 1')) as Record<string, any>;
  const errors = await ocsfErrors([
    { ...e, status: 'ok' },
    { ...toOcsf(command('kubernetes', 'get pods')), action_id: 1, action: 'Allowed' },
    { ...toOcsf(command('ssh', 'ls')), src_endpoint: { ip: '127.0.0.1' } },
    { ...toOcsf(command('ssh', 'ls')), process: { cmd_line: 'ls', name: 'ls' } },
  ]);
  // (query_info's name/uid constraint is not in the 1.3.0 bundle pydantic-ocsf ships, so it is not checked here.)
  assert.equal(Object.keys(errors).sort(), ['0 (6005)', '1 (6003)', '2 (1007)', '3 (1007)'], JSON.stringify(errors));
});

classes('a held statement exports its final decision, the approver and the hold', () => {
  const approved = toOcsf(command('postgres', 'DROP TABLE x', held(verdict('allow', { time: T0 + 5e6 })), [answer('carol', 'approve', 1, 'the approver lacks claim team'), answer('alice', 'approve', 3)])) as Record<string, any>;
  assert.is(approved.action_id, 1);
  assert.is(approved.disposition_id, 1);
  assert.match(approved.message, 'allowed by approver alice');
  assert.is(approved.unmapped.agate.decision.decided_by, 'approver');
  assert.equal(approved.unmapped.agate.decision.approvers.map((a: { approver_subject: string }) => a.approver_subject), ['alice']);
  assert.equal(approved.unmapped.agate.decision.hold.refusals.map((a: { approver_subject: string }) => a.approver_subject), ['carol']);
  assert.ok(approved.observables.some((o: { value: string }) => o.value === 'alice'));
  const denied = toOcsf(command('postgres', 'DROP TABLE x', held(verdict('deny', { time: T0 + 5e6 })), [answer('bob', 'deny', 3)])) as Record<string, any>;
  assert.is(denied.action_id, 2);
  assert.is(denied.disposition, 'Blocked');
  assert.match(denied.message, 'denied by approver bob');
  const timedOut = toOcsf(command('postgres', 'DROP TABLE x', held(verdict('deny', { time: T0 + 61e6 })))) as Record<string, any>;
  assert.is(timedOut.action, 'Denied');
  assert.is(timedOut.unmapped.agate.decision.decided_by, 'timeout');
  // Issued at 12:00:00, recorded after the approval: start_time is when it was issued.
  assert.is(approved.start_time, Date.UTC(2026, 2, 1, 12, 0, 0));
  assert.is(approved.time, Date.UTC(2026, 2, 1, 12, 0, 23, 123));
});

classes('a command whose outcome is unknown (Agate stopped after forwarding it) has status Unknown, not Failure', () => {
  for (const protocol of ['postgres', 'ssh', 'kubernetes']) {
    const e = toOcsf(cut(protocol, protocol === 'postgres' ? 'INSERT INTO t VALUES (1)' : 'make deploy')) as Record<string, any>;
    assert.equal([e.status_id, e.status], [0, 'Unknown'], protocol);
    if (protocol !== 'kubernetes') assert.is(e.action, 'Allowed'); // API Activity 1.3.0 has no security_control
    assert.match(e.status_detail, /^outcome unknown: Agate stopped after forwarding/);
    assert.is(e.unmapped.agate.outcome, 'unknown');
  }
  // Refused at the next start because it never reached the target: that one did fail.
  const notForwarded = toOcsf({ ...cut('postgres', 'SELECT 1'), status: 'refused', outcome: 'not_forwarded' }) as Record<string, any>;
  assert.equal([notForwarded.status_id, notForwarded.status], [2, 'Failure']);
  assert.equal([(toOcsf(command('postgres', 'SELECT 1')) as Record<string, any>).status_id], [1]);
});

classes('activity, severity, claims, error text and ledger position', () => {
  const e = toOcsf(command('postgres', 'drop table items', [verdict('deny')])) as Record<string, any>;
  assert.is(e.activity_id, 7);
  assert.is(e.type_uid, 600507);
  assert.is(e.severity_id, 3);
  assert.is(e.metadata.uid, 'r-1');
  assert.is(e.metadata.sequence, 42);
  assert.is(e.status_detail, 'Agate refused the statement');
  assert.is(e.unmapped.agate.claims.repository, 'acme/app');
  assert.is(e.query_info.uid, 'c-1');
  assert.is(e.query_info.bytes, 17);
  assert.is(toOcsf(command('kubernetes', 'get pods')).activity_id, 2);
  const observed = (x: Record<string, any>) => x.observables.map((o: { name: string; value: string }) => `${o.name}=${o.value}`);
  assert.equal(observed(e), ['actor.user.name=repo:acme/app', 'src_endpoint.ip=127.0.0.1']);
  assert.ok(observed(toOcsf(command('ssh', 'ls'))).includes('device.hostname=appdb'));
  assert.equal((toOcsf(login('failure')) as Record<string, any>).src_endpoint, { ip: '::1', port: 5000 });
  const failure = toOcsf(login('failure')) as Record<string, any>;
  assert.is(failure.user.name, 'unknown', 'an unverified subject is not presented as the user');
  assert.is(failure.unmapped.agate.claimed_subject, 'mallory');
  assert.is(failure.unmapped.agate.verified, false);
});

classes('the rollback record of a statement whose transaction did not commit exports as a Failure of the same command, saying why', async () => {
  const reason = 'rolled back: the transaction ended with ROLLBACK (command c-9)';
  const undone: CommandRecord = { ...command('postgres', "INSERT INTO t VALUES ('x')"), status: 'error', command_tag: 'ROLLBACK', rows: 0, bytes: 0, duration_us: 0, error_code: null, error_message: reason };
  const e = toOcsf(undone);
  assert.equal([e.status_id, e.status, e.status_detail], [2, 'Failure', reason]);
  assert.equal(await ocsfErrors([e]), {});
});

classes.run();

const activity = suite('sqlActivity: from the parse tree, not the first keyword');
activity.before(() => initSqlParser());

activity('comments, CTEs, COPY directions and several statements', () => {
  assert.is(sqlActivity('/* cleanup */ DROP TABLE items'), 7);
  assert.is(sqlActivity('WITH d AS (DELETE FROM items RETURNING *) SELECT * FROM d'), 7);
  assert.is(sqlActivity('COPY (SELECT * FROM items) TO STDOUT'), 4);
  assert.is(sqlActivity('COPY items FROM STDIN'), 5);
  assert.is(sqlActivity('SELECT 1; TRUNCATE items'), 7);
  assert.is(sqlActivity('INSERT INTO items VALUES (1)'), 5);
  assert.is(sqlActivity('UPDATE items SET a = 1'), 2);
  assert.is(sqlActivity('ALTER TABLE items ADD COLUMN b int'), 2);
  assert.is(sqlActivity('CREATE TABLE t (a int)'), 6);
  assert.is(sqlActivity('EXPLAIN ANALYZE DELETE FROM items'), 7);
  assert.is(sqlActivity('select from where'), 99);
  assert.is(sqlActivity('BEGIN'), 99);
});

activity.run();
