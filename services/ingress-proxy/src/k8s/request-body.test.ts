import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { Masker } from '../masking/masker.js';
import { ANY_KIND, MASKED_SECRET_DATA, parseFieldRule } from './json-mask.js';
import { addressedKind, maskMarkers, maskRequestBody, pointer, readBody, valueReadingOps } from './request-body.js';
import { classifyRequest, type RequestInfo } from './request-info.js';

const CANARY = 'canary-value-0451';
const CANARY_B64 = Buffer.from(CANARY).toString('base64');
const info = (method: string, path: string) => classifyRequest(method, path) as RequestInfo;
const SECRET = info('PATCH', '/api/v1/namespaces/app/secrets/db');
const rules = { fields: [parseFieldRule('ConfigMap:data.*', 'x')], masker: new Masker('default', { columns: [], detectors: [] }) };

/** The recorded text of a body sent with `type` to `to`. */
function recorded(body: unknown, type: string, to: RequestInfo = SECRET): string {
  const raw = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const read = readBody(raw, type);
  if (read.kind === 'opaque') throw new Error(read.why);
  maskRequestBody(read, to, rules);
  return JSON.stringify(read.doc);
}

const kind = suite('addressedKind');

kind('built-in resources by group; subresources with their own kind are read from the body; anything else is any kind', () => {
  assert.is(addressedKind(SECRET), 'Secret');
  assert.is(addressedKind(info('PUT', '/api/v1/namespaces/app/secrets/db/status')), 'Secret');
  assert.is(addressedKind(info('PATCH', '/apis/apps/v1/namespaces/app/deployments/web/scale')), undefined);
  assert.is(addressedKind(info('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings')), 'ClusterRoleBinding');
  // `secrets` in another group is not the core Secret.
  assert.is(addressedKind(info('PATCH', '/apis/example.com/v1/namespaces/app/secrets/x')), ANY_KIND);
  assert.is(addressedKind(info('GET', '/version')), undefined);
});

kind.run();

const mask = suite('maskRequestBody');

mask('a merge or strategic-merge patch of a Secret names no kind: its data and stringData are masked', () => {
  for (const type of ['application/merge-patch+json', 'application/strategic-merge-patch+json']) {
    const out = recorded({ data: { 'tls.key': CANARY_B64 }, stringData: { pw: CANARY }, metadata: { labels: { a: 'b' } } }, type);
    assert.not.ok(out.includes(CANARY) || out.includes(CANARY_B64), out);
    assert.match(out, `"tls.key":"${MASKED_SECRET_DATA}"`);
    assert.match(out, '"labels":{"a":"b"}');
  }
});

mask('a key removed by a patch (null) stays visible as removed', () => {
  assert.is(recorded({ data: { old: null } }, 'application/merge-patch+json'), '{"data":{"old":null}}');
});

mask('a body that claims another kind is still masked as the Secret it is sent to', () => {
  const out = recorded({ kind: 'ConfigMap', data: { pw: CANARY_B64 } }, 'application/json');
  assert.not.ok(out.includes(CANARY_B64), out);
});

