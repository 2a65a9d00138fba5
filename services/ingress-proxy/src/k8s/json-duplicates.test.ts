import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { duplicateKey } from './json-duplicates.js';

const test = suite('k8s/json-duplicates duplicateKey');

test('finds a key repeated in one object, at any depth', () => {
  assert.is(duplicateKey('{"type":"kubernetes.io/service-account-token","type":null}'), 'type');
  assert.is(duplicateKey('{"metadata":{"finalizers":["x"]},"metadata":{}}'), 'metadata');
  assert.is(duplicateKey('{"a":[{"b":1},{"c":{"d":1,"d":2}}]}'), 'd');
  assert.is(duplicateKey('[{"op":"add","op":"remove"}]'), 'op');
});

test('compares keys after unescaping them', () => {
  assert.is(duplicateKey('{"data":{},"\\u0064ata":{}}'), 'data');
  assert.is(duplicateKey('{"a\\"b":1,"a\\u0022b":2}'), 'a"b');
});

test('the same key in sibling or nested objects, another case, and keys inside values are not duplicates', () => {
  assert.is(duplicateKey('{"a":{"x":1},"b":{"x":1},"x":{"x":2}}'), undefined);
  assert.is(duplicateKey('{"type":"a","Type":"b"}'), undefined);
  assert.is(duplicateKey('{"a":"\\"a\\":","b":["a","a"],"c":"{\\"a\\":1,\\"a\\":2}"}'), undefined);
  assert.is(duplicateKey('{}'), undefined);
  assert.is(duplicateKey('"text"'), undefined);
  assert.is(duplicateKey(' [ 1 , {"a" : 1 , "b":2} , {"a":3} ] '), undefined);
});

test.run();
