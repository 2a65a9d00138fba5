import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../core/src/config.js';
import { packageRoot } from '../../core/src/package-root.js';
import { run } from '../../test/harness/proc.js';
import { randomUUID } from 'node:crypto';
import type { Bus } from '../../core/src/bus/bus.js';
import { loadConfig } from '../../core/src/config.js';
import { silentLogger } from '../../core/src/log.js';
import { EmbeddedStore } from '../../core/src/store/embedded.js';
import { EventCodec } from '../../schemas/src/codec.js';
import type { AgateEvent, Command, Verdict } from '../../schemas/src/events.js';
import { SAMPLES } from '../../schemas/src/samples.js';
import { LedgerService } from '../../services/ledger/src/ledger.js';
import { CompiledPolicy, loadParsers } from '../../services/policy/src/engine.js';
import { ledgerSigner } from '../../services/ledger/src/from-config.js';
import { lintPolicy } from './policy-commands.js';

/* `agate policy test` and `agate policy lint` of the real binary, against config files only. */
const POLICY = `identity: { dev_issuer: { enabled: true } }
policy:
  default: allow
  rules:
    - id: drops-need-dba
      action: hold
      match: { sql: { statements: [DropStmt] } }
      approval: { approvers: { claims: { team: dba } }, timeout_s: 60 }
    - id: readers
      action: allow
      match: { claims: { role: reader }, sql: { statements: [SelectStmt] } }
    - id: readers-only-read
      action: deny
      message: readers only read
      match: { claims: { role: reader } }
`;

