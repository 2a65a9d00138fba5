import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { Masker } from '../masking/masker.js';
import { CastRecorder, type CastChunk } from './asciicast.js';

const masker = new Masker('t', { columns: [], detectors: ['cloud_access_key'] });
const SECRET = 'ghp_' + 'a'.repeat(36);

function recorder(chunkBytes = 1 << 20) {
  let clock = 0;
  const chunks: CastChunk[] = [];
  const r = new CastRecorder({ masker, flush: (c) => chunks.push(c), chunkBytes, lineBytes: 64, now: () => clock });
  return { r, chunks, tick: (ms: number) => (clock += ms) };
}

const test = suite('ssh/CastRecorder');

test('output is held to the line end, so a secret split across packets is masked whole', () => {
  const { r, chunks, tick } = recorder();
  r.output(Buffer.from(`token ${SECRET.slice(0, 10)}`));
  tick(500);
  r.output(Buffer.from(`${SECRET.slice(10)}\r\n$ `));
  r.end();
  assert.equal(chunks[0]!.events, [[0, 'o', 'token [masked:cloud_access_key]\r\n'], [0.5, 'o', '$ ']]);
  assert.is(chunks[0]!.masked, 1);
  assert.is(chunks[0]!.bytes, 6 + SECRET.length + 4);
});

test('input and output interleave in time order; resizes are recorded', () => {
  const { r, chunks, tick } = recorder();
  r.input(Buffer.from('l'));
  tick(100);
  r.output(Buffer.from('l'));
  tick(100);
  r.input(Buffer.from('s\r'));
  r.resize(100, 30);
  r.end();
  assert.equal(chunks[0]!.events, [[0, 'i', 'ls\r'], [0.1, 'o', 'l'], [0.2, 'r', '100x30']]);
});

test('chunks are flushed once they hold enough bytes; a long line is cut at the line bound', () => {
  const { r, chunks } = recorder(100);
  for (let i = 0; i < 5; i += 1) r.output(Buffer.from('y'.repeat(30) + '\n'));
  r.output(Buffer.from('z'.repeat(70)));
  r.end();
  assert.ok(chunks.length >= 2);
  assert.equal(chunks.map((c) => c.part), chunks.map((_, i) => i + 1));
  assert.is(chunks.reduce((n, c) => n + c.bytes, 0), 5 * 31 + 70);
  assert.ok(chunks.flatMap((c) => c.events).every(([, , d]) => d.length <= 70));
});

test('a UTF-8 character split between packets stays whole', () => {
  const { r, chunks } = recorder();
  const bytes = Buffer.from('é\n');
  r.output(bytes.subarray(0, 1));
  r.output(bytes.subarray(1));
  r.end();
  assert.equal(chunks[0]!.events, [[0, 'o', 'é\n']]);
});

test('tick publishes what is recorded, and a line waiting longer than the idle time', () => {
  const { r, chunks, tick } = recorder();
  r.output(Buffer.from('done\r\n$ '));
  r.tick(1000);
  assert.equal(chunks.map((c) => c.events), [[[0, 'o', 'done\r\n']]], 'the prompt waits for its line');
  tick(1500);
  r.tick(1000);
  assert.equal(chunks[1]!.events, [[0, 'o', '$ ']]);
  r.tick(1000);
  assert.is(chunks.length, 2, 'nothing new, nothing published');
});

test.run();
