import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { eventId } from './event-id.js';

const ids = suite('eventId');

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

ids('is a lowercase version 4 UUID with the RFC 9562 variant, across several pool refills', () => {
  for (let i = 0; i < 2_000; i++) assert.match(eventId(), V4);
});

ids('never repeats, and its bits are random (each hex digit of the random part near 1/16)', () => {
  const seen = new Set<string>();
  const digits = new Array<number>(16).fill(0);
  const n = 50_000;
  for (let i = 0; i < n; i++) {
    const id = eventId();
    seen.add(id);
    // The first 8 digits carry no fixed bits.
    for (const c of id.slice(0, 8)) digits[parseInt(c, 16)]! += 1;
  }
  assert.is(seen.size, n);
  const expected = (n * 8) / 16;
  for (const count of digits) assert.ok(Math.abs(count - expected) < expected * 0.05, `digit count ${count} far from ${expected}`);
});

ids('returns an independent string each time (not a view of a reused buffer)', () => {
  const a = eventId();
  const copy = `${a}`;
  eventId();
  assert.is(a, copy);
});

ids.run();
