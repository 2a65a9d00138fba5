import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { parseConfig, parsePolicyCandidate } from '../../../core/src/config.js';
import { ConfigError } from '../../../core/src/errors.js';
import { PROXY_DECIDED_ATTRIBUTE, type Command } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { Backtest, verdictChanges, type RecordedDecision } from './backtest.js';
import { CompiledPolicy, loadParsers } from './engine.js';
import { timeSpecMicros } from './recorded-commands.js';

const inForce = parseConfig(`identity: { dev_issuer: { enabled: true } }
masking:
  sets: { pii: { columns: [email] } }
policy:
  default: allow
  rules:
    - { id: no-drop, action: deny, match: { sql: { statements: [DropStmt] } } }
`, 'agate.yaml');

const candidateText = `policy:
  default: allow
  rules:
    - { id: no-drop, action: deny, match: { sql: { statements: [DropStmt] } } }
    - id: deletes-need-dba
      action: hold
      match: { sql: { statements: [DeleteStmt] } }
      approval: { approvers: { claims: { team: dba } } }
    - { id: mask-reads, action: allow, mask_client: pii, match: { sql: { tables: [users] } } }
    - { id: ci-no-truncate, action: deny, match: { claims: { repository: "acme/*" }, sql: { statements: [TruncateStmt] } } }
`;

/** A command recorded with the verdict the in-force policy gave it. */
function recorded(text: string, claims: Record<string, string> = {}): RecordedDecision {
  const command: Command = { ...SAMPLES.Command, event_id: randomUUID(), text, identity: { ...SAMPLES.Command.identity, claims } };
  const d = new CompiledPolicy(inForce.policy, inForce.masking.audit).evaluate(command);
  return { command, decision: d.decision, rule_id: d.rule_id, mask_set: d.mask_set, source: 'policy', policy_revision: 'sha256:old' };
}

const bt = suite('Backtest');
bt.before(() => loadParsers());

bt('lists exactly the commands whose verdict the candidate changes, with both verdicts', () => {
  const candidate = parsePolicyCandidate(candidateText, 'candidate.yaml', inForce.masking);
  const run = new Backtest(new CompiledPolicy(candidate.policy, candidate.masking.audit));
  const records = [
    recorded('SELECT 1'), recorded('DROP TABLE t'), recorded('DELETE FROM t WHERE id = 1'), recorded('SELECT email FROM users'),
    recorded('TRUNCATE t', { repository: 'acme/web' }), recorded('TRUNCATE t', { repository: 'other/x' }), recorded('DELETE FROM u'),
  ];
  run.add(records.slice(0, 3));
  run.add(records.slice(3));
  const s = run.summary();
  assert.is(s.examined, 7);
  assert.is(s.changed, 4);
  assert.equal(s.transitions, { 'allow→hold': 2, 'allow→mask': 1, 'allow→deny': 1 });
  assert.equal(s.changes.map((c) => c.text), ['DELETE FROM t WHERE id = 1', 'SELECT email FROM users', 'TRUNCATE t', 'DELETE FROM u']);
  const truncate = s.changes[2]!;
  assert.equal(truncate.recorded, { decision: 'allow', rule_id: null, mask_set: null, policy_revision: 'sha256:old' });
  assert.equal([truncate.candidate.decision, truncate.candidate.rule_id], ['deny', 'ci-no-truncate']);
  assert.is(truncate.command_id, records[4]!.command.event_id);
  assert.is(s.changes[1]!.candidate.mask_set, 'pii');
  assert.is(s.changes_truncated, false);
  assert.match(s.candidate_revision, /^sha256:[0-9a-f]{16}$/);
});

