import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import type { OcsfEvent } from '../ocsf/map.js';
import { fitEvent, sizedRuns } from './fit-events.js';

const event = (i: number, text: string, extra: Record<string, unknown> = {}): OcsfEvent => ({
  class_uid: 6005, time: 1_700_000_000_000 + i, metadata: { sequence: i + 1, log_name: 'embedded', uid: `e${i + 1}`, correlation_uid: 's1' },
  query_info: { query_string: text }, status_detail: 'ERROR: relation does not exist', unmapped: { agate: { command_id: `c${i}` } }, ...extra,
});
const bytes = (e: unknown) => Buffer.byteLength(JSON.stringify(e));
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

const fit = suite('fitEvent');

fit('an event that fits is returned as it is', () => {
  const e = event(0, 'SELECT 1');
  assert.is(fitEvent(e, 10_000), e);
});

fit('a 2 MB statement is cut to fit, with its length and digest; the other fields stay whole', () => {
  const text = `DROP TABLE t /* ${'x'.repeat(2 << 20)} */`;
  const e = event(0, text);
  const fitted = fitEvent(e, 900_000);
  assert.ok(bytes(fitted) <= 900_000, `${bytes(fitted)} bytes`);
  assert.ok(bytes(fitted) > 800_000, 'cut no more than needed');
  const q = (fitted.query_info as { query_string: string }).query_string;
  assert.ok(q.startsWith('DROP TABLE t /* xxx') && q.endsWith('…'));
  assert.equal((fitted.unmapped as { agate: unknown }).agate, { command_id: 'c0', truncated: [{ field: 'query_info.query_string', chars: text.length, sha256: sha(text) }] });
  assert.is(fitted.status_detail, 'ERROR: relation does not exist');
  assert.is((e.query_info as { query_string: string }).query_string, text, 'the event given is not changed');
});

fit('text that JSON escapes (controls, quotes) or that is outside the BMP is cut by its JSON size, never splitting a pair', () => {
  for (const unit of ['\u0001', '"', '😀', 'é']) {
    const fitted = fitEvent(event(0, unit.repeat(300_000), { process: { cmd_line: 'a'.repeat(400_000) } }), 100_000);
    assert.ok(bytes(fitted) <= 100_000, `${JSON.stringify(unit)}: ${bytes(fitted)} bytes`);
    const q = (fitted.query_info as { query_string: string }).query_string;
    assert.not.match(q, /[\ud800-\udbff]…$/);
    assert.is(((fitted.unmapped as { agate: { truncated: unknown[] } }).agate.truncated).length, 2);
  }
});

const runs = suite('sizedRuns');

runs('500 events of 4 KB go in runs under the limit, in order, none lost or cut', () => {
  const events = Array.from({ length: 500 }, (_, i) => event(i, 'y'.repeat(4096)));
  const out = sizedRuns(events, 900_000);
  assert.ok(out.length >= 3, `${out.length} runs`);
  for (const r of out) assert.ok(bytes(r) <= 900_000);
  assert.equal(out.flat().map((e) => e.metadata.sequence), events.map((e) => e.metadata.sequence));
  assert.ok(out.flat().every((e, i) => e === events[i]), 'events that fit are not copied');
});

fit.run();
runs.run();
