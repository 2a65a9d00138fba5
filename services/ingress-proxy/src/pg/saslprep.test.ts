import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { saslprep } from './saslprep.js';

const prep = suite('saslprep');
prep('ASCII passes through untouched, even control characters (as in PostgreSQL)', () => {
  assert.is(saslprep('pencil'), 'pencil');
  assert.is(saslprep('a\tb'), 'a\tb');
});
prep('maps non-ASCII spaces, drops soft hyphens, applies NFKC', () => {
  assert.is(saslprep('I\u00ADX'), 'IX');
  assert.is(saslprep('a\u00A0b'), 'a b');
  assert.is(saslprep('\u2168'), 'IX'); // ROMAN NUMERAL NINE
  assert.is(saslprep('\u00AA'), 'a');
});
prep('a prohibited result falls back to the raw password', () => {
  assert.is(saslprep('é\u0007'), 'é\u0007');
  assert.is(saslprep('é\uE000'), 'é\uE000');
});
prep('the bidirectional rule: a refused prepared string falls back to the raw password', () => {
  // Right-to-left throughout: prepared (the no-break space becomes a space).
  assert.is(saslprep('\u05D0\u00A0\u05D1'), '\u05D0 \u05D1');
  // An Arabic presentation form is normalised to the letter it stands for, still right-to-left.
  assert.is(saslprep('\uFB50'), '\u0671');
  // A left-to-right letter beside a right-to-left one (rule 2), even one NFKC makes ASCII.
  assert.is(saslprep('\u05D0\u00A0b'), '\u05D0\u00A0b');
  assert.is(saslprep('\u05D0\u{1D400}\u05D1'), '\u05D0\u{1D400}\u05D1');
  // Right-to-left but starting with a digit (rule 3).
  assert.is(saslprep('1\u00A0\u05D0'), '1\u00A0\u05D0');
  // Left-to-right only: the rule does not apply.
  assert.is(saslprep('\u{1D400}\u00A0b'), 'A b');
});
prep.run();
