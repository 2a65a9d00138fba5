import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { hasRightToLeft, revealSummary, revealText, visibleText } from './visible-text.js';

const reveal = suite('revealText');

const covers = (text: string) => {
  const pieces = revealText(text);
  let at = 0;
  for (const p of pieces) {
    assert.is(p.start, at, `pieces are contiguous in ${JSON.stringify(text)}`);
    assert.ok(p.end > p.start);
    at = p.end;
  }
  assert.is(at, text.length, 'the pieces cover the whole text');
};

reveal('Trojan Source: bidi overrides and isolates, zero-width characters and controls get labels; newline and tab stay', () => {
  const text = 'DROP TABLE t; -- \u202e1 TCELES\u202c\n\tSELECT\u2066 1\u2069\u200b\r\u0000\x1b]52;c;ZWNobyBoaQ==\x07\u00ad\ufeff';
  covers(text);
  assert.is(visibleText(text),
    'DROP TABLE t; -- ⟨RLO U+202E⟩1 TCELES⟨PDF U+202C⟩\n\tSELECT⟨LRI U+2066⟩ 1⟨PDI U+2069⟩⟨ZWSP U+200B⟩⟨CR U+000D⟩⟨NUL U+0000⟩⟨ESC U+001B⟩]52;c;ZWNobyBoaQ==⟨BEL U+0007⟩⟨SHY U+00AD⟩⟨BOM U+FEFF⟩');
  assert.equal(revealSummary('a\u200bb\u200bc\u202e'), ['ZWSP U+200B ×2', 'RLO U+202E']);
});

reveal('C1 controls, line and paragraph separators, unusual spaces, tag characters and private use are labelled', () => {
  for (const ch of ['\u009b', '\u0085', '\u2028', '\u2029', '\u00a0', '\u3000', '\u2007', '\u{e0041}', '\ue000', '\ufe0f', '\u3164', '\ud800']) {
    const pieces = revealText(`a${ch}b`);
    assert.is(pieces.length, 3, `${JSON.stringify(ch)}: ${JSON.stringify(pieces)}`);
    assert.is(pieces[1]!.kind, 'hidden');
  }
  const plain = 'SELECT 1;\n\tplain text, ünïcödé, 日本語, שלום, e\u0301';
  assert.equal(revealText(plain), [{ kind: 'plain', start: 0, end: plain.length }]);
});

reveal('a letter of another script inside a Latin word is labelled beside it; a word all of one script is not', () => {
  assert.is(visibleText('DROP TABLE v\u0430ult; SELECT \u0430\u0431\u0432, \u03b1\u03b2'), 'DROP TABLE vа⟨Cyrillic U+0430⟩ult; SELECT абв, αβ');
  assert.is(visibleText('p\u03bfstgres'), 'pο⟨Greek U+03BF⟩stgres');
  covers('x\u0430y\u0430z');
});

reveal('runs of blank lines, of spaces and of combining marks become one label each; short ones stay', () => {
  const text = `SELECT 1${'\n'.repeat(200)}DROP TABLE t${' '.repeat(300)}-- tail\n\n\nx${'\u0301'.repeat(40)}é\u0301`;
  covers(text);
  assert.is(visibleText(text), 'SELECT 1\n⟨199 blank lines⟩\nDROP TABLE t⟨300 spaces⟩-- tail\n\n\nx⟨40 combining marks⟩é\u0301');
  assert.is(visibleText('a\n \t\n\n\nb'), 'a\n⟨3 blank lines⟩\nb');
  assert.is(visibleText(`a${' '.repeat(39)}b`), `a${' '.repeat(39)}b`);
  assert.is(visibleText(`a \t${' '.repeat(40)}b`), 'a⟨42 spaces and tabs⟩b');
});

reveal('right-to-left letters are noticed', () => {
  assert.ok(hasRightToLeft("SELECT 'שלום'"));
  assert.ok(hasRightToLeft('SELECT \u0627'));
  assert.not.ok(hasRightToLeft('SELECT 1 -- ünïcödé 日本語'));
});

reveal.run();