const dir = mkdtempSync(join(tmpdir(), 'agate-policy-cli-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const agate = (...args: string[]) => run(process.execPath, [join(packageRoot(), 'bin/agate.js'), ...args], { timeoutMs: 30_000 });

const cli = suite('agate policy test / lint');
cli.after(() => rmSync(dir, { recursive: true, force: true }));

cli('policy test prints the verdict and the rule, and exits by decision', async () => {
  const cfg = file('ok.yaml', POLICY);
  const held = await agate('policy', 'test', '--config', cfg, '--sql', '/* x */ drop TABLE t');
  assert.is(held.code, 3, held.stderr);
  assert.match(held.stdout, /^HOLD {2}rule: drops-need-dba/);
  assert.match(held.stdout, /approval: 1 approver\(s\), timeout 60 s/);
  const denied = await agate('policy', 'test', '--config', cfg, '--sql', 'DELETE FROM t WHERE id = 1', '--claim', 'role=reader');
  assert.is(denied.code, 4);
  assert.match(denied.stdout, /DENY {2}rule: readers-only-read\nreason: readers only read/);
  const allowed = await agate('policy', 'test', '--config', cfg, '--sql', 'SELECT 1', '--claim', 'role=reader', '--json');
  assert.is(allowed.code, 0);
  const body = JSON.parse(allowed.stdout) as { decision: string; rule_id: string };
  assert.equal([body.decision, body.rule_id], ['allow', 'readers']);
  const usage = await agate('policy', 'test', '--config', cfg);
  assert.is(usage.code, 2);
  assert.match(usage.stderr, /needs --sql/);
});

cli('policy test on an ssh line lists the simple commands the parser found', async () => {
  const cfg = file('ssh.yaml', POLICY.replace('  rules:\n', '  rules:\n    - { id: no-rm-r, action: deny, match: { shell: { commands: [rm], flags: ["-r"] } } }\n'));
  const denied = await agate('policy', 'test', '--config', cfg, '--text', "sudo r''m --rec -f / && curl -s x | bash", '--protocol', 'ssh');
  assert.is(denied.code, 4, denied.stderr);
  assert.match(denied.stdout, /command: rm {2}flags: -r -f {2}operands: \["\/"\] {2}\(via sudo\)/);
  assert.match(denied.stdout, /command: bash .*\(runs downloaded code\)/);
  assert.match(denied.stdout, /DENY {2}rule: no-rm-r/);
  const unreadable = await agate('policy', 'test', '--config', cfg, '--text', '$CMD -rf /', '--json');
  assert.is(unreadable.code, 4);
  assert.equal((JSON.parse(unreadable.stdout) as { rule_id: string }).rule_id, 'agate.unparseable');
});

cli('policy lint: a valid policy passes, an invalid one fails naming the key, a shadowed rule warns', async () => {
  const ok = await agate('policy', 'lint', '--config', file('ok.yaml', POLICY));
  assert.is(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /policy valid, 3 rules/);
  const bad = await agate('policy', 'lint', '--config', file('bad.yaml', POLICY.replace('action: hold', 'action: hodl')));
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /bad\.yaml:6: policy\.rules\[0\]\.action:/);
  const shadowed = POLICY + `    - id: never
      action: deny
      match: { claims: { role: reader }, sql: { statements: [DropStmt] } }
`;
  const warn = await agate('policy', 'lint', '--config', file('shadow.yaml', shadowed));
  assert.is(warn.code, 1);
  assert.match(warn.stdout, /warning: rule never: never matches: rule "drops-need-dba" above it/);
});

cli('lintPolicy: a catch-all rule shadows everything after it; a hold without approver claims warns', () => {
  const cfg = parseConfig(`identity: { dev_issuer: { enabled: true } }
policy:
  rules:
    - { id: all, action: deny }
    - { id: later, action: allow, match: { targets: [x] } }
    - { id: open-hold, action: hold, match: { sql: { statements: [DropStmt] } } }
`, 'lint.yaml');
  assert.equal(lintPolicy(cfg.policy.rules).map((f) => f.rule), ['later', 'open-hold', 'open-hold']);
});

cli('lintPolicy: shell rules on different programs do not shadow each other; the same condition does', () => {
  const cfg = parseConfig(`identity: { dev_issuer: { enabled: true } }
policy:
  rules:
    - { id: no-rm, action: deny, match: { shell: { commands: [rm], flags: ["-r"] } } }
    - { id: no-curl-sh, action: deny, match: { shell: { download_to_interpreter: true } } }
    - { id: no-rm-again, action: deny, match: { protocols: [ssh], shell: { commands: [rm], flags: ["-r"] } } }
`, 'lint.yaml');
  assert.equal(lintPolicy(cfg.policy.rules).map((f) => f.rule), ['no-rm-again']);
});

cli('lintPolicy: effect and read/written table conditions are conditions; guarded effects pass an allow rule that does not name them', () => {
  const cfg = parseConfig(`identity: { dev_issuer: { enabled: true } }
policy:
  rules:
    - { id: no-destroy, action: deny, match: { sql: { effects: [destroy] } } }
    - { id: no-selects, action: deny, match: { sql: { statements: [SelectStmt] } } }
    - { id: no-writes-users, action: deny, match: { sql: { tables_written: [users] } } }
    - { id: no-reads-users, action: deny, match: { sql: { tables_read: [users] } } }
    - { id: no-destroy-again, action: deny, match: { targets: [prod], sql: { effects: [destroy] } } }
    - { id: staging, action: allow, match: { targets: [staging] } }
    - { id: staging-dynamic, action: allow, match: { targets: [staging], sql: { effects: [code, read, dynamic] } } }
    - { id: staging-no-code, action: deny, match: { targets: [staging], sql: { effects: [code] } } }
    - { id: staging-again, action: allow, match: { targets: [staging], sql: { statements: [SelectStmt] } } }
`, 'lint.yaml');
  assert.equal(lintPolicy(cfg.policy.rules).map((f) => f.rule), ['no-destroy-again', 'staging-again']);
});

cli('lintPolicy: a git rule covers only git pushes; the same git condition does shadow', () => {
  const cfg = parseConfig(`identity: { dev_issuer: { enabled: true } }
policy:
  rules:
    - { id: no-force-push, action: deny, match: { git: { refs: ["refs/heads/*"], forced: true } } }
    - { id: no-role-changes, action: deny, match: { sql: { effects: [privilege] } } }
    - { id: no-rm, action: deny, match: { shell: { commands: [rm] } } }
    - { id: no-tag-push, action: deny, match: { git: { refs: ["refs/tags/*"] } } }
    - { id: no-force-push-again, action: deny, match: { protocols: [ssh], git: { refs: ["refs/heads/*"], forced: true } } }
`, 'lint.yaml');
  assert.equal(lintPolicy(cfg.policy.rules).map((f) => f.rule), ['no-force-push-again']);
});

cli('policy lint: the shipped deploy/agate.example.yaml passes with no warning', async () => {
  const r = await agate('policy', 'lint', '--config', join(packageRoot(), 'deploy/agate.example.yaml'));
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.not.match(r.stdout, /warning/);
});

cli('policy backtest --offline: the candidate decides the recorded commands of the period; changed verdicts listed, exit 3', async () => {
  const cfgPath = file('bt.yaml', `data_dir: ${dir}/bt-data\n${POLICY}`);
  const config = loadConfig(cfgPath);
  await loadParsers();
  const inForce = new CompiledPolicy(config.policy, config.masking.audit);
  const now = Date.now() * 1000;
  const events: AgateEvent[] = [];
  // Six commands this hour, one from forty days ago; each with the verdict the policy in force gave it.
  const texts: [string, Record<string, string>, number][] = [
    ['SELECT 1', { role: 'reader' }, now - 60e6], ['DELETE FROM t WHERE id = 1', {}, now - 50e6], ['DROP TABLE t', {}, now - 40e6],
    ['DELETE FROM t', {}, now - 30e6], ['UPDATE t SET a = 1', { role: 'reader' }, now - 20e6], ['SELECT 2', {}, now - 10e6],
    ['DELETE FROM old', {}, now - 40 * 86_400e6],
  ];
  for (const [text, claims, time] of texts) {
    const command: Command = { ...SAMPLES.Command, event_id: randomUUID(), time, text, identity: { ...SAMPLES.Command.identity, claims } };
    const d = inForce.evaluate(command);
    const verdict: Verdict = { ...SAMPLES.Verdict, event_id: randomUUID(), time: time + 500, command_id: command.event_id, decision: d.decision, rule_id: d.rule_id, reason: d.reason, policy_revision: inForce.revision };
    events.push(command, verdict);
  }
  const store = EmbeddedStore.open(join(config.data_dir, 'store'));
  try {
    const bus = { publish: async () => {}, subscribe: async () => ({ close: async () => {} }) } as unknown as Bus;
    const ledger = new LedgerService({ bus, store, codec: new EventCodec(), chainId: 'embedded', logger: silentLogger, signer: ledgerSigner(config), checkpoints: { everyEvents: 100, everyMs: 60_000, sinks: [] } });
    await ledger.start();
    await ledger.append(events);
  } finally {
    await store.close();
  }
  // The candidate: plain DELETEs (without WHERE) are refused outright, and nothing else changes.
  const candidate = file('candidate.yaml', POLICY.replace('  rules:\n', '  rules:\n    - { id: no-unbounded-delete, action: deny, match: { sql: { statements: [DeleteStmt], without_where: true } } }\n').replace(/^identity:.*\n/, ''));
  const human = await agate('policy', 'backtest', '--config', cfgPath, '--candidate', candidate, '--since', '1d', '--offline');
  assert.is(human.code, 3, human.stdout + human.stderr);
  assert.match(human.stdout, /: 6 recorded commands from /);
  assert.match(human.stdout, /1 verdicts would change: allow→deny 1/);
  assert.match(human.stdout, /DELETE FROM t\s*$/m);
  assert.not.match(human.stdout, /DELETE FROM old/);
  const json = await agate('policy', 'backtest', '--config', cfgPath, '--candidate', candidate, '--since', '60d', '--offline', '--json');
  assert.is(json.code, 3, json.stderr);
  const report = JSON.parse(json.stdout) as { examined: number; changed: number; changes: { text: string; recorded: { decision: string }; candidate: { decision: string; rule_id: string } }[] };
  assert.equal([report.examined, report.changed], [7, 2]);
  assert.equal(report.changes.map((c) => [c.text, c.recorded.decision, c.candidate.decision, c.candidate.rule_id]), [
    ['DELETE FROM t', 'allow', 'deny', 'no-unbounded-delete'], ['DELETE FROM old', 'allow', 'deny', 'no-unbounded-delete'],
  ]); // in the record's order
  // The policy in force as its own candidate changes nothing: exit 0.
  const same = await agate('policy', 'backtest', '--config', cfgPath, '--candidate', cfgPath, '--since', '60d', '--offline');
  assert.is(same.code, 0, same.stdout + same.stderr);
  assert.match(same.stdout, /no verdict would change/);
  const bad = await agate('policy', 'backtest', '--config', cfgPath, '--candidate', file('bad-cand.yaml', 'rules:\n  - { id: x, action: hodl }\n'), '--since', '1d', '--offline');
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /bad-cand\.yaml:2: rules\[0\]\.action:/);
  const usage = await agate('policy', 'backtest', '--config', cfgPath, '--since', '1d');
  assert.is(usage.code, 2);
  assert.match(usage.stderr, /needs --candidate/);
});

cli.run();
