import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { BUILTIN_MASK_SET } from '../../../../core/src/config.js';
import { Masker } from '../masking/masker.js';
import { MASKED_SECRET_DATA, maskDocument, parseFieldRule } from './json-mask.js';
import { summarize, watchEventRef } from './summary.js';

const SECRET_B64 = Buffer.from('hunter2-very-secret').toString('base64');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const secret = (name: string, extra: Record<string, unknown> = {}): any => ({
  apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'app' }, type: 'Opaque', data: { password: SECRET_B64 }, ...extra,
});
const noRules = { fields: [] };

const mask = suite('maskDocument');

mask('a Secret: every data and stringData value', () => {
  const doc = secret('db', { stringData: { token: 'plain-secret' } });
  assert.is(maskDocument(doc, noRules), 2);
  assert.equal(doc.data, { password: MASKED_SECRET_DATA });
  assert.equal(doc.stringData, { token: '[masked]' });
  assert.is(Buffer.from(MASKED_SECRET_DATA, 'base64').toString(), '[masked]');
  assert.is(doc.metadata.name, 'db'); // names stay readable
});

mask('a SecretList: items carry no kind of their own', () => {
  const doc = { kind: 'SecretList', apiVersion: 'v1', metadata: {}, items: [{ metadata: { name: 'a' }, data: { k: SECRET_B64 } }, { metadata: { name: 'b' }, data: { k: SECRET_B64, l: SECRET_B64 } }] };
  assert.is(maskDocument(doc, noRules), 3);
  assert.not.ok(JSON.stringify(doc).includes(SECRET_B64));
});

mask('a generic List and a Table with full objects', () => {
  const list = { kind: 'List', items: [secret('a'), { kind: 'ConfigMap', metadata: { name: 'c' }, data: { k: 'v' } }] };
  assert.is(maskDocument(list, noRules), 1);
  assert.equal((list.items[1] as { data: unknown }).data, { k: 'v' });
  const table = { kind: 'Table', apiVersion: 'meta.k8s.io/v1', columnDefinitions: [], rows: [{ cells: ['a'], object: secret('a') }] };
  assert.is(maskDocument(table, noRules), 1);
  assert.not.ok(JSON.stringify(table).includes(SECRET_B64));
});

mask('a watch event', () => {
  const ev = { type: 'MODIFIED', object: secret('a') };
  assert.is(maskDocument(ev, noRules), 1);
  assert.not.ok(JSON.stringify(ev).includes(SECRET_B64));
});

