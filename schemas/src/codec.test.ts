import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { EventCodec } from './codec.js';
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
header('an invalid event is refused at encode time', () => {
  const bad = { ...SAMPLES.Verdict, decision: 'maybe' } as unknown as typeof SAMPLES.Verdict;
  try { codec.encode(bad); assert.unreachable(); } catch (e) { assert.is((e as { code: string }).code, 'EVENT_ENCODING'); }
});
header.run();

const fp = suite('rabinFingerprint');
fp('matches a published CRC-64-AVRO value', () => {
  const canonical = '{"name":"Example","type":"record","fields":[{"name":"foobar","type":"string"}]}';
  assert.is(rabinFingerprint(canonical).toString('hex'), 'b75d6f7da238cf70');
});
fp.run();
