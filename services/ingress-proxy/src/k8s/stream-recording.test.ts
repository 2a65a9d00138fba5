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
  rec.output([{ channel: 1, data: Buffer.from('$ ') }]);
  await rec.input([{ channel: 0, data: Buffer.from('id\n') }]);
  assert.is(logged.length, 0);
  assert.equal(durable[0]!.sample.map((r) => [r[1], r[4]]), [['stdout', '$ '], ['stdin', 'id\n']]);
  assert.is(durable[0]!.command_tag, 'stream part 1');
});

recording('masked, cut, binary described; the digest covers the bytes as sent', async () => {
  const { rec, durable } = recorder();
  const key = 'AKIAQWERTYUIOPASDFGH';
  await rec.input([{ channel: 0, data: Buffer.from(key) }, { channel: 0, data: Buffer.from([0xff, 0xfe]) }, { channel: 0, data: Buffer.from('0123456789abc') }]);
  const rows = durable[0]!.sample;
  assert.not.match(rows[0]![4]!, key);
  assert.is(durable[0]!.masked_values, 1);
  assert.is(rows[1]![4], '[2 bytes, not UTF-8]');
  assert.is(rows[2]![4], '0123456789…');
  const summary = rec.summary();
  assert.equal(summary.sample.map((r) => r.slice(0, 3)), [['stdin', '3', String(key.length + 2 + 13)]]);
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
