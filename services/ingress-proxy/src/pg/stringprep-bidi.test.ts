import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { inRanges, L_CAT, parseRanges, RAND_AL_CAT, violatesBidiRule, type CodePointRanges } from './stringprep-bidi.js';

const tables = suite('RFC 3454 tables D.1 and D.2');

const sortedAndDisjoint = (ranges: CodePointRanges) => ranges.every(([a, b], i) => a <= b && (i === 0 || a > ranges[i - 1]![1]));

tables('both tables are sorted, disjoint ranges of the size the RFC gives, and do not overlap each other', () => {
  assert.is(RAND_AL_CAT.length, 34);
  assert.is(L_CAT.length, 360);
  assert.ok(sortedAndDisjoint(RAND_AL_CAT));
  assert.ok(sortedAndDisjoint(L_CAT));
  for (const [a, b] of RAND_AL_CAT) for (let cp = a; cp <= b; cp++) assert.not.ok(inRanges(L_CAT, cp), cp.toString(16));
});

// Today's Unicode has no Bidi_Class in regular expressions, but scripts agree with the RFC's tables.
// U+06DD ARABIC END OF AYAH is bidi class AL but, a format character, has been Script=Common since Unicode 6.1.
const RTL_SCRIPT = /[\p{Script_Extensions=Hebrew}\p{Script_Extensions=Arabic}\p{Script_Extensions=Syriac}\p{Script_Extensions=Thaana}\u200F\u06DD]/u;

tables('every assigned RandALCat character is Hebrew, Arabic, Syriac, Thaana or RLM; no LCat one is', () => {
  for (const [a, b] of RAND_AL_CAT) {
    for (let cp = a; cp <= b; cp++) {
      const c = String.fromCodePoint(cp);
      if (!/\p{Cn}/u.test(c)) assert.ok(RTL_SCRIPT.test(c), `U+${cp.toString(16)}`);
    }
  }
  for (const [a, b] of L_CAT) for (let cp = a; cp <= Math.min(b, a + 2000); cp++) assert.not.ok(RTL_SCRIPT.test(String.fromCodePoint(cp)) && !/\p{Cn}/u.test(String.fromCodePoint(cp)) && cp !== 0x200e, `U+${cp.toString(16)}`);
});

tables('lookups at range edges, single code points and beyond the BMP', () => {
  assert.ok(inRanges(L_CAT, 0x41) && inRanges(L_CAT, 0x5a) && !inRanges(L_CAT, 0x40) && !inRanges(L_CAT, 0x5b));
  assert.ok(inRanges(L_CAT, 0x1d400) && inRanges(L_CAT, 0x10fffd) && !inRanges(L_CAT, 0x10fffe));
  assert.ok(inRanges(RAND_AL_CAT, 0x05be) && !inRanges(RAND_AL_CAT, 0x05bf) && inRanges(RAND_AL_CAT, 0xfefc));
  assert.equal(parseRanges(' 0041 0061-007A\n0030-0039 '), [[0x30, 0x39], [0x41, 0x41], [0x61, 0x7a]]);
});

const bidi = suite('the bidirectional rule (RFC 3454 section 6)');

bidi('strings without RandALCat characters always pass', () => {
  for (const s of ['pencil', '1234', 'ab cd', '\u0660\u0661', '']) assert.not.ok(violatesBidiRule(s), s);
});
bidi('RandALCat at both ends and no LCat passes, digits and spaces inside included', () => {
  assert.not.ok(violatesBidiRule('\u05D0'));
  assert.not.ok(violatesBidiRule('\u05D0 1 \u05D1'));
  assert.not.ok(violatesBidiRule('\u0627\u0644\u0633\u0644\u0627\u0645'));
});
bidi('any LCat character with a RandALCat one fails (rule 2)', () => {
  assert.ok(violatesBidiRule('\u05D0b\u05D1'));
  assert.ok(violatesBidiRule('\u05D0\u{1D400}\u05D1'));
});
bidi('RandALCat not first or not last fails (rule 3)', () => {
  assert.ok(violatesBidiRule('1\u05D0'));
  assert.ok(violatesBidiRule('\u05D0 '));
  assert.ok(violatesBidiRule('-\u0627-'));
});

tables.run();
bidi.run();
