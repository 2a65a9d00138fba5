import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { laneOf } from './kafka-lanes.js';

test('a key always maps to the same lane, within range', () => {
  for (const key of ['', 'a', '5f0c1a52-6d7e-4b1f-9a43-0c2f5d0e8b11', 'ü-session']) {
    const lane = laneOf(key, 4);
    assert.ok(lane >= 0 && lane < 4, key);
    assert.is(laneOf(key, 4), lane, key);
  }
  assert.is(laneOf('anything', 1), 0);
});

test('session ids spread over the lanes', () => {
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) counts[laneOf(`session-${i}-${i * 7919}`, 4)]! += 1;
  for (const c of counts) assert.ok(c > 800 && c < 1200, `lane counts ${counts.join(', ')}`);
});

test.run();
