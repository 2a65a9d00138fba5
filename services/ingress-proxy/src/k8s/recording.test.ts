import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { BUILTIN_MASK_SET } from '../../../../core/src/config.js';
import type { Command } from '../../../../schemas/src/events.js';
import { Masker } from '../masking/masker.js';
import { classifyRequest, type RequestInfo } from './request-info.js';
import { readBody } from './request-body.js';
import { bodySample, responseEvent, watchEvent, type K8sRecording } from './recording.js';

const VALUE = Buffer.from('top-secret-value').toString('base64');
const rec: K8sRecording = { sampleRows: 2, valueChars: 400, audit: new Masker('default', BUILTIN_MASK_SET), fields: [] };
const command = { event_id: 'c1', session_id: 's1' } as Command;
const delivered = (doc: unknown, code = 200) => ({ code, bytes: 10, digest: 'sha256:x', doc, maskedForClient: 0, started: 0, contentType: 'application/json' });

const recording = suite('k8s recording');

recording('a SecretList: every object counted and named, the sampled ones masked, no value anywhere', () => {
  const items = ['a', 'b', 'c'].map((name) => ({ metadata: { name, namespace: 'n' }, data: { password: VALUE } }));
  const r = responseEvent(command, delivered({ kind: 'SecretList', apiVersion: 'v1', metadata: {}, items }), rec);
  assert.equal([r.status, r.command_tag, r.rows, r.columns], ['ok', '200 SecretList', 3, ['kind', 'namespace', 'name', 'object']]);
  assert.equal(r.sample.map((row) => row.slice(0, 3)), [['Secret', 'n', 'a'], ['Secret', 'n', 'b']]);
  assert.not.ok(JSON.stringify(r).includes(VALUE));
});

recording('an error Status: its reason and masked message', () => {
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
  const r = responseEvent(command, delivered({ kind: 'Status', status: 'Failure', reason: 'NotFound', message: `secrets "${jwt}" not found` }, 404), rec);
  assert.equal([r.status, r.error_code, r.error_message], ['error', 'NotFound', 'secrets "[masked:jwt]" not found']);
});

const secretPatch = classifyRequest('PATCH', '/api/v1/namespaces/n/secrets/x') as RequestInfo;

recording('a request body: JSON and YAML masked as the object addressed, and cut; anything else described, never copied', () => {
  const body = Buffer.from(JSON.stringify({ kind: 'Secret', metadata: { name: 'x' }, data: { k: VALUE } }));
  assert.match(bodySample(readBody(body, 'application/json'), secretPatch, rec), '"k":"W21hc2tlZF0="');
  const yaml = Buffer.from(`data:\n  k: ${VALUE}\n`);
  assert.is(bodySample(readBody(yaml, 'application/apply-patch+yaml'), secretPatch, rec), '{"data":{"k":"W21hc2tlZF0="}}');
  assert.is(bodySample(readBody(Buffer.from('{'), 'application/merge-patch+json'), secretPatch, rec), '[1 bytes of invalid JSON, not recorded]');
  assert.is(bodySample(readBody(Buffer.from([0x6b, 0x38, 0x73, 0]), 'application/vnd.kubernetes.protobuf'), secretPatch, rec), '[4 bytes of application/vnd.kubernetes.protobuf, not recorded]');
});

recording('a watch event: type, object names, masked', () => {
  const line = Buffer.from('{}');
  const r = watchEvent(command, { type: 'MODIFIED', object: { kind: 'Secret', metadata: { name: 's', namespace: 'n' }, data: { k: VALUE } } }, line, 1, rec);
  assert.equal([r.command_tag, r.rows, r.masked_values], ['watch MODIFIED', 1, 1]);
  assert.equal(r.sample[0]!.slice(0, 4), ['MODIFIED', 'Secret', 'n', 's']);
  assert.not.ok(JSON.stringify(r).includes(VALUE));
});

recording.run();
