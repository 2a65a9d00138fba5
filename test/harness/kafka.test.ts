import { test } from './suite.js';
import * as assert from 'uvu/assert';
import { kafkaClusterId } from './kafka.js';

test('cluster ids are 22 base64url characters and never start with "-"', () => {
  const ids = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    const id = kafkaClusterId();
    assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    ids.add(id);
  }
  assert.is(ids.size, 20_000);
});

test.run();