mask('the last-applied-configuration annotation of a Secret', () => {
  const applied = JSON.stringify(secret('a'));
  const doc = secret('a', { metadata: { name: 'a', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': applied } } });
  assert.is(maskDocument(doc, noRules), 2);
  assert.not.ok(JSON.stringify(doc).includes(SECRET_B64));
  const inner = JSON.parse(doc.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']);
  assert.is(inner.data.password, MASKED_SECRET_DATA);
});

mask('an unreadable last-applied annotation is masked whole', () => {
  const doc = { kind: 'Secret', metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"data": {"x": "' } } };
  assert.is(maskDocument(doc, noRules), 1);
  assert.is(doc.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'], '[masked]');
});

mask('configured fields by kind and path, with wildcards', () => {
  const rules = { fields: [parseFieldRule('ConfigMap:data.*', 'x'), parseFieldRule('*:spec.containers.*.env.*.value', 'x')] };
  const cm = { kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: '1', b: '2' } };
  assert.is(maskDocument(cm, rules), 2);
  assert.equal(cm.data, { a: '[masked]', b: '[masked]' });
  const pod = { kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', env: [{ name: 'TOKEN', value: 'abc' }, { name: 'X', valueFrom: {} }] }] } };
  assert.is(maskDocument(pod, rules), 1);
  assert.is(pod.spec.containers[0]!.env[0]!.value, '[masked]');
});

mask('a mask set: keys matching its column globs and detected values', () => {
  const masker = new Masker('m', { columns: ['*password*'], detectors: ['jwt'] });
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
  const cm = { kind: 'ConfigMap', metadata: { name: 'c' }, data: { db_password: 'pw', note: `token ${jwt}`, plain: 'hello' } };
  assert.is(maskDocument(cm, { fields: [], masker }), 2);
  assert.is(cm.data.db_password, '[masked]');
  assert.is(cm.data.note, 'token [masked:jwt]');
  assert.is(cm.data.plain, 'hello');
});

mask('a bad field rule is a config error naming where', () => {
  assert.throws(() => parseFieldRule('data.x', 'targets[0].mask_fields[0]'), /targets\[0\]\.mask_fields\[0\]/);
});

mask('a Table: a row of a kind a field rule names has every cell masked but its name; other kinds keep theirs', () => {
  const fields = [parseFieldRule('Event:message', 'test')];
  const columnDefinitions = [{ name: 'Name', type: 'string', format: 'name' }, { name: 'Message', type: 'string', format: '' }, { name: 'Count', type: 'integer', format: '' }];
  const table = (object?: unknown) => ({ kind: 'Table', apiVersion: 'meta.k8s.io/v1', columnDefinitions, rows: [{ cells: ['e1', 'canary', 3], object }] });
  const metadata = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: { name: 'e1' } };
  const events = table(metadata);
  assert.is(maskDocument(events, { fields, tableKind: 'Event' }), 2);
  assert.equal(events.rows[0]!.cells, ['e1', '[masked]', '[masked]']);
  // The request's kind unknown (a custom resource): masked.
  const unknown = table();
  assert.is(maskDocument(unknown, { fields }), 2);
  // Another kind, by the request or by the row's own object: kept.
  const pods = table(metadata);
  assert.is(maskDocument(pods, { fields, tableKind: 'Pod' }), 0);
  const own = table({ kind: 'Pod', apiVersion: 'v1', metadata: { name: 'e1' } });
  assert.is(maskDocument(own, { fields }), 0);
  // No field rules: no cell is masked.
  assert.is(maskDocument(table(), noRules), 0);
  // A watch's later table has no column definitions: the cell equal to the row's name stays.
  const later = { kind: 'Table', apiVersion: 'meta.k8s.io/v1', columnDefinitions: [], rows: [{ cells: ['e1', 'canary'], object: metadata }] };
  assert.is(maskDocument({ type: 'MODIFIED', object: later }, { fields, tableKind: 'Event' }), 1);
  assert.equal(later.rows[0]!.cells, ['e1', '[masked]']);
});

mask('strings in a list (a container\'s args and command) go through the detectors too', () => {
  const masker = new Masker('default', BUILTIN_MASK_SET);
  const doc = { kind: 'Pod', spec: { containers: [{ command: ['sh', '-c'], args: ['export KEY=AKIAQWERTYUIOPASDFGH', '[masked]'] }] } };
  assert.is(maskDocument(doc, { fields: [], masker }), 1);
  assert.equal(doc.spec.containers[0]!.args, ['export KEY=[masked:cloud_access_key]', '[masked]']);
  assert.equal(doc.spec.containers[0]!.command, ['sh', '-c']);
});

mask.run();

const sum = suite('summarize');

sum('a single object, a list, a table, a Status', () => {
  assert.equal(summarize(secret('db')).objects.map((o) => [o.kind, o.namespace, o.name]), [['Secret', 'app', 'db']]);
  const list = summarize({ kind: 'PodList', items: [{ metadata: { name: 'a', namespace: 'n' } }, { metadata: { name: 'b', namespace: 'n' } }] });
  assert.equal(list.objects.map((o) => [o.kind, o.name]), [['Pod', 'a'], ['Pod', 'b']]);
  const table = summarize({ kind: 'Table', rows: [{ cells: [], object: { kind: 'PartialObjectMetadata', metadata: { name: 'x' } } }] });
  assert.equal(table.objects.map((o) => o.name), ['x']);
  assert.equal(summarize({ kind: 'Status', reason: 'NotFound', message: 'pods "x" not found' }).status, { reason: 'NotFound', message: 'pods "x" not found' });
  assert.equal(summarize('text').objects, []);
});

sum('a watch event', () => {
  const ev = watchEventRef({ type: 'ADDED', object: { kind: 'ConfigMap', metadata: { name: 'c', namespace: 'n' } } });
  assert.is(ev.type, 'ADDED');
  assert.is(ev.object?.name, 'c');
});

sum.run();
