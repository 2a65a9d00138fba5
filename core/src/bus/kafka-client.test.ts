import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { MultipleErrors, NetworkError, ProtocolError, ResponseError, AuthenticationError, UserError } from '@platformatic/kafka';
import { describeKafkaError, isTransientKafkaError, keyPartitioner } from './kafka-client.js';

const partitioner = suite('keyPartitioner');

partitioner('puts keys where kafkajs\'s DefaultPartitioner (Java\'s default) did, so sessions keep their partitions', () => {
  // Computed with kafkajs 2.2.4's DefaultPartitioner over 12 partitions before the switch
  // (100,000 keys over 1, 3, 6, 12 and 32 partitions agreed; these are a sample kept as the oracle).
  const before: [string, number][] = [['', 9], ['a', 4], ['session-1', 4], ['21', 0], ['foobar', 6], ['a-little-bit-long-string', 8], ['0b2e4a5c-8a4e-4f2e-9a51-2f3c1d7e9b10', 1], ['ü', 2]];
  // The producer takes the partitioner's number modulo the topic's partition count.
  const now = before.map(([key]) => [key, keyPartitioner({ topic: 't', key, value: null }, Buffer.from(key)) % 12]);
  assert.equal(now, before);
});

partitioner('is never negative (the modulo of a negative hash would be no partition)', () => {
  for (let i = 0; i < 2_000; i++) {
    const key = `s-${i}-${(i * 7919).toString(36)}`;
    assert.ok(keyPartitioner({ topic: 't', key, value: null }, Buffer.from(key)) >= 0, key);
  }
});

partitioner.run();

const errors = suite('describeKafkaError, isTransientKafkaError');

errors('a refused produce reads as the step, the API and the broker\'s error code with its description', () => {
  const refused = new MultipleErrors('Producing messages failed.', [new ResponseError(0, 9, { '/responses/0/partitions/0': [10, null] }, {})]);
  const line = describeKafkaError(refused);
  assert.match(line, /^Producing messages failed\.: Received response with error while executing API Produce\(v9\): MESSAGE_TOO_LARGE: .*larger than the max message size/);
  assert.not.ok(isTransientKafkaError(refused), 'a record too large is not retried');
});

errors('a broker not up yet is transient, and its socket error is kept', () => {
  const refused = new MultipleErrors('Cannot connect to any broker.', [new NetworkError('Connection to 127.0.0.1:1 failed.', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }) })]);
  assert.match(describeKafkaError(refused), /Cannot connect to any broker\.: Connection to 127\.0\.0\.1:1 failed\.: connect ECONNREFUSED/);
  assert.ok(isTransientKafkaError(refused));
});

errors('no leader yet is transient; a failed login or an untrusted certificate is not', () => {
  assert.ok(isTransientKafkaError(new ProtocolError('LEADER_NOT_AVAILABLE')));
  assert.not.ok(isTransientKafkaError(new AuthenticationError('SASL authentication failed.')));
  assert.not.ok(isTransientKafkaError(new NetworkError('Connection to k:9093 failed.', { cause: new Error('self-signed certificate in certificate chain') })));
});

errors('a topic the broker does not know yet is transient; another refusal by the client is not', () => {
  // What the client makes of UNKNOWN_TOPIC_OR_PARTITION in a metadata answer.
  assert.ok(isTransientKafkaError(new UserError('Unknown topic bench.1.verdicts.')));
  assert.not.ok(isTransientKafkaError(new UserError('Unsupported compression algorithm zstd')));
});

errors.run();
