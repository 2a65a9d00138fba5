import { suite } from 'uvu';
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
prep.run();
