import { suite } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { readPushRequest } from './push-request.js';
import { pkt } from './report.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const Z = '0'.repeat(40);
const line = (s: string) => pkt(Buffer.from(`${s}\n`));
const FLUSH = Buffer.from('0000');

const test = suite('ssh/git/push-request');

test('reads create, update and delete commands and the capabilities of the first', () => {
  const bytes = Buffer.concat([line(`${Z} ${A} refs/heads/new\0report-status side-band-64k`), line(`${A} ${B} refs/heads/main`), line(`${B} ${Z} refs/heads/old`), FLUSH, Buffer.from('PACK')]);
  const read = readPushRequest(bytes);
  assert.is(read.kind, 'request');
  if (read.kind !== 'request') return;
  assert.equal(read.request.commands.map((c) => [c.ref, c.action]), [['refs/heads/new', 'create'], ['refs/heads/main', 'update'], ['refs/heads/old', 'delete']]);
  assert.equal(read.request.capabilities, ['report-status', 'side-band-64k']);
  assert.is(read.request.packStart, bytes.length - 4);
  assert.is(read.request.packFollows, true);
});

test('waits for more at every split point; push options are part of the request', () => {
  const bytes = Buffer.concat([line('shallow ' + A), line(`${B} ${Z} refs/heads/x\0push-options`), FLUSH, line('ci.skip'), FLUSH]);
  for (let cut = 0; cut < bytes.length; cut += 1) assert.is(readPushRequest(bytes.subarray(0, cut)).kind, 'more', `cut at ${cut}`);
  const read = readPushRequest(bytes);
  assert.ok(read.kind === 'request' && read.request.options[0] === 'ci.skip' && read.request.packStart === bytes.length && !read.request.packFollows);
});

test('refuses what it cannot read: signed pushes, other lines, bad lengths', () => {
  assert.is(readPushRequest(Buffer.concat([line('push-cert\0report-status'), FLUSH])).kind, 'invalid');
  assert.is(readPushRequest(Buffer.concat([line(`${A} ${B}`), FLUSH])).kind, 'invalid');
  assert.is(readPushRequest(Buffer.from('zzzz')).kind, 'invalid');
  assert.is(readPushRequest(Buffer.from('0003')).kind, 'invalid');
  assert.is(readPushRequest(Buffer.concat([line(`${A} ${B} refs/heads/a`), line(`${A} ${B} refs/heads/b\0report-status`), FLUSH])).kind, 'invalid');
});

test.run();
