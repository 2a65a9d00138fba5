import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../core/src/config.js';
import { packageRoot } from '../../core/src/package-root.js';
import { run } from '../../test/harness/proc.js';
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

cli.run();
