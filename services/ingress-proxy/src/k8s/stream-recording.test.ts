import { createHash } from 'node:crypto';
import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import type { Command, Response } from '../../../../schemas/src/events.js';
import { BUILTIN_MASK_SET } from '../../../../core/src/config.js';
import { Masker } from '../masking/masker.js';
import { StreamRecording } from './stream-recording.js';

const recording = suite('StreamRecording');
const command = { session_id: 's', event_id: 'c' } as Command;

function recorder(fail = false) {
  const durable: Response[] = [];
  const logged: Response[] = [];
  const rec = new StreamRecording({
    command, audit: new Masker('default', BUILTIN_MASK_SET), valueChars: 10, now: () => 0,
    sink: { emit: async (e) => (fail ? Promise.reject(new Error('bus away')) : void durable.push(e)), emitLogged: (e) => void logged.push(e) },
  });
  return { rec, durable, logged };
}

recording('input is published durably with the output before it, in order', async () => {
  const { rec, durable, logged } = recorder();
  rec.output([{ channel: 1, data: Buffer.from('ok\n') }]);
  await rec.input([{ channel: 0, data: Buffer.from('id\n') }]);
  assert.is(logged.length, 0);
  assert.equal(durable[0]!.sample.map((r) => [r[1], r[4]]), [['stdout', 'ok\n'], ['stdin', 'id\n']]);
  assert.is(durable[0]!.command_tag, 'stream part 1');
});

recording('masked, cut, binary described; the digest covers the bytes as sent', async () => {
  const { rec, durable } = recorder();
  const key = 'AKIAQWERTYUIOPASDFGH';
  await rec.input([{ channel: 0, data: Buffer.from(`${key}\n`) }, { channel: 0, data: Buffer.from([0xff, 0xfe, 0x0a]) }, { channel: 0, data: Buffer.from('0123456789abc\n') }]);
  const rows = durable[0]!.sample;
  assert.not.match(rows[0]![4]!, key);
  assert.is(rows[0]![3], `sha256:${createHash('sha256').update(`${key}\n`).digest('hex')}`);
  assert.is(durable[0]!.masked_values, 1);
  assert.is(rows[1]![4], '[3 bytes, not UTF-8]');
  assert.is(rows[2]![4], '0123456789…');
  const summary = rec.summary();
  assert.equal(summary.sample.map((r) => r.slice(0, 3)), [['stdin', '3', String(key.length + 1 + 3 + 14)]]);
});

recording('a secret split across messages is masked whole; a message ending no line records its size only', async () => {
  const { rec, durable, logged } = recorder();
  await rec.input([{ channel: 0, data: Buffer.from('KEY=AKIAQWERTY') }]);
  await rec.input([{ channel: 0, data: Buffer.from('UIOPASDFGH\nec') }]);
  rec.output([{ channel: 1, data: Buffer.from('AKIAQWER') }, { channel: 2, data: Buffer.from('x') }, { channel: 1, data: Buffer.from('TYUIOPASDFGH') }]);
  await rec.input([{ channel: 0, data: Buffer.from('ho') }, { channel: 4, data: Buffer.from('{"Width":8}') }]);
  rec.summary();
  const rows = [...durable, ...logged].flatMap((e) => e.sample);
  assert.equal(rows.map((r) => [r[1], r[2], r[3] === null ? null : 'digest', r[4]]), [
    ['stdin', '14', null, ''],
    ['stdin', '13', 'digest', 'KEY=[maske…'],
    ['stdout', '8', null, ''],
    ['stderr', '1', null, ''],
    ['stdout', '12', null, ''],
    ['stdin', '2', null, ''],
    ['resize', '11', 'digest', '{"Width":8…'],
    // The end settles what waited: stdin's "echo", stdout's key (masked), stderr's "x".
    ['stdin', '0', 'digest', 'echo'],
    ['stdout', '0', 'digest', '[masked:cl…'],
    ['stderr', '0', 'digest', 'x'],
  ]);
  assert.not.match(JSON.stringify(rows), /QWER|ASDF/);
  assert.is([...durable, ...logged].reduce((n, e) => n + e.masked_values, 0), 2);
});

recording('text waiting longer than idleMs for a line end is recorded by the next flush', async () => {
  let now = 0;
  const logged: Response[] = [];
  const rec = new StreamRecording({
    command, audit: new Masker('default', BUILTIN_MASK_SET), valueChars: 100, idleMs: 1000, now: () => now,
    sink: { emit: async () => undefined, emitLogged: (e) => void logged.push(e) },
  });
  rec.output([{ channel: 1, data: Buffer.from('$ ') }]);
  now = 999;
  rec.flush();
  assert.equal(logged.flatMap((e) => e.sample).map((r) => r[4]), ['']);
  now = 1000;
  rec.flush();
  assert.equal(logged.flatMap((e) => e.sample).map((r) => [r[0], r[2], r[4]]), [['0', '2', ''], ['1', '0', '$ ']]);
});

recording('input that cannot be recorded rejects (the stream then ends)', async () => {
  const { rec } = recorder(true);
  try {
    await rec.input([{ channel: 0, data: Buffer.from('rm -rf /\n') }]);
    assert.unreachable();
  } catch (err) {
    assert.match(String(err), 'bus away');
  }
});

recording.run();
