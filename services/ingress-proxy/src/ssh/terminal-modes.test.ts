import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { foreignKeys, parseSttyG } from './terminal-modes.js';

/** What `stty -g` prints for a fresh Linux pty. */
const DEFAULTS = '500:5:bf:8a3b:3:1c:7f:15:4:0:1:0:11:13:1a:0:12:f:17:16:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0';
/** DEFAULTS with c_cc[index] set to `key`. */
const withKey = (index: number, key: number) => DEFAULTS.split(':').map((f, i) => (i === 4 + index ? key.toString(16) : f)).join(':');

const test = suite('ssh/terminal-modes');

test('a fresh pty: canonical, its keys what the tracker takes them for (only ^H, which readline erases with, differs)', () => {
  const modes = parseSttyG(DEFAULTS)!;
  assert.ok(modes.canonical);
  assert.equal([...foreignKeys(modes)], [[0x08, 'none']]);
});

test('stty eof ^A, eol a, kill #: the keys become a line end or an edit', () => {
  assert.equal(foreignKeys(parseSttyG(withKey(4, 0x01))!).get(0x01), 'line-end');
  assert.equal(foreignKeys(parseSttyG(withKey(4, 0x01))!).get(0x04), 'none', '^D no longer ends anything');
  assert.equal(foreignKeys(parseSttyG(withKey(11, 0x61))!).get(0x61), 'line-end');
  assert.equal(foreignKeys(parseSttyG(withKey(3, 0x23))!).get(0x23), 'kill');
});

test('-icanon: the kernel edits nothing and ends no line; -isig: ^C is a plain key', () => {
  const raw = parseSttyG(DEFAULTS.replace(':8a3b:', ':8a39:'))!;
  assert.not.ok(raw.canonical);
  assert.is(foreignKeys(raw).get(0x7f), 'none');
  assert.is(foreignKeys(raw).get(0x04), 'none');
  assert.is(foreignKeys(parseSttyG(DEFAULTS.replace(':8a3b:', ':8a3a:'))!).get(0x03), 'none');
});

test('anything but a stty -g line is no modes', () => {
  for (const text of ['', '-', 'speed 38400 baud', '500:5:bf:8a3b', '500:5:bf:8a3b:zz:1c:7f:15:4:0:1:0:11:13:1a:0:12:f:17:16:0']) assert.is(parseSttyG(text), undefined, text);
});

test.run();