bt('the same policy changes nothing; the list is capped but every change is counted', () => {
  const same = new Backtest(new CompiledPolicy(inForce.policy, inForce.masking.audit));
  same.add([recorded('SELECT 1'), recorded('DROP TABLE t'), recorded('DELETE FROM t')]);
  assert.equal([same.summary().examined, same.summary().changed], [3, 0]);
  const strict = new Backtest(new CompiledPolicy({ ...inForce.policy, default: 'deny' }), 2);
  strict.add(Array.from({ length: 5 }, (_, i) => recorded(`SELECT ${i}`)));
  const s = strict.summary();
  assert.equal([s.changed, s.changes.length, s.changes_truncated], [5, 2, true]);
});

bt('a command its proxy decided by a built-in rule is not examined: no policy decides it', () => {
  const strict = new Backtest(new CompiledPolicy({ ...inForce.policy, default: 'deny' }));
  const discovery = recorded('GET /api');
  discovery.command = { ...discovery.command, attributes: { [PROXY_DECIDED_ATTRIBUTE]: 'agate.k8s-discovery' } };
  strict.add([discovery, recorded('SELECT 1')]);
  assert.equal([strict.summary().examined, strict.summary().changed], [1, 1]);
});

bt('verdictChanges: a different decision, or a different mask set on a mask', () => {
  const d = (decision: 'allow' | 'mask', mask_set: string | null) => ({ decision, mask_set, rule_id: null, reason: '' });
  assert.is(verdictChanges({ decision: 'allow', mask_set: null }, d('allow', null)), false);
  assert.is(verdictChanges({ decision: 'mask', mask_set: 'a' }, d('mask', 'a')), false);
  assert.is(verdictChanges({ decision: 'mask', mask_set: 'a' }, d('mask', 'b')), true);
  assert.is(verdictChanges({ decision: 'hold', mask_set: null }, d('allow', null)), true);
});

const cand = suite('parsePolicyCandidate');

cand('a bare policy section, or a whole config file of which only policy and masking count', () => {
  const bare = parsePolicyCandidate('default: deny\nrules:\n  - { id: r, action: allow, match: { targets: [x] } }\n', 'bare.yaml', inForce.masking);
  assert.equal([bare.policy.default, bare.policy.rules.map((r) => r.id)], ['deny', ['r']]);
  assert.ok(bare.masking.sets.pii, 'the mask sets in force when the candidate has none');
  const whole = parsePolicyCandidate('identity: { issuers: [] }\nbus: { kind: local }\npolicy: { default: allow }\n', 'whole.yaml', inForce.masking);
  assert.is(whole.policy.default, 'allow');
});

cand('errors name the file, the line and the key, as for the config file', () => {
  const err = (text: string) => {
    try {
      parsePolicyCandidate(text, 'cand.yaml', inForce.masking);
    } catch (e) {
      assert.instance(e, ConfigError);
      return (e as Error).message;
    }
    throw new Error('accepted');
  };
  assert.match(err('policy:\n  rules:\n    - { id: r, action: hodl }\n'), /cand\.yaml:3: policy\.rules\[0\]\.action:/);
  assert.match(err('rules:\n  - { id: r, action: hodl }\n'), /cand\.yaml:2: rules\[0\]\.action:/);
  assert.match(err('rules:\n  - { id: r, action: allow, mask_client: nope }\n'), /no mask set named "nope"/);
  assert.match(err('rules:\n  - { id: r, action: deny }\n  - { id: r, action: deny }\n'), /duplicate rule id "r"/);
  assert.match(err('- 1\n'), /expected a policy/);
});

const spec = suite('timeSpecMicros');

spec('durations back from now, or ISO times; anything else names the parameter', () => {
  const now = Date.UTC(2026, 0, 31);
  assert.is(timeSpecMicros('30d', now), Date.UTC(2026, 0, 1) * 1000);
  assert.is(timeSpecMicros('12h', now), (now - 12 * 3_600_000) * 1000);
  assert.is(timeSpecMicros('2026-01-02T03:04:05Z', now), Date.UTC(2026, 0, 2, 3, 4, 5) * 1000);
  assert.throws(() => timeSpecMicros('yesterday', now, 'until'), /until must be a duration/);
});

bt.run();
cand.run();
spec.run();
