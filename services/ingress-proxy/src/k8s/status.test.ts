import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { classifyRequest, type RequestInfo } from './request-info.js';
import { failure, forbidden, maskedWrite, statusBody } from './status.js';

const info = (method: string, path: string) => classifyRequest(method, path) as RequestInfo;

const status = suite('status');

status('forbidden names the request, the rule and the reason, with details like the API server', () => {
  const s = forbidden(info('DELETE', '/api/v1/namespaces/prod'), 'no-namespace-delete', 'deleting a namespace needs a human');
  assert.equal(s, {
    kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'Forbidden', code: 403,
    message: 'Agate refused delete namespaces "prod" by rule "no-namespace-delete": deleting a namespace needs a human',
    details: { kind: 'namespaces', name: 'prod' },
  });
});

status('forbidden by the default, with a group, a subresource and a namespace', () => {
  const s = forbidden(info('POST', '/apis/apps/v1/namespaces/x/deployments/web/scale'), null, 'no rule matched');
  assert.is(s.message, 'Agate refused create deployments/scale.apps "web" in namespace "x" by the policy default: no rule matched');
  assert.equal(s.details, { kind: 'deployments/scale', name: 'web', group: 'apps' });
});

status('non-resource requests are named by path', () => {
  assert.is(forbidden(info('GET', '/version'), 'r', 'no').message, 'Agate refused get /version by rule "r": no');
  assert.is(forbidden(info('GET', '/version'), 'r', 'no').details, undefined);
});

status('codes follow the reason unless given', () => {
  assert.is(failure('Unauthorized', 'x').code, 401);
  assert.is(failure('RequestEntityTooLarge', 'x').code, 413);
  assert.is(failure('ServiceUnavailable', 'x', undefined, 502).code, 502);
  assert.equal(JSON.parse(statusBody(failure('BadRequest', 'bad')).toString()), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'bad', reason: 'BadRequest', code: 400 });
});

status('a masked value written back: 422 Invalid, one cause per field, naming the object', () => {
  const s = maskedWrite(info('PUT', '/api/v1/namespaces/app/secrets/db'), ['data.apikey', 'stringData.pw']);
  assert.equal([s.code, s.reason, s.details?.kind, s.details?.name], [422, 'Invalid', 'secrets', 'db']);
  assert.match(s.message, /^Agate refused the write: data\.apikey, stringData\.pw holds the value Agate masked when it was read/);
  assert.equal(s.details?.causes?.map((c) => [c.field, c.reason]), [['data.apikey', 'FieldValueInvalid'], ['stringData.pw', 'FieldValueInvalid']]);
});

status.run();
