import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { SAMPLES } from '../../../../schemas/src/samples.js';
import { notificationOf } from './payload.js';

const payload = suite('notificationOf');

payload('a hold\'s text comes exact and, for a person to read, with what would not show as itself labelled', () => {
  const text = 'DROP TABLE v\u0430ult -- \u202e;1 TCELES\x1b]52;c;cm0gLXJmIC8=\x07';
  const n = notificationOf({ ...SAMPLES.ApprovalRequested, text })!;
  const data = (JSON.parse(n.body) as { data: Record<string, unknown> }).data;
  assert.is(data.text, text);
  assert.is(data.text_shown, 'DROP TABLE vа⟨Cyrillic U+0430⟩ult -- ⟨RLO U+202E⟩;1 TCELES⟨ESC U+001B⟩]52;c;cm0gLXJmIC8=⟨BEL U+0007⟩');
  assert.equal(data.text_hidden, ['Cyrillic U+0430', 'RLO U+202E', 'ESC U+001B', 'BEL U+0007']);
  const plain = (JSON.parse(notificationOf({ ...SAMPLES.ApprovalRequested, text: 'DROP TABLE items' })!.body) as { data: Record<string, unknown> }).data;
  assert.equal([plain.text_shown, plain.text_hidden], ['DROP TABLE items', []]);
});

payload.run();
