import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import type avro from 'avsc';
import { EventCodec, freezeEvent } from './codec.js';
import { EVENT_TYPES, type AgateEvent } from './events.js';
import { plainWriter, type Sink, type Write } from './plain-writer.js';
import { currentSchemas } from './registry.js';
import { SAMPLES } from './samples.js';
import { random, randomValue } from './random-value.js';

const schemas = currentSchemas();

/** A value avsc refuses for a type (or undefined when every wrong value is taken some other way). */
function wrongValue(type: avro.Type, r: () => number): unknown {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  switch (type.typeName) {
    case 'string': return pick([1, null, undefined, {}, ['a'], true]);
    case 'long': return pick([1.5, '1', null, undefined, 2 ** 60, -(2 ** 60), NaN, Infinity]);
    case 'int': return pick([2 ** 31, 1.5, '1', null]);
    case 'boolean': return pick([0, 1, 'true', null]);
    case 'enum': return pick(['', 'nope', 0, null, undefined]);
    case 'array': return pick([{}, 'a', null, [1.5], [{}]]);
    case 'map': return pick([null, 'a', [], { a: 1 }, 0]);
    case 'union:unwrapped': return pick([undefined, 1.5, {}, true]);
    case 'record': return pick([null, 'a', 1]);
    default: return undefined;
  }
}

function writeAll(write: Write, value: unknown): Buffer {
  const sink: Sink = { buf: Buffer.allocUnsafe(16), pos: 0 };
  write(sink, value);
  return Buffer.from(sink.buf.subarray(0, sink.pos));
}

function avscBytes(type: avro.Type, value: unknown): Buffer {
  // toBuffer validates nothing more than encode does; encode into a large buffer like the codec did.
  const buf = Buffer.alloc(1 << 20);
  const end = type.encode(value, buf, 0);
  assert.ok(end >= 0);
  return buf.subarray(0, end);
}

const same = suite('plainWriter: avsc\'s bytes');
for (const t of EVENT_TYPES) {
  same(`${t}: the sample and 300 random ones`, () => {
    const type = schemas.get(t)!.type;
    const write = plainWriter(type);
    assert.equal(writeAll(write, SAMPLES[t]).toString('hex'), avscBytes(type, SAMPLES[t]).toString('hex'));
    for (let seed = 1; seed <= 300; seed++) {
      const value = randomValue(type, random(seed * 7919 + t.length));
      assert.equal(writeAll(write, value).toString('hex'), avscBytes(type, value).toString('hex'), `${t} seed ${seed}`);
    }
  });
}
same.run();

const refused = suite('plainWriter: what avsc refuses');
for (const t of EVENT_TYPES) {
  refused(`${t}: one field made wrong, 200 times`, () => {
    const type = schemas.get(t)!.type as avro.types.RecordType;
    const write = plainWriter(type);
    let wrongs = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const r = random(seed * 104729 + t.length);
      const value = randomValue(type, r) as Record<string, unknown>;
      const field = type.fields[Math.floor(r() * type.fields.length)]!;
      const wrong = wrongValue(field.type, r);
      value[field.name] = wrong;
      let avscThrew = false;
      try { avscBytes(type, value); } catch { avscThrew = true; }
      let ours: Buffer | undefined;
      try { ours = writeAll(write, value); } catch { /* refused */ }
      assert.is(ours === undefined, avscThrew, `${t}.${field.name} = ${String(wrong)} (seed ${seed})`);
      if (ours !== undefined) assert.equal(ours.toString('hex'), avscBytes(type, value).toString('hex'));
      if (avscThrew) wrongs++;
    }
    assert.ok(wrongs > 50, `only ${wrongs} refused`);
  });
}
refused.run();

const codec = suite('EventCodec.encode with the compiled writers');
codec('the single-object bytes are the header and avsc\'s body, a frozen identity cached or not', () => {
  const c = new EventCodec();
  for (const t of EVENT_TYPES) {
    const type = schemas.get(t)!.type;
    for (let seed = 1; seed <= 50; seed++) {
      const event = { type: t, ...(randomValue(type, random(seed)) as object) } as AgateEvent;
      const expected = Buffer.concat([Buffer.from([0xc3, 0x01]), c.writerSchema(t).fingerprint, avscBytes(type, event)]).toString('hex');
      assert.equal(c.encode(event).toString('hex'), expected, `${t} seed ${seed}`);
      // Twice frozen: the second takes a frozen identity's cached bytes.
      freezeEvent(event);
      assert.equal(c.encode(event).toString('hex'), expected, `${t} seed ${seed}, frozen`);
      assert.equal(c.encode(event).toString('hex'), expected, `${t} seed ${seed}, frozen again`);
    }
  }
});
codec('a value of the wrong kind is EVENT_ENCODING', () => {
  const c = new EventCodec();
  try { c.encode({ ...SAMPLES.Command, sequence: 1.5 }); assert.unreachable(); } catch (e) { assert.is((e as { code: string }).code, 'EVENT_ENCODING'); }
  try { c.encode({ ...SAMPLES.Verdict, decision: 'maybe' } as unknown as AgateEvent); assert.unreachable(); } catch (e) { assert.is((e as { code: string }).code, 'EVENT_ENCODING'); }
});
codec('an enum refuses a name every object inherits (avsc wrote it as the first symbol)', () => {
  const c = new EventCodec();
  for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
    try { c.encode({ ...SAMPLES.Verdict, decision: name } as unknown as AgateEvent); assert.unreachable(name); } catch (e) { assert.is((e as { code: string }).code, 'EVENT_ENCODING', name); }
  }
});
codec.run();
