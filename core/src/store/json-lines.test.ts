import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { LINES_PER_TURN, parseJsonLines } from './json-lines.js';

const lines = suite('parseJsonLines');

/** Runs `work` while counting the turns of the event loop that pass before it settles. */
async function turnsDuring<T>(work: () => Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let counting = true;
  const tick = (): void => {
    if (!counting) return;
    turns += 1;
    setImmediate(tick);
  };
  setImmediate(tick);
  try {
    return { value: await work(), turns };
  } finally {
    counting = false;
  }
}

lines('one value per line, in order; the final newline and blank lines carry none', async () => {
  assert.equal(await parseJsonLines('{"a":1}\n{"a":"x\\ny"}\n\n{"b":[1,2]}\n'), [{ a: 1 }, { a: 'x\ny' }, { b: [1, 2] }]);
  assert.equal(await parseJsonLines('{"a":1}'), [{ a: 1 }]);
  assert.equal(await parseJsonLines(''), []);
});

lines('a damaged line rejects with the parser error', async () => {
  try {
    await parseJsonLines('{"a":1}\n{"a":\n');
    assert.unreachable('parsed a damaged line');
  } catch (err) {
    assert.instance(err, SyntaxError);
  }
});

lines('a large result gives the event loop a turn every LINES_PER_TURN lines', async () => {
  const text = Array.from({ length: LINES_PER_TURN * 3 + 1 }, (_, i) => JSON.stringify({ i })).join('\n');
  const { value, turns } = await turnsDuring(() => parseJsonLines<{ i: number }>(text));
  assert.is(value.length, LINES_PER_TURN * 3 + 1);
  assert.is(value[LINES_PER_TURN * 3]!.i, LINES_PER_TURN * 3);
  assert.ok(turns >= 3, `the loop turned ${turns} times while ${value.length} lines were parsed`);
  const small = await turnsDuring(() => parseJsonLines('{"i":0}\n{"i":1}\n'));
  assert.is(small.turns, 0, 'a small result is parsed in one go');
});

lines.run();
