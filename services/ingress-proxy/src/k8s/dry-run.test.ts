import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { dryRunOf } from './dry-run.js';
import { readBody } from './request-body.js';
import { classifyRequest, parseTarget } from './request-info.js';

const test = suite('dryRunOf');

function dry(method: string, target: string, body?: string, contentType = 'application/json'): string | undefined {
  const url = parseTarget(target);
  const info = classifyRequest(method, url);
  if (info.kind === 'invalid') throw new Error(info.message);
  const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
  return dryRunOf(method, url, info, bytes, bytes.length === 0 ? undefined : readBody(bytes, contentType));
}

const CM = '/api/v1/namespaces/default/configmaps';

test('the query parameter named exactly dryRun, every value All, on a write', () => {
  assert.is(dry('POST', `${CM}?dryRun=All`, '{}'), 'All');
  assert.is(dry('PATCH', `${CM}/a?fieldManager=x&dryRun=All&dryRun=All`, '{}'), 'All');
  assert.is(dry('PUT', `${CM}/a?dry%52un=All`, '{}'), 'All', 'decoded as the API server decodes the query');
  assert.is(dry('POST', `${CM}?dryrun=All`, '{}'), undefined);
  assert.is(dry('POST', `${CM}?dryRun=`, '{}'), undefined, 'refused by the API server (422)');
  assert.is(dry('POST', `${CM}?dryRun=All&dryRun=none`, '{}'), undefined);
  assert.is(dry('GET', `${CM}?dryRun=All`), undefined, 'reads take no dryRun');
  assert.is(dry('POST', '/api/v1/namespaces/default/pods/p/exec?command=ls&dryRun=All'), undefined, 'a connection is no stored write');
});

test('a delete with a body: its DeleteOptions, never the query', () => {
  assert.is(dry('DELETE', `${CM}/a?dryRun=All`), 'All', 'no body: the query');
  assert.is(dry('DELETE', `${CM}/a?dryRun=All`, '{}'), undefined, 'a body: the query is not read');
  assert.is(dry('DELETE', `${CM}/a`, '{"dryRun":["All"]}'), 'All');
  assert.is(dry('DELETE', CM, 'dryRun: [All]\n', 'application/yaml'), 'All', 'deletecollection, YAML');
  assert.is(dry('DELETE', `${CM}/a`, '\x0a\x05hello', 'application/vnd.kubernetes.protobuf'), 'unknown');
});

test.run();
