import { test } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';
import { EventCodec } from './codec.js';
import { currentSchemas, frozenSchemas, schemasDir } from './registry.js';
import { SAMPLES } from './samples.js';

/*
 * The contract between services: every frozen schema version under schemas/golden/ must stay
 * readable by the current code (BACKWARD), and bytes the current code writes must stay readable
 * by every frozen reader (FORWARD), so a rolling upgrade never breaks a consumer.
 */
const codec = new EventCodec();
const current = currentSchemas();
const frozen = frozenSchemas();

test('at least one frozen version covers every event type', () => {
  for (const t of current.keys()) assert.ok(frozen.some((f) => f.eventType === t), `${t} has no golden version`);
});

for (const old of frozen) {
  const dir = join(schemasDir(), 'golden', old.version);
  const golden = readFileSync(join(dir, `${old.eventType}.bin`));
  const expected = JSON.parse(readFileSync(join(dir, `${old.eventType}.json`), 'utf8'));

  test(`${old.version}/${old.eventType}: golden bytes decode with the current schemas`, () => {
    const decoded = codec.decode(golden) as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(expected)) assert.equal(decoded[k], v, `field ${k}`);
  });

  test(`${old.version}/${old.eventType}: a ${old.version} reader reads what the current code writes`, () => {
    const writer = current.get(old.eventType)!;
    const { type: _t, ...record } = SAMPLES[old.eventType];
    const resolver = old.type.createResolver(writer.type);
    assert.not.throws(() => old.type.fromBuffer(writer.type.toBuffer(record), resolver));
  });

  test(`${old.version}/${old.eventType}: unchanged schemas encode byte for byte as frozen`, () => {
    if (current.get(old.eventType)!.canonical !== old.canonical) return; // changed since; the two tests above guard it
    assert.equal(codec.encode(expected).toString('hex'), golden.toString('hex'));
  });
}

test('the guard trips: dropping a field without a default breaks old readers', () => {
  const writer = current.get('Response')!;
  const schema = writer.type.schema() as { fields: { name: string }[] };
  const broken = avro.Type.forSchema({ ...schema, fields: schema.fields.filter((f) => f.name !== 'rows') } as avro.Schema);
  const old = frozen.find((f) => f.eventType === 'Response')!;
  assert.throws(() => old.type.createResolver(broken));
});

test.run();
