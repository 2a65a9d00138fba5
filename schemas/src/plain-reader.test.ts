import avro from 'avsc';
import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { EventCodec } from './codec.js';
import { EVENT_TYPES, type AgateEvent } from './events.js';
import { AvroReadError, plainReader } from './plain-reader.js';
import { currentSchemas } from './registry.js';
import { SAMPLES } from './samples.js';

/** What the codec returned before plain-reader.ts: avsc's read, copied into plain data, `type` first. */
function viaAvsc(type: avro.Type, eventType: string, body: Buffer): unknown {
  return { type: eventType, ...structuredClone(type.fromBuffer(body) as object) };
}

const schemas = currentSchemas();
const codec = new EventCodec();

/** Variants of each sample that reach the schema's other branches: nulls, empty and long text, non-ASCII, large and negative numbers. */
function variants(e: AgateEvent): AgateEvent[] {
  const fields = (schemas.get(e.type)!.type as avro.types.RecordType).fields;
  const kind = (name: string) => fields.find((f) => f.name === name)?.type.typeName;
  const out: AgateEvent[] = [e];
  const edit = (f: (o: Record<string, unknown>) => void) => {
    const copy = structuredClone(e) as unknown as Record<string, unknown>;
    f(copy);
    out.push(copy as unknown as AgateEvent);
  };
  edit((o) => {
    for (const k of Object.keys(o)) {
      if (kind(k) === 'string' && k !== 'event_id') o[k] = `ünïcödé ✓ 🚀 ${'x'.repeat(300)} "quoted"\n\ttab`;
      const items = kind(k) === 'array' ? (fields.find((f) => f.name === k)!.type as avro.types.ArrayType).itemsType.typeName : undefined;
      if (items === 'union:unwrapped' || items === 'string') o[k] = Array.from({ length: 200 }, (_, i) => (i % 3 === 0 && items !== 'string' ? null : `p${i}`));
      if (kind(k) === 'union:unwrapped') o[k] = null;
    }
    o.time = 2 ** 52; // the largest avsc writes
  });
  edit((o) => {
    for (const [k, v] of Object.entries(o)) {
      if (kind(k) === 'string' && k !== 'event_id') o[k] = '';
      if (kind(k) === 'array') o[k] = [];
      if (kind(k) === 'map') o[k] = {};
      if (kind(k) === 'long' && typeof v === 'number') o[k] = -(2 ** 40) - 7;
    }
    o.time = -(2 ** 40);
  });
  edit((o) => {
    const id = o.identity as { claims?: Record<string, string> } | undefined;
    if (id?.claims !== undefined) id.claims = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`claim_${i}`, JSON.stringify({ n: i, list: [1, 2, 3] })]));
    for (const [k, v] of Object.entries(o)) if (kind(k) === 'long' && typeof v === 'number' && k !== 'time') o[k] = 123_456_789_012;
  });
  return out;
}

/** Avro's zig-zag varint of n, computed exactly (avsc's own writer loses the low bit of odd numbers past 2^53). */
function zigzag(n: bigint): Buffer {
  let z = n >= 0n ? n * 2n : -n * 2n - 1n;
  const out: number[] = [];
  while (z >= 0x80n) (out.push(Number(z & 0x7fn) | 0x80), (z >>= 7n));
  out.push(Number(z));
  return Buffer.from(out);
}

const same = suite('plainReader: the same events as avsc');
for (const t of EVENT_TYPES) {
  same(`${t}: equal to avsc's read, copied, with the same JSON`, () => {
    const w = schemas.get(t)!;
    const read = plainReader(w.type, t);
    for (const e of variants(SAMPLES[t])) {
      const body = codec.encode(e).subarray(10);
      const mine = read(body);
      const theirs = viaAvsc(w.type, t, body);
      assert.equal(mine, theirs);
      assert.is(JSON.stringify(mine), JSON.stringify(theirs));
      assert.is(Object.getPrototypeOf(mine), Object.prototype);
    }
  });
}
same('a map key named __proto__ stays an entry of the map', () => {
  const read = plainReader(avro.Type.forSchema({ type: 'map', values: 'string' }));
  const bytes = Buffer.from([0x02, 0x12, ...Buffer.from('__proto__'), 0x02, 0x78, 0x00]);
  const m = read(bytes) as Record<string, string>;
  assert.equal(Object.keys(m), ['__proto__']);
  assert.is(Object.getPrototypeOf(m), Object.prototype);
  assert.is(JSON.stringify(m), '{"__proto__":"x"}');
});
same('arrays and maps in several blocks, with and without block sizes', () => {
  const read = plainReader(avro.Type.forSchema({ type: 'array', items: 'long' }));
  // [1, 2] as a block of 2, then [-3] as a block of -1 with its size (1 byte), then 0.
  assert.equal(read(Buffer.from([0x04, 0x02, 0x04, 0x01, 0x02, 0x05, 0x00])), [1, 2, -3]);
});
same.run();

const refused = suite('plainReader: bytes that are not an event');
refused('every truncation of every sample is refused, never read short', () => {
  for (const t of EVENT_TYPES) {
    const w = schemas.get(t)!;
    const read = plainReader(w.type, t);
    const body = codec.encode(SAMPLES[t]).subarray(10);
    for (let n = 0; n < body.length; n++) {
      let threw = false;
      try {
        read(body.subarray(0, n));
      } catch (err) {
        threw = err instanceof AvroReadError;
      }
      assert.ok(threw, `${t} cut at ${n} of ${body.length} bytes`);
    }
  }
});
refused('trailing bytes, a bad enum or union index, a long past 2^53 are refused', () => {
  const cases: [avro.Schema, number[]][] = [
    ['string', [0x02, 0x61, 0x00]],
    [{ type: 'enum', name: 'E', symbols: ['a', 'b'] }, [0x04]],
    [['null', 'string'], [0x04]],
    ['long', [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
    ['long', [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]],
    [{ type: 'array', items: 'long' }, [0x80, 0x80, 0x80, 0x80, 0x10, 0x02]],
    [{ type: 'array', items: 'null' }, [0x80, 0x80, 0x80, 0x80, 0x10]],
  ];
  for (const [schema, bytes] of cases) {
    const read = plainReader(avro.Type.forSchema(schema));
    assert.throws(() => read(Buffer.from(bytes)), (e: unknown) => e instanceof AvroReadError, JSON.stringify(schema));
  }
});
refused('longs read exactly up to 2^53 - 1 either way, and no further', () => {
  const read = plainReader(avro.Type.forSchema('long'));
  for (const n of [0, -1, 1, 63, -64, 64, 2 ** 31, -(2 ** 31) - 1, 2 ** 52 + 1, -(2 ** 52) - 1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]) {
    assert.is(read(zigzag(BigInt(n))), n);
  }
  for (const n of [2n ** 53n, -(2n ** 53n), 2n ** 63n - 1n]) assert.throws(() => read(zigzag(n)), (e: unknown) => e instanceof AvroReadError, String(n));
});
refused.run();
