import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { RowBinaryReader, RowBinaryWriter } from '../../../core/src/store/row-binary.js';
import { EventCodec, freezeEvent } from '../../../schemas/src/codec.js';
import { EVENT_TYPES, type AgateEvent } from '../../../schemas/src/events.js';
import { random, randomValue } from '../../../schemas/src/random-value.js';
import { currentSchemas } from '../../../schemas/src/registry.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { recordColumns, writeEventRow, writeRow } from './chain.js';
import { writeJsonBody } from './json-body.js';

/*
 * writeEventRow (the ledger's path, its body written piece by piece) against writeRow with
 * recordColumns (JSON.stringify of the whole event): the same bytes, for every event type and
 * for the strings JSON escapes, lengths around the LEB128 widths, and identities frozen or not.
 */

const codec = new EventCodec();

/** The row both ways: writeRow over recordColumns, writeEventRow over the event. */
function bothRows(event: AgateEvent): [Buffer, Buffer] {
  const payload = codec.encode(event);
  const reference = new RowBinaryWriter(16);
  writeRow(reference, 'embedded', 42, payload, recordColumns(event), 7);
  const ours = new RowBinaryWriter(16); // small: every part makes it grow
  writeEventRow(ours, 'embedded', 42, payload, event, 7);
  return [Buffer.from(ours.finish()), Buffer.from(reference.finish())];
}

const rows = suite('writeEventRow');

rows('writes the bytes writeRow writes from recordColumns, for a sample of every event type', () => {
  for (const [type, sample] of Object.entries(SAMPLES)) {
    const [ours, reference] = bothRows(structuredClone(sample) as AgateEvent);
    assert.equal(ours, reference, type);
  }
});

rows('the same for text JSON escapes: quotes, backslashes, controls, non-ASCII, emoji, lone surrogates, U+2028', () => {
  const texts = ['say "hi"', 'C:\\path', 'tab\there\nnew\u0000nul\u001f', 'grüße ĳ 東京', 'emoji 😀 pair', 'lone \ud83d high', 'lone \ude00 low', 'sep\u2028\u2029', '\u007f del', ''];
  for (const text of texts) {
    const command = { ...SAMPLES.Command, text, parameters: [text, null], attributes: { [text === '' ? 'empty' : text]: text } } as AgateEvent;
    const [ours, reference] = bothRows(command);
    assert.equal(ours, reference, JSON.stringify(text));
  }
});

rows('the same with a frozen identity (its JSON kept and reused) and with an unfrozen one changed between rows', () => {
  const identity = { ...SAMPLES.Command.identity, claims: { ...SAMPLES.Command.identity.claims, 'aud"x': 'v\\1' } as Record<string, string> };
  const unfrozen = { ...SAMPLES.Command, identity } as AgateEvent;
  assert.equal(...bothRows(unfrozen));
  identity.claims.extra = 'changed';
  const [changed, changedReference] = bothRows(unfrozen);
  assert.equal(changed, changedReference);
  assert.ok(changed.includes('changed'), 'an identity that is not frozen is serialized afresh');
  const frozen = freezeEvent({ ...SAMPLES.Command, identity: structuredClone(identity) } as AgateEvent);
  assert.equal(...bothRows(frozen));
  assert.equal(...bothRows(frozen), 'the kept JSON of a frozen identity');
});

rows('the same for bodies whose length takes 1, 2, 3 and 4 LEB128 bytes, and leaves out undefined members', () => {
  for (const n of [0, 60, 127, 200, 16_000, 16_383, 16_384, 2_097_000, 2_097_151, 2_097_152, 2_200_000]) {
    const [ours, reference] = bothRows({ ...SAMPLES.Command, text: 'x'.repeat(n), trace_parent: undefined } as AgateEvent);
    assert.equal(ours.length, reference.length, `text of ${n}`);
    assert.ok(ours.equals(reference), `text of ${n}`);
  }
});

rows.run();

const body = suite('writeJsonBody');

