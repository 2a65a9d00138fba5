import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { ScpSourceReader, scpMode, scpTransfer } from './scp-stream.js';

const sha = (s: string) => 'sha256:' + createHash('sha256').update(s).digest('hex');
const stream = Buffer.from('T1700000000 0 1700000000 0\nC0644 5 a.txt\nhello\0D0755 0 sub\nC0600 0 empty\n\0C0644 3 b\nxyz\0E\n');

const test = suite('ssh/ScpSourceReader');

test('files, directories and times, in one chunk or byte by byte', () => {
  const expected = [
    { path: 'a.txt', size: 5, digest: sha('hello') },
    { path: 'sub/empty', size: 0, digest: sha('') },
    { path: 'sub/b', size: 3, digest: sha('xyz') },
  ];
  const whole = new ScpSourceReader();
  whole.push(stream);
  assert.equal(whole.files, expected);
  const bytes = new ScpSourceReader();
  for (const b of stream) bytes.push(Buffer.from([b]));
  assert.equal(bytes.files, expected);
  assert.not.ok(bytes.broken);
});

test('a stream cut inside a file records it without a digest; garbage stops the reader', () => {
  const cut = new ScpSourceReader();
  cut.push(Buffer.from('C0644 10 big\nabc'));
  cut.end();
  assert.equal(cut.files, [{ path: 'big', size: 10, digest: null }]);
  const junk = new ScpSourceReader();
  junk.push(Buffer.from('not scp\n'));
  assert.ok(junk.broken);
});

test('scp -t receives (upload), scp -f sends (download)', () => {
  assert.is(scpMode('scp -t /tmp/x'), 'sink');
  assert.is(scpMode('scp -v -r -t -- /tmp/x'), 'sink');
  assert.is(scpMode('scp -pf /tmp/x'), 'source');
  assert.is(scpMode('scpx -t /tmp'), undefined);
  assert.is(scpMode('echo scp -t'), undefined);
});

test('scpTransfer: the plain server-side line gives its path; any other form of it is unclear', () => {
  assert.equal(scpTransfer('scp -t /tmp/x'), { kind: 'scp', mode: 'sink', path: '/tmp/x' });
  assert.equal(scpTransfer("scp -v -r -p -t -- '/tmp/a b'"), { kind: 'scp', mode: 'sink', path: '/tmp/a b' });
  assert.equal(scpTransfer('/usr/bin/scp -f ../x'), { kind: 'scp', mode: 'source', path: '../x' });
  assert.is(scpTransfer('scp a b:c'), undefined);
  assert.is(scpTransfer('ls -t /tmp'), undefined);
  for (const line of ['scp -t /a /b', 'scp -t', 'scp -t $HOME/x', 'cd /tmp; scp -t x', 'scp -f ~/x']) assert.is(scpTransfer(line)?.kind, 'unclear', line);
});

test.run();
