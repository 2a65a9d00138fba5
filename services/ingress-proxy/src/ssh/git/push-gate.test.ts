import { suite } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { deflateSync } from 'node:zlib';
import { PushGate, type PushGateHooks, type PushVerdict, type RefUpdate } from './push-gate.js';
import { pkt } from './report.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const Z = '0'.repeat(40);
const FLUSH = Buffer.from('0000');
const commands = (caps: string, ...lines: string[]) => Buffer.concat([...lines.map((l, i) => pkt(Buffer.from(`${l}${i === 0 ? `\0${caps}` : ''}\n`))), FLUSH]);
/** An empty version 2 pack: header, no objects, then its (unchecked here) trailer. */
const PACK_HEADER = Buffer.from('PACK\0\0\0\x02', 'latin1');

function gate(verdict: PushVerdict, over: Partial<PushGateHooks> = {}) {
  const upstream = new PassThrough();
  const sent: Buffer[] = [];
  upstream.on('data', (c: Buffer) => sent.push(c));
  const seen: { updates?: RefUpdate[]; replies: Buffer[]; notices: string[] } = { replies: [], notices: [] };
  const g = new PushGate(upstream, {
    decide: async (updates) => {
      seen.updates = updates;
      return verdict;
    },
    unreadable: (reason) => `unreadable: ${reason}`,
    ancestry: async () => 'no',
    reply: (b) => void seen.replies.push(b),
    notice: (t) => void seen.notices.push(t),
    ...over,
  });
  const finished = new Promise<void>((r) => upstream.on('end', r));
  return { g, seen, upstream: () => Buffer.concat(sent).toString('latin1'), finished };
}

const test = suite('ssh/git/push-gate');

test('allowed: nothing reaches the target before the decision, then everything in order', async () => {
  const { g, seen, upstream, finished } = gate({ run: true });
  const request = commands('report-status', `${B} ${Z} refs/heads/old`);
  g.write(request.subarray(0, 10));
  await new Promise((r) => setImmediate(r));
  assert.is(upstream(), '', 'held while the request is incomplete');
  g.end(request.subarray(10));
  await finished;
  assert.is(upstream(), request.toString('latin1'));
  assert.equal(seen.updates?.map((u) => [u.ref, u.action, u.forced]), [['refs/heads/old', 'delete', 'false']]);
});

test('refused: the target gets an empty command list, the client a side-band report with ng per ref', async () => {
  const { g, seen, upstream, finished } = gate({ run: false, message: 'no' });
  g.write(commands('report-status side-band-64k', `${B} ${Z} refs/heads/a`, `${A} ${Z} refs/heads/b`));
  await finished;
  assert.is(upstream(), '0000');
  const report = Buffer.concat(seen.replies).toString('latin1');
  // One band-1 packet holding the report-status pkt-lines and their flush, then the outer flush.
  const inner = '000eunpack ok\n0017ng refs/heads/a no\n0017ng refs/heads/b no\n0000';
  assert.is(report, `${(inner.length + 5).toString(16).padStart(4, '0')}\x01${inner}0000`);
});

test('an update whose pack passes the cap is decided with forced unknown, and the rest still flows', async () => {
  // B is in neither the pack read so far nor on the target: the target cannot answer.
  const { g, seen, upstream, finished } = gate({ run: true }, { maxPackHeld: 64, ancestry: async () => 'unknown' });
  const head = Buffer.concat([commands('report-status', `${A} ${B} refs/heads/main`), PACK_HEADER, Buffer.from([0, 0, 0, 1])]);
  g.write(head);
  // A blob of 1000 bytes (header 0xb8 0x3e) whose zlib data is still arriving when the cap is passed.
  const blob = deflateSync(randomBytes(1000));
  g.write(Buffer.concat([Buffer.from([0xb8, 0x3e]), blob.subarray(0, 200)]));
  g.end(Buffer.concat([blob.subarray(200), Buffer.from('tail')]));
  await finished;
  assert.is(seen.updates?.[0]?.forced, 'unknown');
  assert.ok(upstream().endsWith('tail'));
});

test('a request Agate cannot read is refused without asking policy, and never forwarded', async () => {
  const { g, seen, upstream, finished } = gate({ run: true });
  g.write(Buffer.concat([pkt(Buffer.from('push-cert\0report-status\n')), FLUSH]));
  await finished;
  assert.is(seen.updates, undefined);
  assert.is(upstream(), '0000');
  assert.equal(seen.notices, ['unreadable: signed pushes (push --signed) cannot be read by Agate']);
});

test.run();