mask('kubectl client-side apply: the patch data and the last-applied annotation that embeds the Secret', () => {
  const applied = JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db' }, stringData: { username: CANARY } });
  const out = recorded({ stringData: { username: CANARY }, metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': applied } } }, 'application/strategic-merge-patch+json');
  assert.not.ok(out.includes(CANARY), out);
});

mask('a JSON patch: each value at or under /data and /stringData, a whole data map, a whole object, a test op', () => {
  const ops = [
    { op: 'add', path: '/data/key1', value: CANARY_B64 },
    { op: 'replace', path: '/stringData', value: { a: CANARY } },
    { op: 'replace', path: '/data', value: { b: CANARY_B64 } },
    { op: 'test', path: '/data/key1', value: CANARY_B64 },
    { op: 'replace', path: '', value: { metadata: { name: 'db' }, data: { c: CANARY_B64 } } },
    { op: 'add', path: '/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration', value: JSON.stringify({ kind: 'Secret', data: { d: CANARY_B64 } }) },
    { op: 'add', path: '/metadata/labels/team', value: 'blue' },
    { op: 'remove', path: '/data/gone' },
  ];
  const out = recorded(ops, 'application/json-patch+json');
  assert.not.ok(out.includes(CANARY) || out.includes(CANARY_B64), out);
  const doc = JSON.parse(out);
  assert.is(doc[0].value, MASKED_SECRET_DATA);
  assert.equal(doc[1].value, { a: '[masked]' });
  assert.equal(doc[6], { op: 'add', path: '/metadata/labels/team', value: 'blue' }, 'other values stay readable');
  assert.equal(doc[7], { op: 'remove', path: '/data/gone' });
});

mask('a JSON patch whose path is not a pointer keeps no value', () => {
  assert.is(recorded([{ op: 'add', path: 'data/x', value: CANARY_B64 }], 'application/json-patch+json'), '[{"op":"add","path":"data/x","value":"[masked]"}]');
});

mask('server-side apply in YAML is read and masked; aliases are refused (they could hide what a value is)', () => {
  const out = recorded(`apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  pw: ${CANARY}\n`, 'application/apply-patch+yaml');
  assert.not.ok(out.includes(CANARY), out);
  assert.match(out, '"name":"db"');
  const aliased = readBody(Buffer.from('a: &x {pw: 1}\nb: *x\n'), 'application/apply-patch+yaml');
  assert.is(aliased.kind, 'opaque');
  // A repeated key: the API server keeps one of them, Agate cannot tell which.
  assert.is(readBody(Buffer.from('kind: Secret\nkind: ConfigMap\n'), 'application/yaml').kind, 'opaque');
});

mask('YAML the API server reads as YAML 1.1 otherwise (merge keys, explicit tags, collection keys) is opaque, never read as 1.2', () => {
  const opaque = (text: string) => {
    const r = readBody(Buffer.from(text), 'application/apply-patch+yaml');
    return r.kind === 'opaque' ? r.why : `parsed: ${JSON.stringify(r.doc)}`;
  };
  // The API server merges `<<` into metadata: a finalizer, or a Secret's data, no key names.
  assert.match(opaque('metadata:\n  name: c\n  <<: {finalizers: [x]}\n'), 'merge key');
  assert.match(opaque(`kind: Secret\n"<<": {stringData: {k: ${CANARY}}}\n`), 'merge key');
  // `!!binary` is a string there: the token type spelled in base64.
  assert.match(opaque(`type: !!binary ${Buffer.from('kubernetes.io/service-account-token').toString('base64')}\n`), 'tag tag:yaml.org,2002:binary');
  assert.match(opaque('metadata: {!!str finalizers: []}\n'), 'explicit tag');
  assert.match(opaque('%TAG ! tag:yaml.org,2002:\n---\ntype: !binary YQ==\n'), 'explicit tag');
  assert.match(opaque('? [a, b]\n: c\n'), 'not a scalar');
  assert.match(opaque('a: &x {pw: 1}\nb: *x\n'), 'alias');
  // Plain YAML, anchors unused, quoted and block scalars: read.
  assert.is(opaque('kind: ConfigMap\nmetadata: {name: &n c}\ndata:\n  a: "<<"\n  b: |\n    text\n'), 'parsed: {"kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"<<","b":"text\\n"}}');
});

mask('JSON with a key repeated in one object is unreadable: the API server merges or keeps what JSON.parse drops', () => {
  const body = Buffer.from('{"kind":"Secret","stringData":{"k":"\\u005bmasked]"},"stringData":{}}');
  assert.equal(readBody(body, 'application/json'), { kind: 'opaque', why: `${body.length} bytes of JSON with the key "stringData" twice in one object, which the API server reads differently`, searchable: false });
  assert.is(readBody(Buffer.from('[{"op":"add","path":"/a","value":1,"value":2}]'), 'application/json-patch+json').kind, 'opaque');
  assert.is(readBody(Buffer.from('{"data":{"a":1},"stringData":{"a":1}}'), 'application/json').kind, 'parsed');
});

mask('a content-encoded body is unreadable whatever its type; protobuf alone is searchable', () => {
  const json = Buffer.from('{"kind":"ConfigMap"}');
  assert.equal(readBody(json, 'application/json', 'gzip'), { kind: 'opaque', why: `${json.length} bytes of application/json encoded as gzip`, searchable: false });
  assert.is(readBody(json, 'application/json', 'identity').kind, 'parsed');
  assert.equal(readBody(json, 'application/vnd.kubernetes.protobuf'), { kind: 'opaque', why: `${json.length} bytes of application/vnd.kubernetes.protobuf`, searchable: true });
  assert.is((readBody(json, 'application/vnd.kubernetes.protobuf', 'deflate') as { searchable: boolean }).searchable, false);
  assert.is((readBody(json, 'application/cbor') as { searchable: boolean }).searchable, false);
});

mask('mask_fields apply to a patch of their kind, and to a resource Agate cannot name', () => {
  const cm = info('PATCH', '/api/v1/namespaces/app/configmaps/c');
  assert.is(recorded({ data: { a: CANARY } }, 'application/merge-patch+json', cm), '{"data":{"a":"[masked]"}}');
  assert.is(recorded([{ op: 'add', path: '/data/a', value: CANARY }], 'application/json-patch+json', cm), '[{"op":"add","path":"/data/a","value":"[masked]"}]');
  const custom = info('PATCH', '/apis/example.com/v1/namespaces/app/widgets/w');
  assert.is(recorded({ data: { a: CANARY } }, 'application/merge-patch+json', custom), '{"data":{"a":"[masked]"}}');
  const pod = info('PATCH', '/api/v1/namespaces/app/pods/p');
  assert.is(recorded({ data: { a: 'visible' } }, 'application/merge-patch+json', pod), '{"data":{"a":"visible"}}');
});

mask.run();

const ptr = suite('pointer');

ptr('RFC 6901 escapes; the empty pointer is the whole document', () => {
  assert.equal(pointer('/metadata/annotations/a~1b~0c'), ['metadata', 'annotations', 'a/b~c']);
  assert.equal(pointer(''), []);
  assert.is(pointer('data'), undefined);
});

ptr.run();

const markers = suite('maskMarkers');

const marked = (body: unknown, type = 'application/json') => {
  const raw = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return maskMarkers(readBody(raw, type), raw);
};

markers('a masked read sent back: Secret data, stringData, a masked field, a detected span, the last-applied copy', () => {
  const applied = JSON.stringify({ kind: 'Secret', data: { pw: MASKED_SECRET_DATA } });
  const secret = { kind: 'Secret', metadata: { name: 'db', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': applied } }, data: { apikey: MASKED_SECRET_DATA, ok: CANARY_B64 }, stringData: { pw: '[masked]' } };
  assert.equal(marked(secret), ['metadata.annotations.kubectl.kubernetes.io/last-applied-configuration.data.pw', 'data.apikey', 'stringData.pw']);
  assert.equal(marked({ kind: 'ConfigMap', data: { note: 'token [masked:jwt] here' } }), ['data.note']);
  assert.equal(marked(`data:\n  apikey: ${MASKED_SECRET_DATA}\n`, 'application/apply-patch+yaml'), ['data.apikey']);
});

markers('a JSON patch: values named by their path', () => {
  assert.equal(marked([{ op: 'replace', path: '/data/apikey', value: MASKED_SECRET_DATA }, { op: 'add', path: '/data/x', value: CANARY_B64 }], 'application/json-patch+json'), ['data.apikey']);
});

markers('real values pass; a protobuf body is searched as bytes', () => {
  assert.equal(marked({ kind: 'Secret', data: { pw: CANARY_B64 }, stringData: { note: 'masked' } }), []);
  const proto = Buffer.concat([Buffer.from([0x6b, 0x38, 0x73, 0]), Buffer.from('[masked]')]);
  assert.equal(maskMarkers(readBody(proto, 'application/vnd.kubernetes.protobuf'), proto), ['(the request body)']);
  const clean = Buffer.from([0x6b, 0x38, 0x73, 0, 1, 2]);
  assert.equal(maskMarkers(readBody(clean, 'application/vnd.kubernetes.protobuf'), clean), []);
});

markers.run();

const reads = suite('k8s JSON patch ops that read a stored value');

reads('copy, move, test and any op but add, replace, remove read a value; a merge patch reads none', () => {
  const ops = (body: unknown, type = 'application/json-patch+json') => valueReadingOps(readBody(Buffer.from(JSON.stringify(body)), type));
  assert.equal(ops([{ op: 'copy', from: '/data/key', path: '/metadata/annotations/x' }, { op: 'move', from: '/data', path: '/metadata/annotations' }, { op: 'test', path: '/data/key', value: 'x' }]), ['copy /data/key', 'move /data', 'test /data/key']);
  assert.equal(ops([{ op: 'Copy', from: '/data/key', path: '/x' }, { path: '/x' }, 'add']), ['Copy /data/key', '(no op) /x', '(no op)']);
  assert.equal(ops([{ op: 'add', path: '/metadata/labels', value: { a: 'b' } }, { op: 'replace', path: '/data/k', value: 'eA==' }, { op: 'remove', path: '/data/j' }]), []);
  assert.equal(ops({ metadata: { labels: { a: 'b' } } }, 'application/merge-patch+json'), []);
});

reads.run();

const depth = suite('k8s request bodies nested deeply');

depth('a body nested 1,000 levels or more (JSON or YAML) is unreadable: Agate\'s walks of it would overflow the stack', () => {
  const nested = (n: number) => `{"kind":"ConfigMap","x":${'['.repeat(n)}${']'.repeat(n)}}`;
  assert.is(readBody(Buffer.from(nested(990)), 'application/json').kind, 'parsed');
  const deep = readBody(Buffer.from(nested(100_000)), 'application/json');
  assert.equal(deep.kind === 'opaque' && [deep.searchable, /nested deeper than 1000 levels/.test(deep.why)], [false, true]);
  assert.is(readBody(Buffer.from(nested(1000)), 'application/apply-patch+yaml').kind, 'opaque');
});

depth.run();

const yaml11 = suite('k8s YAML bodies read as YAML 1.1');

yaml11('a plain scalar YAML 1.1 reads otherwise (a key y, yes, on, 0755, 1_000, a date) is unreadable; quoted, or read alike, it is parsed', () => {
  for (const text of ['data: {y: x}', 'spec: {hostNetwork: yes}', 'a: on', 'a: 0755', 'a: 1_000', 'a: 2024-01-01', 'data: {n: "1"}']) {
    const r = readBody(Buffer.from(text), 'application/apply-patch+yaml');
    assert.equal(r.kind === 'opaque' && [r.searchable, /YAML 1\.1/.test(r.why)], [false, true], text);
  }
  const same = readBody(Buffer.from('a: true\nb: 1\nc: "yes"\nd: 0x1F\ne: ~\nf: 1.5\ndata: {size: "0755"}'), 'application/yaml');
  assert.equal(same.kind === 'parsed' && same.doc, { a: true, b: 1, c: 'yes', d: 31, e: null, f: 1.5, data: { size: '0755' } });
});

yaml11.run();
