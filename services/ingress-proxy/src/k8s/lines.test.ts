import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { LineSplitter } from './lines.js';

const lines = suite('LineSplitter');
const text = (bufs: Buffer[]) => bufs.map((b) => b.toString());

lines('two events in one chunk', () => {
  assert.equal(text(new LineSplitter(100).push(Buffer.from('{"a":1}\n{"b":2}\n'))), ['{"a":1}', '{"b":2}']);
});

lines('one event split at the start, middle and end', () => {
  const event = '{"type":"ADDED","object":{}}\n';
  for (const at of [1, 10, event.length - 1]) {
    const s = new LineSplitter(100);
    assert.equal(text(s.push(Buffer.from(event.slice(0, at)))), []);
    assert.equal(text(s.push(Buffer.from(event.slice(at)))), [event.trimEnd()]);
  }
});

lines('a last line without a newline comes out at the end', () => {
  const s = new LineSplitter(100);
  s.push(Buffer.from('{"a":1}\n{"b"'));
  assert.is(s.end()?.toString(), '{"b"');
  assert.is(s.end(), undefined);
});

lines('a line over the cap is refused before it is buffered', () => {
  const s = new LineSplitter(8);
  s.push(Buffer.from('12345'));
  try {
    s.push(Buffer.from('6789'));
    assert.unreachable();
  } catch (err) {
    assert.is((err as { code: string }).code, 'PROTOCOL_FRAME_TOO_LARGE');
  }
});

lines.run();