body('reads back as the string JSON.stringify makes, after other columns', () => {
  const w = new RowBinaryWriter(8);
  const event = SAMPLES.Response as AgateEvent;
  w.string('before');
  writeJsonBody(w, event);
  w.string('after');
  const r = new RowBinaryReader(Buffer.from(w.finish()));
  assert.is(r.string(), 'before');
  assert.is(r.string(), JSON.stringify(event));
  assert.is(r.string(), 'after');
  assert.ok(r.done);
});

/** writeJsonBody's string, read back. */
function bodyOf(event: unknown): string {
  const w = new RowBinaryWriter(8);
  writeJsonBody(w, event as AgateEvent);
  const r = new RowBinaryReader(Buffer.from(w.finish()));
  const out = r.string();
  assert.ok(r.done);
  return out;
}

const schemas = currentSchemas();

body('JSON.stringify\'s string for random events of every type, keys in schema order', () => {
  for (const t of EVENT_TYPES) {
    for (let seed = 1; seed <= 300; seed++) {
      const event = { type: t, ...(randomValue(schemas.get(t)!.type, random(seed * 31 + t.length)) as object) };
      assert.is(bodyOf(event), JSON.stringify(event), `${t} seed ${seed}`);
      freezeEvent(event as AgateEvent);
      assert.is(bodyOf(event), JSON.stringify(event), `${t} seed ${seed}, frozen`);
    }
  }
});

body('the same for keys in another order, keys no schema has, and members of another kind than the schema\'s', () => {
  for (const t of EVENT_TYPES) {
    for (let seed = 1; seed <= 100; seed++) {
      const r = random(seed * 17 + t.length);
      const fields = randomValue(schemas.get(t)!.type, r) as Record<string, unknown>;
      const entries: [string, unknown][] = [['type', t], ...Object.entries(fields)];
      // Shuffled; or an extra key; or one member made odd: a hole, a function, NaN, a Date, a number for a string, undefined.
      const kind = Math.floor(r() * 3);
      if (kind === 0) entries.sort(() => r() - 0.5);
      if (kind === 1) entries.splice(Math.floor(r() * entries.length), 0, ['extra', 'x']);
      const event = Object.fromEntries(entries);
      if (kind === 2) {
        const [key] = entries[1 + Math.floor(r() * (entries.length - 1))]!;
        event[key] = [[, 'a', null], () => 1, NaN, new Date(0), 42, undefined, Symbol('s'), [1, 'a'], { a: 'b' }, { toJSON: () => 'j' }][Math.floor(r() * 10)];
      }
      assert.is(bodyOf(event), JSON.stringify(event), `${t} seed ${seed} (${kind})`);
    }
  }
});

body('numbers of every shape, inherited and non-enumerable members, integer-like keys: JSON.stringify\'s string', () => {
  const numbers = [0, -0, 1, -1.5, 0.1 + 0.2, 1e21, 1e-7, 5e-324, -1.5e300, 2 ** 53 + 2, NaN, Infinity, -Infinity];
  for (const n of numbers) {
    const event = { ...structuredClone(SAMPLES.Response), rows: n, time: n };
    assert.is(bodyOf(event), JSON.stringify(event), String(n));
    assert.is(bodyOf(freezeEvent(event as AgateEvent)), JSON.stringify(event), `${n}, frozen`);
  }
  // for…in visits inherited enumerable members; JSON.stringify leaves them out.
  const inherits = Object.assign(Object.create({ inherited: 'x', rows: 9 }), structuredClone(SAMPLES.Verdict)) as Record<string, unknown>;
  assert.is(bodyOf(inherits), JSON.stringify(inherits), 'inherited');
  Object.defineProperty(inherits, 'hidden', { value: 'h', enumerable: false });
  assert.is(bodyOf(inherits), JSON.stringify(inherits), 'non-enumerable');
  const keyed = { '10': 'ten', ...structuredClone(SAMPLES.Command), '2': 'two' } as Record<string, unknown>;
  assert.is(bodyOf(keyed), JSON.stringify(keyed), 'integer-like keys');
  const polluted = Object.prototype as Record<string, unknown>;
  polluted.polluted = 'p';
  try {
    const event = structuredClone(SAMPLES.Command);
    assert.is(bodyOf(event), JSON.stringify(event), 'Object.prototype polluted');
  } finally {
    delete polluted.polluted;
  }
});

body.run();
