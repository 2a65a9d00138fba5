import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { toOcsf, type CommandRecord, type LoginRecord } from './map.js';
import { CLASS_REQUIRED, assertOcsf, missingAttributes } from './required.js';

const command = (protocol: string, text: string, decision = 'allow'): CommandRecord => ({
  kind: 'command', chain_id: 'embedded', seq: 42, event_id: 'r-1', session_id: 's-1', time: '2026-03-01 12:00:00.123456',
  command_id: 'c-1', protocol, target: 'appdb', issuer: 'https://issuer.example', subject: 'repo:acme/app', client_address: '127.0.0.1:50000',
  text, decision, rule_id: decision === 'deny' ? 'no-drop' : null, reason: 'r', status: decision === 'deny' ? 'refused' : 'ok',
  command_tag: 'SELECT 1', rows: 1, duration_us: 1500, error_code: null,
});
const login = (outcome: 'success' | 'failure'): LoginRecord => ({
  kind: 'login', outcome, chain_id: 'embedded', seq: 7, event_id: 'e-1', session_id: 's-1', time: '2026-03-01 12:00:00.000000',
  protocol: 'postgres', target: 'appdb', issuer: null, subject: outcome === 'success' ? 'alice' : null, client_address: '[::1]:5000', reason_code: outcome === 'failure' ? 'AUTH_TOKEN_EXPIRED' : null,
});

const classes = suite('toOcsf: one class per kind of activity');

classes('SQL is Datastore Activity, shell is Process Activity, Kubernetes is API Activity, logins are Authentication', () => {
  assert.is(toOcsf(command('postgres', 'SELECT 1')).class_uid, 6005);
  assert.is(toOcsf(command('ssh', 'rm -rf /tmp/x')).class_uid, 1007);
  assert.is(toOcsf(command('kubernetes', 'delete namespaces/prod')).class_uid, 6003);
  assert.is(toOcsf(command('http', 'GET /healthz')).class_uid, 6003);
  assert.is(toOcsf(login('success')).class_uid, 3002);
  assert.is(toOcsf(login('failure')).status_id, 2);
});

classes('every mapped event has every required attribute of its class', () => {
  const all = [command('postgres', 'DROP TABLE x', 'deny'), command('ssh', 'ls'), command('kubernetes', 'get pods'), login('success'), login('failure')].map(toOcsf);
  for (const e of all) assert.equal(missingAttributes(e), [], `class ${e.class_uid}`);
  assert.equal(new Set(all.map((e) => e.class_uid)), new Set(Object.keys(CLASS_REQUIRED).map(Number)));
});

classes('activity, severity, verdict, rule and ledger position', () => {
  const e = toOcsf(command('postgres', 'drop table items', 'deny')) as Record<string, any>;
  assert.is(e.activity_id, 7);
  assert.is(e.type_uid, 600507);
  assert.is(e.severity_id, 3);
  assert.is(e.time, Date.UTC(2026, 2, 1, 12, 0, 0, 123));
  assert.is(e.metadata.sequence, 42);
  assert.is(e.metadata.log_name, 'embedded');
  assert.is(e.unmapped.agate.rule_id, 'no-drop');
  assert.is(e.disposition, 'Blocked');
  assert.is(toOcsf(command('kubernetes', 'get pods')).activity_id, 2);
  assert.equal((toOcsf(login('failure')) as Record<string, any>).src_endpoint, { ip: '::1', port: 5000 });
});

classes.run();

const required = suite('missingAttributes: the required-attributes table');

required('a missing base, class or object attribute is reported', () => {
  const good = toOcsf(command('postgres', 'SELECT 1')) as Record<string, any>;
  for (const [path, expect] of [['severity_id', 'severity_id'], ['metadata.version', 'metadata.version'], ['metadata.product.name', 'metadata.product.name'], ['actor', 'actor'], ['src_endpoint', 'src_endpoint'], ['database', 'one of database | databucket | table']] as const) {
    const copy = structuredClone(good);
    const keys = path.split('.');
    let o = copy;
    for (const k of keys.slice(0, -1)) o = o[k];
    delete o[keys[keys.length - 1]!];
    assert.ok(missingAttributes(copy).includes(expect), `${path}: ${missingAttributes(copy).join(', ')}`);
    assert.throws(() => assertOcsf(copy), (err: { code: string }) => err.code === 'OCSF_INVALID');
  }
  const proc = toOcsf(command('ssh', 'ls')) as Record<string, any>;
  delete proc.device;
  assert.ok(missingAttributes(proc).includes('device'));
  const auth = toOcsf(login('success')) as Record<string, any>;
  delete auth.user;
  assert.ok(missingAttributes(auth).includes('user'));
  const wrongType = { ...good, type_uid: 1 };
  assert.ok(missingAttributes(wrongType).includes('type_uid = class_uid * 100 + activity_id'));
});

required.run();
