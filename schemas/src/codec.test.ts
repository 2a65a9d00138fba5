import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { EventCodec, freezeEvent } from './codec.js';
import { EVENT_TYPES } from './events.js';
import { rabinFingerprint } from './fingerprint.js';
import { SAMPLES } from './samples.js';

const codec = new EventCodec();

const roundTrip = suite('EventCodec round trip');
for (const t of EVENT_TYPES) {
  roundTrip(`${t} survives encode and decode`, () => {
    assert.equal(codec.decode(codec.encode(SAMPLES[t])), SAMPLES[t]);
  });
}
roundTrip.run();

const header = suite('EventCodec header');
header('starts with the single-object marker and the writer fingerprint', () => {
  const bytes = codec.encode(SAMPLES.Command);
  assert.equal([...bytes.subarray(0, 2)], [0xc3, 0x01]);
  assert.equal(bytes.subarray(2, 10).toString('hex'), codec.writerSchema('Command').fingerprint.toString('hex'));
});
header('unknown fingerprints and truncated bodies are typed errors', () => {
  const bytes = codec.encode(SAMPLES.Command);
  const alien = Buffer.from(bytes);
  alien.fill(0, 2, 10);
  try { codec.decode(alien); assert.unreachable(); } catch (e) { assert.is((e as { code: string }).code, 'EVENT_UNKNOWN_SCHEMA'); }
  try { codec.decode(bytes.subarray(0, 20)); assert.unreachable(); } catch (e) { assert.is((e as { code: string }).code, 'EVENT_ENCODING'); }
  try { codec.decode(Buffer.from('{}')); assert.unreachable(); } catch (e) { assert.is((e as { code: string }).code, 'EVENT_ENCODING'); }
});
header('a fingerprint differing from a known one in any byte is unknown', () => {
  const bytes = codec.encode(SAMPLES.Command);
  // Each byte of the 8, and the top bit of the last (the bits decode compares apart from the rest).
  for (const [at, flip] of [...Array.from({ length: 8 }, (_, i) => [2 + i, 0x01]), [9, 0x80]] as [number, number][]) {
    const near = Buffer.from(bytes);
    near[at]! ^= flip;
    try { codec.decode(near); assert.unreachable(`byte ${at} ^ ${flip}`); } catch (e) { assert.is((e as { code: string }).code, 'EVENT_UNKNOWN_SCHEMA', `byte ${at} ^ ${flip}`); }
  }
});
header('an invalid event is refused at encode time', () => {
  const bad = { ...SAMPLES.Verdict, decision: 'maybe' } as unknown as typeof SAMPLES.Verdict;
  try { codec.encode(bad); assert.unreachable(); } catch (e) { assert.is((e as { code: string }).code, 'EVENT_ENCODING'); }
});
header('an event larger than any earlier one is encoded whole', () => {
  const big = { ...SAMPLES.Command, text: 'x'.repeat(200_000) };
  assert.equal(codec.decode(codec.encode(big)), big);
});
header.run();

const frozen = suite('EventCodec and frozen events');
frozen('an event encodes to equal bytes each time, and a changed one to its new content', () => {
  const c = new EventCodec();
  const event = structuredClone(SAMPLES.Command);
  const first = c.encode(event);
  assert.equal(c.encode(event), first);
  event.text = 'DROP TABLE items';
  assert.not.equal(c.encode(event), first);
  assert.is((c.decode(c.encode(event)) as typeof event).text, 'DROP TABLE items');
});
frozen('an identity shared by frozen events is encoded once, to the same bytes as a whole record', () => {
  const c = new EventCodec();
  const plain = new EventCodec();
  const identity = structuredClone(SAMPLES.Command.identity);
  const a = freezeEvent({ ...structuredClone(SAMPLES.Command), identity });
  const b = freezeEvent({ ...structuredClone(SAMPLES.Command), identity, event_id: 'other', text: 'SELECT 2' });
  assert.equal(c.encode(a), plain.encode(structuredClone(a)));
  assert.equal(c.encode(b), plain.encode(structuredClone(b)));
  assert.equal(c.decode(c.encode(b)), b);
  const opened = freezeEvent({ ...structuredClone(SAMPLES.SessionOpened), identity });
  assert.equal(c.encode(opened), plain.encode(structuredClone(opened)));
});
frozen('freezing reaches the identity, its claims and the parameters', () => {
  const event = freezeEvent(structuredClone(SAMPLES.Command));
  assert.ok(Object.isFrozen(event) && Object.isFrozen(event.identity) && Object.isFrozen(event.identity.claims) && Object.isFrozen(event.parameters));
  assert.throws(() => ((event as { text: string }).text = 'changed'));
});
frozen('freezing reaches arrays of arrays (a Response\'s sample), its columns and a Command\'s attributes', () => {
  const response = freezeEvent(structuredClone(SAMPLES.Response));
  assert.ok(Object.isFrozen(response.sample) && response.sample.every((row) => Object.isFrozen(row)) && Object.isFrozen(response.columns) && Object.isFrozen(response.fetches));
  assert.throws(() => ((response.sample[0] as (string | null)[])[0] = 'changed'));
  const command = freezeEvent({ ...structuredClone(SAMPLES.Command), attributes: { prepared: 'P_1' } });
  assert.ok(Object.isFrozen(command.attributes));
  assert.throws(() => ((command.attributes as Record<string, string>).prepared = 'changed'));
});
frozen.run();

const fp = suite('rabinFingerprint');
fp('matches a published CRC-64-AVRO value', () => {
  const canonical = '{"name":"Example","type":"record","fields":[{"name":"foobar","type":"string"}]}';
  assert.is(rabinFingerprint(canonical).toString('hex'), 'b75d6f7da238cf70');
});
fp.run();
